-- reconcile_posted_matched: which posted invoices belong to the period, and to which customer.
-- reads: posted_invoices, usage_summary, tax_lines; variables period_from, period_to.
-- writes: reconcile_rated_companies (grain: company with rated usage or tax in the period) and
-- posted_matched (grain: posted invoice or credit memo counted for the period).
--
-- Matching rules (README, Reconciliation):
--   period: usage is invoiced in arrears, so an invoice counts for period P when its date lies
--     from P's last day through the day before the last day of the following month (October:
--     2025-10-31 .. 2025-11-29). The windows of consecutive periods do not overlap, so no invoice
--     counts twice; an invoice dated on a period's last day counts for that period.
--   customer: on company/id when the posted invoice carries one (the canonical key), else on
--     company/identifier (case-insensitive). An invoice that matches no rated customer is kept,
--     under its own identifier, and reported as unexpected_posted.
--   sign: a CreditMemo counts negative whatever sign the file writes it with, and nets against
--     the customer's invoices of the period.
CREATE OR REPLACE TABLE reconcile_rated_companies AS
SELECT company_id, min(company_identifier) AS company_identifier
FROM (SELECT company_id, company_identifier FROM usage_summary
      UNION ALL
      SELECT company_id, company_identifier FROM tax_lines)
GROUP BY company_id;

CREATE OR REPLACE TABLE posted_matched AS
WITH win AS (
    SELECT getvariable('period_to')::DATE AS win_from,
           (getvariable('period_from')::DATE + INTERVAL 2 MONTH - INTERVAL 2 DAY)::DATE AS win_to
)
SELECT
    p.invoice_number,
    p.type,
    coalesce(byid.company_id, byident.company_id, p.company_id) AS company_id,
    coalesce(byid.company_identifier, byident.company_identifier, p.company_identifier) AS company_identifier,
    (byid.company_id IS NOT NULL OR byident.company_id IS NOT NULL) AS rated_company,
    p.invoice_date,
    CASE WHEN p.type = 'CreditMemo' THEN -abs(p.subtotal) ELSE p.subtotal END AS subtotal,
    CASE WHEN p.type = 'CreditMemo' THEN -abs(p.sales_tax) ELSE p.sales_tax END AS sales_tax,
    CASE WHEN p.type = 'CreditMemo' THEN -abs(p.total) ELSE p.total END AS total,
    p.file,
    p.line
FROM posted_invoices p
CROSS JOIN win
LEFT JOIN reconcile_rated_companies byid
    ON p.company_id IS NOT NULL AND byid.company_id = p.company_id
LEFT JOIN (
    -- an identifier that two rated companies share matches neither: matching stays on the id
    SELECT lower(company_identifier) AS k, min(company_id) AS company_id, min(company_identifier) AS company_identifier
    FROM reconcile_rated_companies GROUP BY 1 HAVING count(*) = 1
) byident
    ON p.company_id IS NULL AND byident.k = lower(p.company_identifier)
WHERE p.invoice_date BETWEEN win.win_from AND win.win_to;
