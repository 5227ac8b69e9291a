package pipeline

import (
	"context"
	"testing"
)

// benchmarkInvoice runs summary + export on n rated CDRs spread over 200 customers and 4 products.
func benchmarkInvoice(b *testing.B, mode string, n int) {
	r := newTestRun(b)
	r.Cfg.Paths.Staging = b.TempDir()
	r.Cfg.Billing.InvoiceMode = mode
	if err := r.SetVariables(context.Background()); err != nil {
		b.Fatal(err)
	}
	mustExec(b, r, `INSERT INTO ref_products VALUES
		('VOICE-OUT', 'CW-VOICE-OUT', 'Outbound voice usage', true, 'voip', '4000', 'products.csv', 2),
		('DATA', 'CW-DATA', 'Data', false, 'data', '4010', 'products.csv', 3)`)
	mustExec(b, r, `CREATE TABLE rated_usage AS
		SELECT 'c' || lpad(CAST(i AS VARCHAR), 9, '0') AS cdr_id, 'acct' || (i % 200) AS account,
		       CAST(1000 + i % 200 AS BIGINT) AS company_id, 'CO' || (i % 200) AS company_identifier,
		       'Company ' || (i % 200) AS company_name, CAST(9000 + i % 200 AS BIGINT) AS agreement_id,
		       'US-FL' AS jurisdiction, NULL::VARCHAR AS invoice_mode,
		       DATE '2025-10-01' + CAST(i % 31 AS INTEGER) AS usage_date,
		       TIMESTAMP '2025-10-01 00:00:00' + to_seconds(i) AS start_utc, 'outbound' AS direction,
		       '+13055550100' AS origin, '+13055550123' AS destination,
		       CASE WHEN i % 4 = 3 THEN 'data' ELSE 'voice' END AS usage_type, 'std' AS plan,
		       ['VOICE-OUT', 'VOICE-INTL', 'FAX', 'DATA'][i % 4 + 1] AS product, '+1305' AS matched_prefix,
		       '' AS time_band, CAST(i % 600 AS BIGINT) AS duration, CAST(i % 600 AS BIGINT) AS quantity,
		       CAST(i % 600 AS BIGINT) AS billed_quantity,
		       CAST(CAST(i % 9973 AS DECIMAL(18, 0)) * 0.0001 AS DECIMAL(18, 6)) AS amount, 4 AS amount_decimals,
		       'pbx1/a.csv' AS source_file, CAST(i + 1 AS BIGINT) AS source_line
		FROM range(?) t(i)`, n)
	mustExec(b, r, `CREATE TABLE tax_lines AS SELECT DISTINCT company_id, company_identifier, 'US-FL' AS jurisdiction,
		'E911' AS tax_code, 'E911 fee' AS tax_name, 'county' AS level, CAST(0 AS DECIMAL(18,2)) AS taxable_base,
		CAST(0.40 AS DECIMAL(18,2)) AS tax_amount, 'TAX-E911' AS catalog_identifier, '' AS note FROM rated_usage`)
	mustExec(b, r, `CREATE TABLE rating_errors (kind VARCHAR, cdr_id VARCHAR, account VARCHAR, key VARCHAR,
		detail VARCHAR, source_file VARCHAR, source_line BIGINT)`)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := (SummaryStage{}).Run(ctx, r); err != nil {
			b.Fatal(err)
		}
		if err := (ExportStage{}).Run(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "cdrs/s")
}

func BenchmarkInvoiceSummary100k(b *testing.B) { benchmarkInvoice(b, "summary", 100_000) }
func BenchmarkInvoiceDetail100k(b *testing.B)  { benchmarkInvoice(b, "detail", 100_000) }
