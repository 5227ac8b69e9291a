-- reconcile_posted_tables: the tables posted invoices are loaded into, empty.
-- reads: nothing. writes: posted_invoices (grain: posted invoice or credit memo, as written in
-- paths.posted) and posted_invoice_lines (grain: line of a posted invoice, from invoice-line CSVs).
-- pipeline/posted.go fills them; amounts are as written (a credit memo's sign is applied by
-- reconcile_posted_matched.sql); invoice_date is the calendar date as written, no zone conversion.
CREATE OR REPLACE TABLE posted_invoices (
    invoice_number VARCHAR NOT NULL, type VARCHAR, company_id BIGINT,
    company_identifier VARCHAR NOT NULL, company_name VARCHAR, invoice_date DATE NOT NULL,
    subtotal DECIMAL(18, 2) NOT NULL, sales_tax DECIMAL(18, 2) NOT NULL, total DECIMAL(18, 2) NOT NULL,
    status_name VARCHAR, is_closed BOOLEAN, file VARCHAR NOT NULL, line INTEGER NOT NULL);
CREATE OR REPLACE TABLE posted_invoice_lines (
    invoice_number VARCHAR NOT NULL, type VARCHAR, company_id BIGINT, company_identifier VARCHAR,
    invoice_date DATE, catalog_identifier VARCHAR NOT NULL, ext_price DECIMAL(18, 2) NOT NULL,
    file VARCHAR NOT NULL, line INTEGER NOT NULL);
