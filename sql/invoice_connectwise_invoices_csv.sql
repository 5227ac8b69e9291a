-- invoice_connectwise_invoices_csv: the rows of connectwise_invoices.csv, one line of a ConnectWise
-- Miscellaneous invoice (multiline mode: one product line per invoice line) per row.
-- reads: invoice_lines, invoice_numbers, getvariable('invoice_date'). writes: nothing (a query).
-- grain: invoice line of a customer that is not held back; one invoice per customer and period,
-- dated the period's last day, numbered from the invoice number book.
SELECT n.invoice_number AS "invoiceNumber", 'Miscellaneous' AS type, l.company_id AS "company/id",
       l.company_identifier AS "company/identifier", getvariable('invoice_date') AS date,
       l.catalog_identifier AS "catalogItem/identifier", l.description, l.quantity,
       l.unit_price AS price, l.amount AS "extPrice", false AS "taxableFlag"
FROM invoice_lines l
JOIN invoice_numbers n USING (company_id)
WHERE NOT l.held
ORDER BY n.invoice_number, l.line_no
