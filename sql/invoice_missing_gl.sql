-- invoice_missing_gl: invoice lines whose catalog item has no GL account, added to the error queue.
-- reads: invoice_lines. writes: export_errors (appends kind missing_gl_account).
-- grain: catalog_identifier with no gl_account in products.csv (a tax's GL account is the
-- products.csv row whose product is the tax code, else whose catalog_identifier is the tax's).
-- Such lines are still exported, with an empty AccountCode / Account: Xero rejects them until a
-- gl_account is set (QuickBooks takes the account from the item).
INSERT INTO export_errors
SELECT 'missing_gl_account', '', catalog_identifier,
       'no gl_account in products.csv for catalog item ' || catalog_identifier
           || ': AccountCode is empty in xero_invoices.csv',
       'products.csv', NULL, count(*)::BIGINT, NULL, NULL
FROM invoice_lines
WHERE gl_account IS NULL AND NOT held
GROUP BY catalog_identifier;
