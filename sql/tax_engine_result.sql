-- tax_engine_result: the embedded engine's answer, one row per customer × tax code.
-- reads: tax_engine_taxes, tax_engine_units, tax_engine_customers.
-- writes: nothing (a query; pipeline.SQLTaxEngine turns the rows into TaxLines and their notes).
-- taxable_base is the exact base rounded half-up to cents for display (the tax was computed on the
-- exact base); tax_amount is the sum of the rounded unit amounts.
WITH u AS (
    SELECT company_id, tax_code, sum(base) AS base, sum(amount) AS amount
    FROM tax_engine_units GROUP BY company_id, tax_code
)
SELECT t.company_id, c.company_identifier, t.jurisdiction, t.tax_code, t.tax_name, t.level,
       CAST(half_up_2(coalesce(u.base, 0)) AS VARCHAR) AS taxable_base,
       CAST(CAST(coalesce(u.amount, 0) AS DECIMAL(18, 2)) AS VARCHAR) AS tax_amount,
       t.catalog_identifier, t.tax_class,
       CAST(t.percent AS VARCHAR) AS percent, CAST(t.amount_per_line AS VARCHAR) AS amount_per_line,
       CAST(t.base_percent AS VARCHAR) AS base_percent, array_to_string(t.base_includes, ';') AS base_includes,
       t.exempt_code, c.exempt_source, c.lines, t.rate_history
FROM tax_engine_taxes t
JOIN tax_engine_customers c ON c.company_id = t.company_id
LEFT JOIN u ON u.company_id = t.company_id AND u.tax_code = t.tax_code
ORDER BY c.company_identifier, t.company_id, t.tax_code;
