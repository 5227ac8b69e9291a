-- invoice_lines: the lines of each customer's invoice for the period, usage then tax.
-- reads: usage_summary, rated_usage, tax_lines, ref_customers, ref_products, invoice_held,
--   getvariable('period', 'period_from', 'period_to'), the macros invoice_describe_summary and
--   invoice_describe_detail (below).
-- writes: invoice_lines (grain: invoice line; TABLES.md columns, then `held BOOLEAN` added at the
--   end: true for a customer held back by invoice_export_errors.sql).
--
-- Line format (every line: quantity × unit_price = amount exactly, at 2 decimals):
--   summary mode: one line per usage_summary row (customer × product): quantity 1, unit_price =
--     amount = usage_summary.amount. The usage quantity (minutes, MB, calls) is in the description.
--   detail mode: one line per rated CDR: quantity 1, unit_price = amount = the CDR's share of its
--     usage_summary line in whole cents. Each CDR gets its amount's cents rounded down, and the
--     cents left over (summary amount − Σ rounded-down cents) go one each to the CDRs with the
--     largest dropped fractions (ties: lowest cdr_id), so the detail lines of a customer × product
--     add up to exactly its usage_summary.amount.
--   tax: one line per tax_lines row with a non-zero tax_amount: quantity 1, unit_price = amount =
--     tax_amount, catalog_identifier from tax_lines, not taxable.
-- So per customer Σ invoice_lines.amount = Σ usage_summary.amount + Σ tax_lines.tax_amount.
--
-- Description template placeholders (billing.description_template; detail lines use
-- detail_template, which defaults to it):
--   {description} products.csv description (the product code when unmapped); tax lines: tax_name
--   {product} rated product code (tax lines: tax_code)   {catalog_identifier} ConnectWise SKU
--   {from} {to}   ISO dates: the period's first and last day (late usage of a closed period: that
--                 month's; detail lines: the call's usage date)
--   {period}      YYYY-MM
--   {quantity}    billed quantity: minutes for voice (seconds / 60), MB for data (bytes / 10^6),
--                 with thousands separators and at most 2 decimals (half-up), e.g. 1,234 or 20.5
--   {unit}        min | MB          {calls} number of CDRs (1 on a detail line)
--   {origin} {destination} {start}  detail lines only (start = UTC instant); empty on summary lines
-- Tax lines use the fixed form '{tax_name}, {from} to {to}'.
-- invoice_quantity_text(usage_type, q): the billed quantity for a description, in hundredths of
-- a minute (voice, q seconds) or of an MB (data, q bytes), rounded half-up, as text with
-- thousands separators and no trailing zeros: 1,234 | 20.5 | 1.02. Plain BIGINT arithmetic
-- (q >= 0); a macro's arguments are expanded inline, so it stays small.
CREATE OR REPLACE MACRO invoice_hundredths_text(h) AS
    format('{:,}', h // 100)
    || CASE WHEN h % 100 = 0 THEN ''
            WHEN h % 10 = 0 THEN '.' || CAST((h % 100) // 10 AS VARCHAR)
            ELSE '.' || lpad(CAST(h % 100 AS VARCHAR), 2, '0') END;
CREATE OR REPLACE MACRO invoice_quantity_text(usage_type, q) AS
    invoice_hundredths_text(CASE WHEN usage_type = 'data' THEN (CAST(q AS BIGINT) + 5000) // 10000
                                 ELSE (CAST(q AS BIGINT) * 100 + 30) // 60 END);

-- invoice_describe_summary(...) and invoice_describe_detail(...) fill the two templates; they are
-- macros created by pipeline/stage_export.go (describeMacro) from the configured templates, as one
-- concat of the template's text and the placeholders' values, with the arguments
-- (description, product, catalog, d_from, d_to, usage_type, quantity_text, calls, origin,
--  destination, start).

CREATE OR REPLACE TABLE invoice_lines AS
WITH company AS (
    SELECT DISTINCT company_id, company_identifier, company_name, agreement_id FROM usage_summary
),
tax_company AS (
    -- customers with tax lines but no usage (per-line fees) take their names from customers.csv
    SELECT company_id, arg_max(company_name, effective_from) AS company_name,
           arg_max(agreement_id, effective_from) AS agreement_id
    FROM ref_customers GROUP BY company_id
),
summary_lines AS (
    SELECT s.company_id, s.company_identifier, s.company_name, s.agreement_id, 'usage' AS kind,
           s.product, s.catalog_identifier,
           invoice_describe_summary(s.description, s.product,
                            s.catalog_identifier, s.usage_from, s.usage_to,
                            s.usage_type, invoice_quantity_text(s.usage_type, s.billed_quantity), s.calls,
                            NULL, NULL, NULL::TIMESTAMP) AS description,
           s.amount, s.taxable, s.gl_account,
           1 AS sort_group, NULL::TIMESTAMP AS sort_start, s.usage_period AS sort_id
    FROM usage_summary s
    WHERE s.invoice_mode <> 'detail'
),
detail_units AS (
    SELECT u.cdr_id, u.start_utc, u.usage_date, u.origin, u.destination, u.usage_type,
           u.billed_quantity, s.company_id, s.company_identifier, s.company_name, s.agreement_id,
           s.product, s.usage_period, s.catalog_identifier, s.description AS product_description, s.taxable,
           s.gl_account, invoice_quantity_text(u.usage_type, u.billed_quantity) AS quantity_text,
           CAST(s.amount * 100 AS HUGEINT) AS summary_cents,
           CAST(CAST(u.amount AS DECIMAL(18, 6)) * 1000000 AS HUGEINT) AS micro
    FROM rated_usage u
    JOIN usage_summary s ON s.company_id = u.company_id AND s.product = u.product
        AND s.usage_period = strftime(u.usage_date, '%Y-%m')
    WHERE s.invoice_mode = 'detail'
),
detail_floor AS (
    SELECT *,
           CASE WHEN micro >= 0 THEN micro // 10000 ELSE -((-micro + 9999) // 10000) END AS floor_cents
    FROM detail_units
),
detail_ranked AS (
    SELECT *,
           micro - floor_cents * 10000 AS dropped,
           summary_cents - sum(floor_cents) OVER (PARTITION BY company_id, product, usage_period) AS leftover,
           row_number() OVER (PARTITION BY company_id, product, usage_period
                              ORDER BY micro - floor_cents * 10000 DESC, cdr_id) AS rank_up,
           row_number() OVER (PARTITION BY company_id, product, usage_period
                              ORDER BY micro - floor_cents * 10000, cdr_id DESC) AS rank_down
    FROM detail_floor
),
detail_lines AS (
    SELECT company_id, company_identifier, company_name, agreement_id, 'usage' AS kind, product,
           catalog_identifier,
           invoice_describe_detail(product_description, product,
                            catalog_identifier, usage_date, usage_date, usage_type, quantity_text, 1,
                            origin, destination, start_utc) AS description,
           CAST(CAST(floor_cents + CASE WHEN leftover > 0 AND rank_up <= leftover THEN 1
                                        WHEN leftover < 0 AND rank_down <= -leftover THEN -1
                                        ELSE 0 END AS DECIMAL(18, 0))
                * CAST(0.01 AS DECIMAL(3, 2)) AS DECIMAL(18, 2)) AS amount,
           taxable, gl_account,
           1 AS sort_group, start_utc AS sort_start, cdr_id AS sort_id
    FROM detail_ranked
),
tax AS (
    SELECT t.company_id, t.company_identifier,
           coalesce(c.company_name, tc.company_name, t.company_identifier) AS company_name,
           CASE WHEN c.company_id IS NOT NULL THEN c.agreement_id ELSE tc.agreement_id END AS agreement_id,
           'tax' AS kind, t.tax_code AS product, t.catalog_identifier,
           t.tax_name || ', ' || strftime(getvariable('period_from'), '%Y-%m-%d') || ' to '
               || strftime(getvariable('period_to'), '%Y-%m-%d') AS description,
           CAST(t.tax_amount AS DECIMAL(18, 2)) AS amount, false AS taxable,
           coalesce((SELECT min(nullif(trim(p.gl_account), '')) FROM ref_products p WHERE p.product = t.tax_code),
                    (SELECT min(nullif(trim(p.gl_account), '')) FROM ref_products p
                     WHERE p.catalog_identifier = t.catalog_identifier)) AS gl_account,
           2 AS sort_group, NULL::TIMESTAMP AS sort_start, t.jurisdiction AS sort_id
    FROM tax_lines t
    LEFT JOIN company c USING (company_id)
    LEFT JOIN tax_company tc ON tc.company_id = t.company_id
    WHERE t.tax_amount <> 0
),
all_lines AS (
    SELECT * FROM summary_lines
    UNION ALL SELECT * FROM detail_lines
    UNION ALL SELECT * FROM tax
)
SELECT company_id, company_identifier, company_name, agreement_id,
       CAST(row_number() OVER (PARTITION BY company_id
                               ORDER BY sort_group, product, sort_start NULLS FIRST, sort_id) AS INTEGER) AS line_no,
       kind, product, catalog_identifier, description,
       CAST(1 AS DECIMAL(18, 2)) AS quantity, amount AS unit_price, amount, taxable, gl_account,
       company_id IN (SELECT company_id FROM invoice_held) AND getvariable('hold_on_errors') AS held
FROM all_lines
ORDER BY company_id, line_no;
