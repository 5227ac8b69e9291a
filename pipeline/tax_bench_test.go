package pipeline

import (
	"context"
	"testing"
)

// BenchmarkTaxStage: 5,000 customers in three jurisdictions, 3 voice products each, usage on every
// day of the period and a mid-period rate change, with tax on tax; one op is the whole stage
// (request, engine, tax_lines table and CSV).
func BenchmarkTaxStage(b *testing.B) {
	r := newTestRun(b)
	taxWorld(b, r)
	loadTaxRates(b, r, rowsUSF+rowsTaxOnTax+`US-FL,FL-911,FL 911,state,voice,,0.40,,,TAX-FL-911,2025-01-01,
US-FL-MIAMI,MIA,Miami,local,voice,5.22,,,,TAX-MIA,2025-01-01,2025-10-15
US-FL-MIAMI,MIA,Miami,local,voice,5.5,,,,TAX-MIA,2025-10-16,
US-CA,CA-PPP,CA public purpose,state,voice,,1.11,,,TAX-CA-PPP,2023-04-01,
US-CA-SANFRANCISCO,SF-UUT,SF utility users,local,voice,7.5,,,CA-PPP,TAX-SF-UUT,2025-01-01,
`)
	const customers = 5000
	mustExec(b, r, `INSERT INTO ref_customers SELECT 'A' || i, i, 'C' || i, 'Co ' || i, NULL, 'STANDARD',
		['US-FL-MIAMI', 'US-TX-AUSTIN', 'US-CA-SANFRANCISCO'][i % 3 + 1], 1 + i % 7,
		CASE WHEN i % 50 = 0 THEN ['USF'] ELSE []::VARCHAR[] END, NULL, DATE '2025-01-01', NULL, 'customers.csv', i + 1
		FROM range(1, ?) t(i)`, customers+1)
	mustExec(b, r, `INSERT INTO rated_usage (cdr_id, company_id, product, usage_date, amount)
		SELECT i || '-' || p || '-' || d, i, p, CAST(DATE '2025-10-01' + CAST(d AS INTEGER) AS DATE), CAST((i * 7 + d * 13) % 1000 AS DECIMAL(18,6)) * 0.0137
		FROM range(1, ?) a(i), (VALUES ('VOICE-OUT'), ('VOICE-IN'), ('FAX')) b(p), range(0, 31) c(d)`, customers+1)
	mustExec(b, r, `INSERT INTO usage_summary SELECT u.company_id, c.company_identifier, c.company_name, NULL,
		c.jurisdiction, 'summary', u.product, p.catalog_identifier, p.description, p.taxable, p.tax_class,
		p.gl_account, 'voice', count(*), 0, half_up_2(sum(u.amount))
		FROM rated_usage u JOIN ref_customers c ON c.company_id = u.company_id JOIN ref_products p USING (product)
		GROUP BY ALL`)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := (TaxStage{}).Run(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(customers*3*b.N)/b.Elapsed().Seconds(), "summary_lines/s")
	b.ReportMetric(float64(r.Counts["tax_lines"])/float64(b.N), "tax_lines/op")
}
