-- tax_engine_prepare: the embedded tax engine's first step: which tax rows apply to which charge.
-- reads: tax_engine_customers, tax_engine_exemptions, tax_engine_charges, tax_engine_levels (loaded
--   by pipeline.SQLTaxEngine from a TaxRequest), ref_tax_rates; variables tax_from, tax_to (DATE).
-- writes:
--   tax_engine_rows   customer × tax row matching the customer's jurisdiction by hyphen-separated
--                     segments (US and US-FL apply to US-FL-MIAMI; US-F does not apply to US-FL)
--                     and in effect at some day of the period
--   tax_engine_parts  charge × tax code: the deepest-jurisdiction row of the code in effect on the
--                     charge's date_from (a deeper row of the same code overrides a wider one),
--                     kept when its tax_class is the charge's class or 'all'
--   tax_engine_taxes  customer × tax code: the row reported (the one of the customer's latest
--                     charge that is not 0.00, else of its latest charge): its name, catalog
--                     identifier, rate shown, amount per line, and the rate applied to included
--                     taxes; its dependency level; the exemption that removes it, if any
--   tax_engine_units  empty; tax_engine_level.sql fills it one dependency level at a time
CREATE OR REPLACE TEMP TABLE tax_engine_rows AS
SELECT c.company_id, t.jurisdiction, t.tax_code, t.tax_name, t.level, t.tax_class, t.percent,
       t.amount_per_line, t.base_percent, list_sort(list_distinct(t.base_includes)) AS base_includes,
       t.catalog_identifier, t.effective_from, t.effective_to,
       len(string_split(t.jurisdiction, '-')) AS depth
FROM tax_engine_customers c
JOIN ref_tax_rates t
  ON c.jurisdiction = t.jurisdiction OR starts_with(c.jurisdiction, t.jurisdiction || '-')
WHERE t.effective_from <= getvariable('tax_to')
  AND (t.effective_to IS NULL OR t.effective_to >= getvariable('tax_from'));

CREATE OR REPLACE TEMP TABLE tax_engine_parts AS
SELECT * FROM (
    SELECT ch.charge_id, ch.product, ch.tax_class AS charge_class, ch.date_from AS charge_from,
           ch.amount, r.*
    FROM tax_engine_charges ch
    JOIN tax_engine_rows r
      ON r.company_id = ch.company_id
     AND r.effective_from <= ch.date_from
     AND (r.effective_to IS NULL OR ch.date_from <= r.effective_to)
    QUALIFY row_number() OVER (PARTITION BY ch.charge_id, r.tax_code
                               ORDER BY r.depth DESC, r.effective_from DESC) = 1
)
WHERE tax_class = 'all' OR tax_class = charge_class;

CREATE OR REPLACE TEMP TABLE tax_engine_taxes AS
WITH reported AS (
    SELECT * FROM tax_engine_parts
    QUALIFY row_number() OVER (PARTITION BY company_id, tax_code
                               ORDER BY amount <> 0 DESC, charge_from DESC, depth DESC,
                                        effective_from DESC) = 1
), history AS (
    -- the distinct rows a tax used over the period's charges (more than one: the rate changed)
    SELECT company_id, tax_code,
           string_agg(DISTINCT CAST(effective_from AS VARCHAR) || '=' ||
                      CAST(coalesce(percent, amount_per_line) AS VARCHAR), ';') AS rate_history
    FROM tax_engine_parts
    WHERE amount <> 0 OR percent IS NULL
    GROUP BY company_id, tax_code
)
SELECT p.company_id, p.jurisdiction, p.tax_code, p.tax_name, p.level, p.tax_class, p.percent,
       p.amount_per_line, p.base_percent, p.base_includes, p.catalog_identifier, p.effective_from,
       coalesce(lv.level, 0) AS dep_level,
       (SELECT min(x.code) FROM tax_engine_exemptions x
        WHERE x.company_id = p.company_id
          AND (x.code = p.tax_code OR lower(x.code) = 'all')) AS exempt_code,
       coalesce(h.rate_history, '') AS rate_history
FROM reported p
LEFT JOIN tax_engine_levels lv ON lv.tax_code = p.tax_code
LEFT JOIN history h ON h.company_id = p.company_id AND h.tax_code = p.tax_code;

CREATE OR REPLACE TEMP TABLE tax_engine_units (
    company_id BIGINT, tax_code VARCHAR, unit VARCHAR,
    base DECIMAL(38, 8), tax DECIMAL(38, 16), amount DECIMAL(18, 2));
