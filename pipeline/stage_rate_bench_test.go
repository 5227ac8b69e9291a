package pipeline

import (
	"context"
	"fmt"
	"testing"
)

// rtBenchDeck fills a test run with a deck of `prefixes` voice prefixes (4 to 8 digits after a
// leading 1, two tiers each, plus an rtEmpty-prefix fallback, a peak and an any-band rate per
// prefix on alternate rows), 100 customers on one plan, and `calls` staged calls over October
// to destinations spread over the deck.
func rtBenchDeck(b *testing.B, r *Run, prefixes, calls int) {
	b.Helper()
	mustExec(b, r, rtStagedDDL)
	rtAddPlan(b, r, "BENCH", "half_up", 4)
	mustExec(b, r, `INSERT INTO ref_customers
		SELECT 'ACCT-' || i, 1000 + i, 'C' || i, 'Company ' || i, NULL, 'BENCH', 'US-FL-MIAMI', 1, []::VARCHAR[],
		       NULL, DATE '2025-01-01', NULL, 'customers.csv', i + 2
		FROM range(100) t(i)`)
	for d := 1; d <= 5; d++ {
		mustExec(b, r, `INSERT INTO ref_time_bands VALUES ('peak', ?, 480, 1080, 'time_bands.csv', 2)`, d)
	}
	mustExec(b, r, `INSERT INTO ref_rates
		WITH p AS (
			SELECT i, '1' || lpad(i::VARCHAR, CAST(3 + i % 5 AS INTEGER), '0') AS prefix,
			       CASE WHEN i % 2 = 0 THEN 'peak' ELSE '' END AS band
			FROM range(?) t(i)
			UNION ALL SELECT ?, '', '')
		SELECT i, 'BENCH', 'voice-out', 'voice', 'any', prefix, band, s.tier_start,
		       CASE WHEN s.tier_start = 0 THEN 60 END,
		       CAST((i % 997) AS DECIMAL(18,9)) * CAST(0.0001 AS DECIMAL(18,9)) + s.extra, 60,
		       CASE WHEN s.tier_start = 0 THEN 60 ELSE 6 END,
		       CAST(0.01 AS DECIMAL(18,9)), NULL, NULL, DATE '2025-01-01', NULL, 'rates.csv', i + 2
		FROM p, (VALUES (0, CAST(0.01 AS DECIMAL(18,9))), (60, CAST(0.005 AS DECIMAL(18,9)))) s(tier_start, extra)`,
		prefixes, prefixes)
	mustExec(b, r, `INSERT INTO staged_cdrs
		SELECT 'cdr-' || i, 'pbx1', 'ACCT-' || (i % 100), CASE WHEN i % 7 = 0 THEN 'inbound' ELSE 'outbound' END,
		       '+13055550100', '+1' || lpad(((i * 7919) % ?)::VARCHAR, 7, '0') || lpad((i % 1000)::VARCHAR, 3, '0'),
		       '', '', ts, CAST(timezone('America/New_York', ts::TIMESTAMPTZ) AS DATE), 'voice',
		       (i * 37) % 3600, 0, 'pbx1/cdr.csv', i + 1, 'x'
		FROM (SELECT i, TIMESTAMP '2025-10-01 04:00:00' + to_seconds((i * 13) % (30 * 86400)) AS ts
		      FROM range(?) t(i))`, prefixes, calls)
}

// BenchmarkRateStage rates 200 000 and 1 000 000 calls against a 50 000-prefix deck; rows/s
// and the process's peak resident memory (DuckDB runs in process) are reported.
func BenchmarkRateStage(b *testing.B) {
	for _, calls := range []int{200000, 1000000} {
		b.Run(fmt.Sprintf("calls=%d", calls), func(b *testing.B) {
			const prefixes = 50000
			r := newTestRun(b)
			rtBenchDeck(b, r, prefixes, calls)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.Counts = nil
				if err := (RateStage{}).Run(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if got := r.Counts["rated"]; got != int64(calls) {
				b.Fatalf("rated %d of %d (counts %v)", got, calls, r.Counts)
			}
			b.ReportMetric(float64(calls)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			if mb := peakRSSMB(); mb > 0 {
				b.ReportMetric(mb, "peak-RSS-MB")
			}
		})
	}
}
