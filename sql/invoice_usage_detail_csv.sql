-- invoice_usage_detail_csv: the rows of usage_detail.csv (CONTRACT.md columns, in order).
-- reads: rated_usage, ref_products, getvariable('fallback_sku'). writes: nothing (a query).
-- grain: rated CDR, sorted by cdr_id (unique). amount has its plan's decimals
-- (rated_usage.amount_decimals): the DECIMAL(18,6) text with the surplus zeros cut off, which is
-- exact because the amount is already rounded to those decimals.
SELECT u.cdr_id, u.account, u.company_identifier, u.usage_date,
       u.start_utc AS start, u.direction, u.origin, u.destination, u.matched_prefix, u.product,
       coalesce(nullif(trim(p.catalog_identifier), ''), getvariable('fallback_sku')) AS catalog_identifier,
       u.duration, u.billed_quantity,
       CASE WHEN u.amount_decimals <= 0
            THEN split_part(CAST(CAST(u.amount AS DECIMAL(18, 6)) AS VARCHAR), '.', 1)
            ELSE left(CAST(CAST(u.amount AS DECIMAL(18, 6)) AS VARCHAR),
                      length(CAST(CAST(u.amount AS DECIMAL(18, 6)) AS VARCHAR)) - (6 - least(u.amount_decimals, 6)))
       END AS amount,
       u.source_file, u.source_line
FROM rated_usage u
LEFT JOIN ref_products p ON p.product = u.product
ORDER BY u.cdr_id
