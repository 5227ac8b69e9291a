-- invoice_quickbooks_csv: the rows of quickbooks_invoices.csv in QuickBooks Online's invoice import
-- template (one row per line, the invoice number repeated), plus `Account` (products.csv
-- gl_account) added at the end for the item set-up.
-- reads: invoice_lines, invoice_numbers, getvariable('invoice_date', 'due_date', 'terms_days',
--   'period'). writes: nothing (a query). grain: invoice line of a customer not held back.
-- Item tax code is NON on every line: the taxes are their own lines already.
SELECT n.invoice_number AS "Invoice no", l.company_name AS "Customer",
       getvariable('invoice_date') AS "Invoice date", getvariable('due_date') AS "Due date",
       l.catalog_identifier AS "Item (Product/Service)", l.description AS "Item Description",
       l.quantity AS "Item Quantity", l.unit_price AS "Item Rate", l.amount AS "Item Amount",
       'NON' AS "Item tax code", 'Net ' || getvariable('terms_days') AS "Terms",
       'Usage ' || getvariable('period') || ' ' || l.company_identifier AS "Memo",
       getvariable('invoice_date') AS "Service Date", coalesce(l.gl_account, '') AS "Account"
FROM invoice_lines l
JOIN invoice_numbers n USING (company_id)
WHERE NOT l.held
ORDER BY n.invoice_number, l.line_no
