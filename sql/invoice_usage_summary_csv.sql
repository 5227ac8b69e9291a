-- invoice_usage_summary_csv: the rows of usage_summary.csv (CONTRACT.md columns, in order).
-- reads: usage_summary. writes: nothing (a query). grain: company × product × usage_period
-- (usage_period, added at the end, is the period itself except on lines of late usage of a
-- closed period).
SELECT company_id, company_identifier, product, catalog_identifier, description, calls,
       billed_quantity, amount, usage_period
FROM usage_summary
ORDER BY company_identifier, company_id, product, usage_period
