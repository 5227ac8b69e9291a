-- rating_rated_usage: the rated CDRs and the ones that could not be rated.
-- reads: rating_call_rates (rating_match.sql: the staged CDRs with customer and rate), rating_heads,
--        rating_amounts.
-- writes:
--   rating_rated   (view) one row per rated CDR (cdr_id); the columns of rated_usage in TABLES.md.
--                  amount is the exact amount rounded once to the plan's decimals
--                  (amount_decimals), as DECIMAL(18,6); a call of quantity 0 is kept with
--                  billed_quantity 0 and amount 0. pipeline.RateStage stores it as Parquet in the
--                  run's scratch folder and makes rated_usage a view of those files.
--   rating_errors  one row per staged CDR that was not rated: kind 'unmapped_account' (no
--                  customers.csv row for the account in effect on its usage_date; key = account) or
--                  'unrated' (no rate matched, or the customer's plan is not in plans.csv;
--                  key = destination). Never charged zero.
-- Every staged CDR lands in exactly one of the two.

CREATE OR REPLACE TEMP VIEW rating_rated AS
SELECT n.cdr_id, n.account, n.company_id, n.company_identifier, n.company_name, n.agreement_id,
       n.jurisdiction, n.invoice_mode, n.usage_date, n.start_utc, n.direction, n.origin,
       n.destination, n.usage_type, h.plan, h.product, h.prefix AS matched_prefix, h.time_band,
       n.duration, n.quantity, a.billed_quantity,
       units_to_decimal6(a.units, a.amount_decimals) AS amount,
       a.amount_decimals, n.source_file, n.source_line
FROM rating_call_rates n
JOIN rating_heads h ON h.rate_id = n.rate_id
JOIN rating_amounts a ON a.rate_id = n.rate_id AND a.quantity = n.quantity;

CREATE OR REPLACE TABLE rating_errors AS
SELECT CASE WHEN n.mapped THEN 'unrated' ELSE 'unmapped_account' END AS kind, n.cdr_id, n.account,
       CASE WHEN n.mapped THEN n.destination ELSE n.account END AS key,
       CASE
         WHEN NOT n.mapped
           THEN 'no customers.csv row for account ' || n.account || ' in effect on '
                || strftime(n.usage_date, '%Y-%m-%d')
         WHEN NOT n.plan_known
           THEN 'rate plan ' || n.plan || ' of account ' || n.account || ' is not in plans.csv'
         ELSE 'no ' || n.usage_type || ' rate in plan ' || n.plan || ' for ' || n.direction
              || ' to ' || coalesce(n.destination, '') || ' in effect on '
              || strftime(n.usage_date, '%Y-%m-%d')
              || CASE WHEN n.band_key = '' THEN ' (no time band in force)'
                      ELSE ' (time bands in force: ' || n.band_key || ')' END
       END AS detail,
       n.source_file, n.source_line
FROM rating_call_rates n
WHERE n.rate_id IS NULL;
