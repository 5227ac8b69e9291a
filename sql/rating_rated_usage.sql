-- rating_rated_usage: the rated CDRs and the ones that could not be rated.
-- reads: rating_calls, rating_call_rates, rating_heads, rating_amounts, rating_slots.
-- writes:
--   rated_usage    one row per rated CDR (cdr_id); columns as in TABLES.md. amount is the exact
--                  amount rounded once to the plan's decimals (amount_decimals), as DECIMAL(18,6);
--                  a call of quantity 0 is kept with billed_quantity 0 and amount 0.
--   rating_errors  one row per staged CDR that was not rated: kind 'unmapped_account' (no
--                  customers.csv row for the account in effect on its usage_date; key = account) or
--                  'unrated' (no rate matched, or the customer's plan is not in plans.csv;
--                  key = destination). Never charged zero.
-- Every staged CDR lands in exactly one of the two tables.

CREATE OR REPLACE TABLE rated_usage AS
SELECT c.cdr_id, c.account, c.company_id, c.company_identifier, c.company_name, c.agreement_id,
       c.jurisdiction, c.invoice_mode, c.usage_date, c.start_utc, c.direction, c.origin,
       c.destination, c.usage_type, c.plan, h.product, h.prefix AS matched_prefix, h.time_band,
       c.duration, c.quantity, a.billed_quantity,
       units_to_decimal6(a.units, a.amount_decimals) AS amount,
       a.amount_decimals, c.source_file, c.source_line
FROM rating_call_rates c
JOIN rating_heads h ON h.rate_id = c.rate_id
JOIN rating_amounts a ON a.rate_id = c.rate_id AND a.quantity = c.quantity;

CREATE OR REPLACE TABLE rating_errors AS
SELECT 'unmapped_account' AS kind, cdr_id, account, account AS key,
       'no customers.csv row for account ' || account || ' in effect on ' || strftime(usage_date, '%Y-%m-%d') AS detail,
       source_file, source_line
FROM rating_calls
WHERE NOT mapped
UNION ALL
SELECT 'unrated' AS kind, cdr_id, account, destination AS key,
       CASE WHEN NOT plan_known
            THEN 'rate plan ' || plan || ' of account ' || account || ' is not in plans.csv'
            ELSE 'no ' || usage_type || ' rate in plan ' || plan || ' for ' || direction || ' to '
                 || coalesce(destination, '') || ' in effect on ' || strftime(usage_date, '%Y-%m-%d')
                 || CASE WHEN band_key = '' THEN ' (no time band in force)'
                         ELSE ' (time bands in force: ' || band_key || ')' END
       END AS detail,
       source_file, source_line
FROM rating_call_rates
WHERE rate_id IS NULL;
