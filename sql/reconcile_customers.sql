-- reconcile_customers: rated against posted totals, per customer, for the period.
-- reads: usage_summary, tax_lines, reconcile_rated_companies, posted_matched; variables period,
-- variance_threshold_percent (DECIMAL, set by the reconcile stage).
-- writes: reconciliation (grain: customer — a rated company, or a posted company/identifier that
-- matches none). Columns: those of reconciliation.csv, then company_id.
--
-- variance_amount = posted_total - rated_total; variance_percent = variance_amount / rated_total
-- x 100, rounded half away from zero to 2 decimals in integer arithmetic (empty when rated_total
-- is 0). status: missing_posted (rated, nothing posted), unexpected_posted (posted, nothing
-- rated), flagged (|variance_percent| above the threshold; exactly at it is ok; with a zero
-- rated total any variance), else ok.
CREATE OR REPLACE TABLE reconciliation AS
WITH rated AS (
    SELECT c.company_id, c.company_identifier,
           coalesce(s.amount, 0)::DECIMAL(18, 2) AS rated_subtotal,
           coalesce(t.tax, 0)::DECIMAL(18, 2) AS rated_tax
    FROM reconcile_rated_companies c
    LEFT JOIN (SELECT company_id, sum(amount) AS amount FROM usage_summary GROUP BY 1) s USING (company_id)
    LEFT JOIN (SELECT company_id, sum(tax_amount) AS tax FROM tax_lines GROUP BY 1) t USING (company_id)
),
posted AS (
    SELECT company_id, company_identifier, bool_or(rated_company) AS rated_company,
           sum(subtotal)::DECIMAL(18, 2) AS posted_subtotal,
           sum(sales_tax)::DECIMAL(18, 2) AS posted_tax,
           sum(total)::DECIMAL(18, 2) AS posted_total,
           string_agg(invoice_number, ';' ORDER BY invoice_number, type) AS invoice_numbers
    FROM posted_matched
    -- unmatched invoices group by what they say: their company id, else their identifier
    GROUP BY company_id, company_identifier
),
joined AS (
    SELECT
        coalesce(r.company_identifier, p.company_identifier) AS company_identifier,
        coalesce(r.company_id, p.company_id) AS company_id,
        r.company_id IS NOT NULL AS has_rated,
        p.company_identifier IS NOT NULL AS has_posted,
        coalesce(r.rated_subtotal, 0)::DECIMAL(18, 2) AS rated_subtotal,
        coalesce(p.posted_subtotal, 0)::DECIMAL(18, 2) AS posted_subtotal,
        coalesce(r.rated_tax, 0)::DECIMAL(18, 2) AS rated_tax,
        coalesce(p.posted_tax, 0)::DECIMAL(18, 2) AS posted_tax,
        (coalesce(r.rated_subtotal, 0) + coalesce(r.rated_tax, 0))::DECIMAL(18, 2) AS rated_total,
        coalesce(p.posted_total, 0)::DECIMAL(18, 2) AS posted_total,
        coalesce(p.invoice_numbers, '') AS invoice_numbers
    FROM rated r
    FULL OUTER JOIN (SELECT * FROM posted WHERE rated_company) p USING (company_id)
    UNION ALL
    SELECT company_identifier, company_id, false, true, 0, posted_subtotal, 0, posted_tax, 0,
           posted_total, invoice_numbers
    FROM posted WHERE NOT rated_company
),
measured AS (
    SELECT *,
        (posted_total - rated_total)::DECIMAL(18, 2) AS variance_amount,
        variance_percent(posted_total, rated_total) AS variance_percent
    FROM joined
)
SELECT
    company_identifier,
    getvariable('period') AS period,
    rated_subtotal, posted_subtotal, rated_tax, posted_tax, rated_total, posted_total,
    variance_amount,
    variance_percent,
    variance_status(has_posted, has_rated, rated_total, variance_amount, variance_percent) AS status,
    invoice_numbers,
    company_id
FROM measured;
