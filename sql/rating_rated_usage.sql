-- rating_rated_usage: the rated CDRs and the ones that could not be rated.
-- reads: staged_cdrs, ref_customers, rating_calls, rating_call_rates, rating_heads, rating_amounts.
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
SELECT s.cdr_id, s.account, c.company_id, c.company_identifier, c.company_name, c.agreement_id,
       c.jurisdiction, c.invoice_mode, s.usage_date, s.start_utc, s.direction, s.origin,
       s.destination, s.usage_type, h.plan, h.product, h.prefix AS matched_prefix, h.time_band,
       s.duration, n.quantity, a.billed_quantity,
       units_to_decimal6(a.units, a.amount_decimals) AS amount,
       a.amount_decimals, s.source_file, s.source_line
FROM staged_cdrs s
JOIN rating_call_rates n ON n.cdr_id = s.cdr_id
JOIN ref_customers c
  ON c.account = s.account
 AND c.effective_from <= s.usage_date
 AND s.usage_date <= coalesce(c.effective_to, DATE '9999-12-31')
JOIN rating_heads h ON h.rate_id = n.rate_id
JOIN rating_amounts a ON a.rate_id = n.rate_id AND a.quantity = n.quantity;

CREATE OR REPLACE TABLE rating_errors AS
WITH failed AS (
    SELECT cdr_id, 'unmapped_account' AS kind, NULL AS plan_known, NULL AS band_key
    FROM rating_calls WHERE NOT mapped
    UNION ALL
    SELECT cdr_id, 'unrated', plan_known, band_key
    FROM rating_call_rates WHERE rate_id IS NULL
)
SELECT f.kind, s.cdr_id, s.account,
       CASE f.kind WHEN 'unmapped_account' THEN s.account ELSE s.destination END AS key,
       CASE
         WHEN f.kind = 'unmapped_account'
           THEN 'no customers.csv row for account ' || s.account || ' in effect on '
                || strftime(s.usage_date, '%Y-%m-%d')
         WHEN NOT f.plan_known
           THEN 'rate plan ' || c.rate_plan || ' of account ' || s.account || ' is not in plans.csv'
         ELSE 'no ' || s.usage_type || ' rate in plan ' || c.rate_plan || ' for ' || s.direction
              || ' to ' || coalesce(s.destination, '') || ' in effect on '
              || strftime(s.usage_date, '%Y-%m-%d')
              || CASE WHEN f.band_key = '' THEN ' (no time band in force)'
                      ELSE ' (time bands in force: ' || f.band_key || ')' END
       END AS detail,
       s.source_file, s.source_line
FROM failed f
JOIN staged_cdrs s ON s.cdr_id = f.cdr_id
LEFT JOIN ref_customers c
  ON c.account = s.account
 AND c.effective_from <= s.usage_date
 AND s.usage_date <= coalesce(c.effective_to, DATE '9999-12-31');
