-- invoice_export_errors: everything that kept something off an invoice, and which customers are
-- held back.
-- reads: rating_errors, ingest_rejects, rated_usage, usage_summary, ref_customers, ref_products,
--   getvariable('fallback_sku', 'period_from', 'period_to', 'hold_on_errors').
-- writes:
--   export_error_rows (grain: one problem row — a CDR or a rejected input row; the raw file and line)
--   invoice_held (grain: company_id whose invoice is held back, or flagged when hold_on_errors is
--     false: every customer with at least one unrated CDR)
--   export_errors (grain: kind × account × key × source_file [× company]; TABLES.md columns, then
--     company_id, company_identifier added at the end)
-- Kinds: unmapped_account and unrated (rating_errors), rejected (ingest_rejects: no account is
-- known), unmapped_product (rated CDRs of a product with no catalog_identifier in products.csv; they
-- ARE billed, on the fallback SKU), missing_agreement (customers with no agreement_id: left out of
-- connectwise_additions.csv only), held_customer / flagged_customer (one row per customer with
-- unrated CDRs: held back from every export, or exported with the problem flagged).
-- A run without an ingest (an auditor's rerun from staged Parquet) may have no rejects table.
CREATE TABLE IF NOT EXISTS ingest_rejects (source VARCHAR, source_file VARCHAR, source_line BIGINT,
    column_name VARCHAR, reason VARCHAR, raw VARCHAR);
CREATE TABLE IF NOT EXISTS rating_errors (kind VARCHAR, cdr_id VARCHAR, account VARCHAR, key VARCHAR,
    detail VARCHAR, source_file VARCHAR, source_line BIGINT);

CREATE OR REPLACE TABLE export_error_rows AS
WITH account_company AS (
    -- the company an account belongs to during the period (the latest row in effect)
    SELECT account,
           arg_max(company_id, effective_from) AS company_id,
           arg_max(company_identifier, effective_from) AS company_identifier
    FROM ref_customers
    WHERE effective_from <= getvariable('period_to')
      AND (effective_to IS NULL OR effective_to >= getvariable('period_from'))
    GROUP BY account
),
no_agreement AS (
    SELECT DISTINCT company_id, company_identifier FROM usage_summary WHERE agreement_id IS NULL
)
SELECT e.kind, coalesce(e.account, '') AS account, c.company_id, c.company_identifier,
       coalesce(e.key, '') AS key, coalesce(e.detail, '') AS detail,
       coalesce(e.source_file, '') AS source_file, e.source_line
FROM rating_errors e
LEFT JOIN account_company c ON c.account = e.account AND e.kind <> 'unmapped_account'
UNION ALL
SELECT 'rejected', '', NULL, NULL, coalesce(column_name, ''),
       coalesce(source, '') || ': ' || coalesce(reason, ''), coalesce(source_file, ''), source_line
FROM ingest_rejects
UNION ALL
SELECT 'unmapped_product', u.account, u.company_id, u.company_identifier, u.product,
       'product ' || u.product || ' has no catalog_identifier in products.csv: billed on fallback SKU '
           || getvariable('fallback_sku'),
       u.source_file, u.source_line
FROM rated_usage u
LEFT JOIN ref_products p ON p.product = u.product
WHERE nullif(trim(p.catalog_identifier), '') IS NULL
UNION ALL
SELECT 'missing_agreement', u.account, u.company_id, n.company_identifier, n.company_identifier,
       'company ' || n.company_identifier || ' has no agreement_id in customers.csv: left out of connectwise_additions.csv',
       u.source_file, u.source_line
FROM rated_usage u
JOIN no_agreement n USING (company_id);

CREATE OR REPLACE TABLE invoice_held AS
SELECT company_id, min(company_identifier) AS company_identifier, count(*) AS unrated,
       min(source_file) AS source_file,
       arg_min(source_line, (source_file, source_line)) AS source_line
FROM export_error_rows
WHERE kind = 'unrated' AND company_id IS NOT NULL
GROUP BY company_id;

CREATE OR REPLACE TABLE export_errors AS
SELECT kind, account, key, min(detail) AS detail, source_file, min(source_line) AS source_line,
       count(*)::BIGINT AS count, company_id, company_identifier
FROM export_error_rows
-- rejected rows differ by reason (the value at fault); other kinds group by what failed to match
GROUP BY kind, account, key, source_file, company_id, company_identifier,
         CASE WHEN kind = 'rejected' THEN detail END
UNION ALL
SELECT CASE WHEN getvariable('hold_on_errors') THEN 'held_customer' ELSE 'flagged_customer' END,
       '', company_identifier,
       CASE WHEN getvariable('hold_on_errors')
            THEN 'invoice held back: ' || unrated || ' unrated CDR(s); nothing exported for this customer until they are rated'
            ELSE 'invoice exported without ' || unrated || ' unrated CDR(s): review before sending'
       END,
       source_file, source_line, unrated::BIGINT, company_id, company_identifier
FROM invoice_held;
