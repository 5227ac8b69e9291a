-- reference_tables: the reference data's tables, empty.
-- reads: nothing. writes: ref_customers, ref_products, ref_plans, ref_time_bands, ref_rates,
-- ref_tax_rates (grains in TABLES.md). pipeline/reference.go fills them from the validated CSVs.
CREATE OR REPLACE TABLE ref_customers (
    account VARCHAR NOT NULL, company_id BIGINT NOT NULL, company_identifier VARCHAR NOT NULL,
    company_name VARCHAR NOT NULL, agreement_id BIGINT, rate_plan VARCHAR NOT NULL,
    jurisdiction VARCHAR NOT NULL, lines INTEGER NOT NULL, tax_exempt VARCHAR[] NOT NULL,
    invoice_mode VARCHAR, effective_from DATE NOT NULL, effective_to DATE,
    file VARCHAR, line INTEGER);
CREATE OR REPLACE TABLE ref_products (
    product VARCHAR NOT NULL, catalog_identifier VARCHAR, description VARCHAR NOT NULL,
    taxable BOOLEAN NOT NULL, tax_class VARCHAR NOT NULL, gl_account VARCHAR,
    file VARCHAR, line INTEGER);
CREATE OR REPLACE TABLE ref_plans (
    plan VARCHAR NOT NULL, rounding_method VARCHAR NOT NULL, rounding_decimals INTEGER NOT NULL,
    currency VARCHAR NOT NULL, file VARCHAR, line INTEGER);
CREATE OR REPLACE TABLE ref_time_bands (
    band VARCHAR NOT NULL, isodow INTEGER NOT NULL, start_minute INTEGER NOT NULL,
    end_minute INTEGER NOT NULL, file VARCHAR, line INTEGER);
CREATE OR REPLACE TABLE ref_rates (
    rate_id INTEGER NOT NULL, plan VARCHAR NOT NULL, product VARCHAR NOT NULL,
    usage_type VARCHAR NOT NULL, direction VARCHAR NOT NULL, prefix VARCHAR NOT NULL,
    time_band VARCHAR NOT NULL, tier_start BIGINT NOT NULL, tier_end BIGINT,
    rate DECIMAL(18, 9) NOT NULL, rate_unit BIGINT NOT NULL, increment BIGINT NOT NULL,
    connect_fee DECIMAL(18, 9) NOT NULL, min_charge DECIMAL(18, 9), max_charge DECIMAL(18, 9),
    effective_from DATE NOT NULL, effective_to DATE, file VARCHAR, line INTEGER);
CREATE OR REPLACE TABLE ref_tax_rates (
    jurisdiction VARCHAR NOT NULL, tax_code VARCHAR NOT NULL, tax_name VARCHAR NOT NULL,
    level VARCHAR NOT NULL, tax_class VARCHAR NOT NULL, percent DECIMAL(18, 6),
    amount_per_line DECIMAL(18, 6), base_percent DECIMAL(9, 4) NOT NULL,
    base_includes VARCHAR[] NOT NULL, catalog_identifier VARCHAR NOT NULL,
    effective_from DATE NOT NULL, effective_to DATE, file VARCHAR, line INTEGER);
