-- tax_engine_level: computes the taxes of one dependency level (variable tax_level): level 0 has no
-- base_includes, level k includes only taxes of lower levels, so their rounded amounts are known.
-- reads: tax_engine_taxes, tax_engine_parts, tax_engine_customers, tax_engine_units (lower
--   levels); variables tax_level, tax_mode ('invoice' | 'line').
-- writes: appends to tax_engine_units, one row per customer × tax × rounding unit. The rounding
--   unit is the whole invoice ('') in 'invoice' mode; in 'line' mode it is the summary line (the
--   product), and a per-line fee is a unit of its own (''), as it is an invoice line of its own.
--   base   exact taxable base: charges × base_percent / 100 (+ included rounded amounts), or the
--          number of lines for a per-line fee
--   tax    exact tax: each charge at the rate in effect on its dates, included amounts at the
--          reported row's rate, or lines × amount_per_line
--   amount tax rounded half-up to 2 decimals once for the unit; 0.00 when the customer is exempt
INSERT INTO tax_engine_units
WITH lvl AS (
    SELECT * FROM tax_engine_taxes WHERE dep_level = getvariable('tax_level')
), contrib AS (
    SELECT p.company_id, p.tax_code,
           CASE WHEN getvariable('tax_mode') = 'line' THEN p.product ELSE '' END AS unit,
           CAST(CAST(p.amount AS DECIMAL(38, 2)) * p.base_percent * 0.01 AS DECIMAL(38, 8)) AS base,
           CAST(CAST(CAST(p.amount AS DECIMAL(38, 2)) * p.base_percent * 0.01 AS DECIMAL(38, 8))
                * p.percent * 0.01 AS DECIMAL(38, 16)) AS tax
    FROM tax_engine_parts p
    JOIN lvl l ON l.company_id = p.company_id AND l.tax_code = p.tax_code
    WHERE p.percent IS NOT NULL AND l.percent IS NOT NULL
    UNION ALL
    SELECT l.company_id, l.tax_code, u.unit, CAST(u.amount AS DECIMAL(38, 8)),
           CAST(CAST(u.amount AS DECIMAL(38, 2)) * l.percent * 0.01 AS DECIMAL(38, 16))
    FROM lvl l
    JOIN tax_engine_units u ON u.company_id = l.company_id AND list_contains(l.base_includes, u.tax_code)
    WHERE l.percent IS NOT NULL
    UNION ALL
    SELECT l.company_id, l.tax_code, '', CAST(c.lines AS DECIMAL(38, 8)),
           CAST(CAST(c.lines AS DECIMAL(18, 0)) * l.amount_per_line AS DECIMAL(38, 16))
    FROM lvl l
    JOIN tax_engine_customers c ON c.company_id = l.company_id
    WHERE l.amount_per_line IS NOT NULL
)
SELECT c.company_id, c.tax_code, c.unit, sum(c.base), sum(c.tax),
       CASE WHEN any_value(l.exempt_code) IS NULL THEN half_up_2(sum(c.tax)) ELSE 0 END
FROM contrib c
JOIN lvl l ON l.company_id = c.company_id AND l.tax_code = c.tax_code
GROUP BY c.company_id, c.tax_code, c.unit;
