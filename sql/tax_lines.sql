-- tax_lines: the tax stage's output table, empty; pipeline.TaxStage inserts the engine's lines.
-- reads: nothing. writes: tax_lines, one row per company × tax code (columns in TABLES.md; basis,
-- rate and exempt are added at the end: basis 'percent' | 'per_line', rate the percent (7.44) or the
-- amount per line of the row reported, exempt true when an exemption removed the tax).
CREATE OR REPLACE TABLE tax_lines (
    company_id BIGINT NOT NULL, company_identifier VARCHAR NOT NULL, jurisdiction VARCHAR NOT NULL,
    tax_code VARCHAR NOT NULL, tax_name VARCHAR NOT NULL, level VARCHAR NOT NULL,
    taxable_base DECIMAL(18, 2) NOT NULL, tax_amount DECIMAL(18, 2) NOT NULL,
    catalog_identifier VARCHAR NOT NULL, note VARCHAR NOT NULL,
    basis VARCHAR NOT NULL, rate DECIMAL(18, 6), exempt BOOLEAN NOT NULL);
