-- tax_request: the tax engine's input for the period, built from the run's tables. It is what an
-- external engine (AvaTax for Communications, SureTax) would be sent; the embedded engine reads it
-- back through pipeline.TaxRequest.
-- reads: usage_summary (its taxable lines), rated_usage (company, product, usage_date, amount),
--   ref_customers (per account, the row in effect on period_to, else the latest before it),
--   ref_tax_rates (only the dates where a row starts or ends); variables period_from, period_to.
-- writes:
--   tax_request_segments   one row per date range of the period inside which no tax row starts or
--                          ends (the period whole when no rate changes in it)
--   tax_request_customers  one row per company with a taxable summary line: jurisdiction, lines
--                          (summed over its accounts), tax_exempt (union over its accounts)
--   tax_request_charges    one row per company × taxable product × segment; the segment amounts of
--                          a product add up exactly to its usage_summary.amount (cumulative
--                          rounding of the rated amounts by usage date; any difference goes to the
--                          last segment, which is always present, even at 0.00)
CREATE OR REPLACE TEMP TABLE tax_request_segments AS
WITH cuts AS (
    SELECT getvariable('period_from') AS d
    UNION
    SELECT effective_from FROM ref_tax_rates
    WHERE effective_from > getvariable('period_from') AND effective_from <= getvariable('period_to')
    UNION
    SELECT CAST(effective_to + 1 AS DATE) FROM ref_tax_rates
    WHERE effective_to >= getvariable('period_from') AND effective_to < getvariable('period_to')
)
SELECT CAST(row_number() OVER (ORDER BY d) AS INTEGER) AS segment, d AS date_from,
       CAST(coalesce(lead(d) OVER (ORDER BY d) - 1, getvariable('period_to')) AS DATE) AS date_to
FROM cuts;

CREATE OR REPLACE TEMP TABLE tax_request_customers AS
WITH summ AS (
    SELECT company_id, min(company_identifier) AS company_identifier,
           min(jurisdiction) AS summary_jurisdiction
    FROM usage_summary WHERE taxable
    GROUP BY company_id
), acct AS (
    SELECT * FROM ref_customers
    WHERE effective_from <= getvariable('period_to')
    QUALIFY row_number() OVER (PARTITION BY account ORDER BY effective_from DESC) = 1
)
SELECT s.company_id, s.company_identifier,
       coalesce(min(a.jurisdiction), s.summary_jurisdiction) AS jurisdiction,
       CAST(count(DISTINCT a.jurisdiction) AS INTEGER) AS jurisdictions,
       CAST(coalesce(sum(a.lines), 0) AS INTEGER) AS lines,
       coalesce(list_sort(list_distinct(flatten(list(a.tax_exempt) FILTER (WHERE a.tax_exempt IS NOT NULL)))),
                []::VARCHAR[]) AS tax_exempt,
       coalesce(string_agg(parse_filename(coalesce(a.file, 'customers.csv')) || ':' || a.line, ', '
                           ORDER BY a.line) FILTER (WHERE len(a.tax_exempt) > 0), '') AS exempt_source
FROM summ s
LEFT JOIN acct a ON a.company_id = s.company_id
GROUP BY s.company_id, s.company_identifier, s.summary_jurisdiction;

CREATE OR REPLACE TEMP TABLE tax_request_charges AS
WITH lines AS (
    -- late usage of a closed period (its own usage_summary line) is taxed with the period's
    -- charges of the product, at the rates of the period's last segment
    SELECT company_id, product, tax_class, sum(amount) AS amount
    FROM usage_summary WHERE taxable GROUP BY company_id, product, tax_class
), rated AS (
    SELECT ru.company_id, ru.product, s.segment, sum(ru.amount) AS amount
    FROM rated_usage ru
    JOIN tax_request_segments s ON ru.usage_date BETWEEN s.date_from AND s.date_to
    GROUP BY ru.company_id, ru.product, s.segment
), cum AS (
    SELECT l.company_id, l.product, l.tax_class, l.amount AS line_amount, s.segment, s.date_from,
           s.date_to,
           half_up_2(sum(coalesce(r.amount, 0)) OVER (PARTITION BY l.company_id, l.product
               ORDER BY s.segment ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) AS cum_amount,
           s.segment = max(s.segment) OVER (PARTITION BY l.company_id, l.product) AS is_last
    FROM lines l
    CROSS JOIN tax_request_segments s
    LEFT JOIN rated r ON r.company_id = l.company_id AND r.product = l.product AND r.segment = s.segment
), parts AS (
    SELECT *,
           cum_amount - coalesce(lag(cum_amount) OVER (PARTITION BY company_id, product ORDER BY segment), 0)
           + CASE WHEN is_last THEN line_amount - cum_amount ELSE 0 END AS part
    FROM cum
)
SELECT company_id, product, tax_class, segment, date_from, date_to,
       CAST(part AS DECIMAL(18, 2)) AS amount
FROM parts
WHERE part <> 0 OR is_last;
