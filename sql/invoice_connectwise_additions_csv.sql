-- invoice_connectwise_additions_csv: the rows of connectwise_additions.csv, one ConnectWise agreement
-- addition per invoice line (usage and tax lines alike: taxes are their own catalog products).
-- reads: invoice_lines, getvariable('period_from', 'period_to'). writes: nothing (a query).
-- grain: invoice line of a customer that is not held back and has an agreement_id (customers
-- without one are listed as missing_agreement in errors/export_errors.csv). Dated to the billing
-- period: effectiveDate = first day, cancelledDate = last day. taxableFlag is false on every line:
-- cdrbill computes the communications taxes and exports them as their own lines, so ConnectWise
-- must not add a sales tax of its own on top.
SELECT agreement_id AS "agreement/id", company_id AS "company/id",
       company_identifier AS "company/identifier", catalog_identifier AS "product/identifier",
       quantity, unit_price AS "unitPrice", 'Billable' AS "billCustomer", false AS "taxableFlag",
       getvariable('period_from') AS "effectiveDate", getvariable('period_to') AS "cancelledDate",
       description AS "invoiceDescription"
FROM invoice_lines
WHERE NOT held AND agreement_id IS NOT NULL
ORDER BY company_identifier, company_id, line_no
