-- reconcile_taxes: rated against posted tax, per customer and tax catalog item, for the period.
-- reads: posted_invoice_lines, posted_invoices, posted_matched, reconcile_rated_companies,
-- tax_lines, ref_tax_rates; variables period, period_from, period_to, variance_threshold_percent.
-- writes: posted_lines_matched (grain: posted invoice line counted for the period) and
-- reconciliation_taxes (grain: customer x tax catalog item, for customers whose posted invoices
-- have lines). Columns: those of reconciliation_taxes.csv, then company_id.
--
-- A line belongs to its invoice (same invoiceNumber, and type when the line gives one) and counts
-- when that invoice counts (reconcile_posted_matched.sql); a line whose invoice was not posted
-- counts by its own date and company with the same rules. Tax items are the catalog identifiers of
-- tax_lines and ref_tax_rates; a credit memo's lines count negative.
CREATE OR REPLACE TABLE posted_lines_matched AS
WITH win AS (
    SELECT getvariable('period_to')::DATE AS win_from,
           (getvariable('period_from')::DATE + INTERVAL 2 MONTH - INTERVAL 2 DAY)::DATE AS win_to
),
byident AS (
    SELECT lower(company_identifier) AS k, min(company_id) AS company_id, min(company_identifier) AS company_identifier
    FROM reconcile_rated_companies GROUP BY 1 HAVING count(*) = 1
)
SELECT l.invoice_number, m.company_id, m.company_identifier, m.rated_company, l.catalog_identifier,
       CASE WHEN coalesce(l.type, m.type) = 'CreditMemo' THEN -abs(l.ext_price) ELSE l.ext_price END AS ext_price,
       l.file, l.line
FROM posted_invoice_lines l
JOIN posted_matched m
  ON m.invoice_number = l.invoice_number AND (l.type IS NULL OR m.type IS NOT DISTINCT FROM l.type)
UNION ALL
SELECT l.invoice_number,
       coalesce(byid.company_id, byident.company_id, l.company_id),
       coalesce(byid.company_identifier, byident.company_identifier, l.company_identifier),
       (byid.company_id IS NOT NULL OR byident.company_id IS NOT NULL),
       l.catalog_identifier,
       CASE WHEN l.type = 'CreditMemo' THEN -abs(l.ext_price) ELSE l.ext_price END,
       l.file, l.line
FROM posted_invoice_lines l
CROSS JOIN win
LEFT JOIN reconcile_rated_companies byid ON l.company_id IS NOT NULL AND byid.company_id = l.company_id
LEFT JOIN byident ON l.company_id IS NULL AND byident.k = lower(l.company_identifier)
WHERE NOT EXISTS (SELECT 1 FROM posted_invoices p WHERE p.invoice_number = l.invoice_number)
  AND l.invoice_date BETWEEN win.win_from AND win.win_to;

CREATE OR REPLACE TABLE reconciliation_taxes AS
WITH tax_items AS (
    SELECT catalog_identifier FROM tax_lines
    UNION
    SELECT catalog_identifier FROM ref_tax_rates
),
with_lines AS (
    SELECT DISTINCT company_id FROM posted_lines_matched WHERE rated_company
),
rated AS (
    SELECT t.company_id, min(t.company_identifier) AS company_identifier, t.catalog_identifier,
           sum(t.tax_amount)::DECIMAL(18, 2) AS rated_tax
    FROM tax_lines t JOIN with_lines USING (company_id)
    GROUP BY t.company_id, t.catalog_identifier
),
posted AS (
    SELECT company_id, company_identifier, rated_company, catalog_identifier,
           sum(ext_price)::DECIMAL(18, 2) AS posted_tax,
           string_agg(DISTINCT invoice_number, ';' ORDER BY invoice_number) AS invoice_numbers
    FROM posted_lines_matched
    WHERE catalog_identifier IN (SELECT catalog_identifier FROM tax_items)
    GROUP BY company_id, company_identifier, rated_company, catalog_identifier
),
joined AS (
    SELECT coalesce(r.company_identifier, p.company_identifier) AS company_identifier,
           coalesce(r.company_id, p.company_id) AS company_id,
           catalog_identifier,
           r.company_id IS NOT NULL AS has_rated,
           p.company_id IS NOT NULL AS has_posted,
           coalesce(r.rated_tax, 0)::DECIMAL(18, 2) AS rated_tax,
           coalesce(p.posted_tax, 0)::DECIMAL(18, 2) AS posted_tax,
           coalesce(p.invoice_numbers, '') AS invoice_numbers
    FROM rated r
    FULL OUTER JOIN (SELECT * FROM posted WHERE rated_company) p USING (company_id, catalog_identifier)
    UNION ALL
    SELECT company_identifier, company_id, catalog_identifier, false, true, 0, posted_tax, invoice_numbers
    FROM posted WHERE NOT rated_company
),
measured AS (
    SELECT *,
        (posted_tax - rated_tax)::DECIMAL(18, 2) AS variance_amount,
        variance_percent(posted_tax, rated_tax) AS variance_percent
    FROM joined
)
SELECT company_identifier, getvariable('period') AS period, catalog_identifier, rated_tax, posted_tax,
       variance_amount, variance_percent,
       CASE WHEN NOT has_posted AND rated_tax = 0 THEN 'ok'  -- an exemption's zero line posts nothing
            ELSE variance_status(has_posted, has_rated, rated_tax, variance_amount, variance_percent)
       END AS status,
       invoice_numbers,
       company_id
FROM measured;
