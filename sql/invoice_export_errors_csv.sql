-- invoice_export_errors_csv: the rows of errors/export_errors.csv (CONTRACT.md columns).
-- reads: export_errors. writes: nothing (a query). grain: export_errors row.
SELECT kind, account, key, detail, source_file, source_line, count
FROM export_errors
ORDER BY kind, account, key, source_file, source_line, company_id NULLS FIRST, detail
