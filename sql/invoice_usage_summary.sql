-- invoice_usage_summary: rated usage rolled up per customer and product, mapped onto the catalog.
-- reads: rated_usage, ref_products, getvariable('fallback_sku'), getvariable('invoice_mode').
-- writes: usage_summary (grain: company_id × product × usage_period; columns in TABLES.md).
-- usage_period is the period itself, or an earlier closed month whose late usage this period bills
-- (pipeline.LateUsageStage) on a line of its own, dated usage_from .. usage_to.
-- amount = Σ rated_usage.amount (exact, at the plans' decimals) rounded once, half-up, to 2
-- decimals. catalog_identifier = products.csv's catalog_identifier, or the fallback SKU when the
-- product has no row or an empty catalog_identifier (listed as unmapped_product by the export).
-- Company attributes come from the company's latest rated CDR (start_utc, then cdr_id), so a
-- customer whose reference row changed during the period gets one consistent set.
-- invoice_mode = the customer's override (customers.csv) else billing.invoice_mode.
CREATE OR REPLACE TABLE usage_summary AS
WITH latest AS (
    -- one arg_max for all the attributes: each would compare the (start_utc, cdr_id) keys again
    SELECT company_id,
           arg_max({'identifier': company_identifier, 'name': company_name, 'agreement_id': agreement_id,
                    'jurisdiction': jurisdiction, 'invoice_mode': nullif(trim(invoice_mode), '')},
                   (start_utc, cdr_id)) AS c
    FROM rated_usage
    GROUP BY company_id
),
company AS (
    SELECT company_id, c.identifier AS company_identifier, c.name AS company_name,
           c.agreement_id, c.jurisdiction, coalesce(c.invoice_mode, getvariable('invoice_mode')) AS invoice_mode
    FROM latest
),
usage AS (
    SELECT company_id, product, strftime(month, '%Y-%m') AS usage_period, usage_type, calls, billed_quantity,
           amount, CAST(month AS DATE) AS usage_from, last_day(month) AS usage_to
    FROM (SELECT company_id, product, date_trunc('month', usage_date) AS month,
                 min(usage_type) AS usage_type,
                 count(*) AS calls,
                 sum(billed_quantity)::BIGINT AS billed_quantity,
                 half_up_2(sum(amount)) AS amount
          FROM rated_usage
          GROUP BY company_id, product, month)
)
SELECT c.company_id, c.company_identifier, c.company_name, c.agreement_id, c.jurisdiction,
       c.invoice_mode, u.product,
       coalesce(nullif(trim(p.catalog_identifier), ''), getvariable('fallback_sku')) AS catalog_identifier,
       coalesce(nullif(trim(p.description), ''), u.product) AS description,
       -- a product with no products.csv row: taxable, in tax class 'unmapped' (only taxes of
       -- class 'all' apply) until someone maps it.
       coalesce(p.taxable, true) AS taxable,
       coalesce(p.tax_class, 'unmapped') AS tax_class,
       -- the product's GL account, else that of a products.csv row with the same catalog item
       -- (e.g. a row for the fallback SKU)
       coalesce(nullif(trim(p.gl_account), ''),
                (SELECT min(nullif(trim(g.gl_account), '')) FROM ref_products g
                 WHERE g.catalog_identifier = coalesce(nullif(trim(p.catalog_identifier), ''),
                                                       getvariable('fallback_sku')))) AS gl_account,
       u.usage_type, u.calls, u.billed_quantity, u.amount, u.usage_period, u.usage_from, u.usage_to
FROM usage u
JOIN company c USING (company_id)
LEFT JOIN ref_products p ON p.product = u.product
ORDER BY c.company_id, u.product, u.usage_period;
