-- invoice_xero_csv: the rows of xero_invoices.csv in Xero's sales invoice import template.
-- reads: invoice_lines, invoice_numbers, getvariable('invoice_date', 'due_date', 'period',
--   'currency'). writes: nothing (a query). grain: invoice line of a customer not held back, for
-- the invoices ranked ? to ? by number (Xero takes at most 500 invoices per file).
-- TaxType 'Tax Exempt' and TaxAmount 0.00: the taxes are their own lines already.
SELECT "*ContactName", "*InvoiceNumber", "Reference", "*InvoiceDate", "*DueDate",
       "InventoryItemCode", "*Description", "*Quantity", "*UnitAmount", "*AccountCode", "*TaxType",
       "TaxAmount", "Currency"
FROM (
    SELECT l.company_name AS "*ContactName", n.invoice_number AS "*InvoiceNumber",
           'Usage ' || getvariable('period') || ' ' || l.company_identifier AS "Reference",
           getvariable('invoice_date') AS "*InvoiceDate", getvariable('due_date') AS "*DueDate",
           l.catalog_identifier AS "InventoryItemCode", l.description AS "*Description",
           l.quantity AS "*Quantity", l.unit_price AS "*UnitAmount",
           coalesce(l.gl_account, '') AS "*AccountCode", 'Tax Exempt' AS "*TaxType",
           CAST(0 AS DECIMAL(18, 2)) AS "TaxAmount", getvariable('currency') AS "Currency",
           dense_rank() OVER (ORDER BY n.invoice_number) AS invoice_rank, l.line_no
    FROM invoice_lines l
    JOIN invoice_numbers n USING (company_id)
    WHERE NOT l.held
)
WHERE invoice_rank BETWEEN ? AND ?
ORDER BY "*InvoiceNumber", line_no
