package pipeline

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// ingGenericRows writes n generic rows over October 2025 (every 100th row repeats the one
// before it, a duplicate).
func ingGenericRows(tb testing.TB, path string, n int) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(ingHeader)
	t0 := time.Date(2025, 10, 1, 4, 0, 0, 0, time.UTC)
	step := 30 * 24 * time.Hour / time.Duration(n)
	for i := 0; i < n; i++ {
		k := i
		if i%100 == 99 {
			k = i - 1
		}
		ts := t0.Add(time.Duration(k) * step).Format(time.RFC3339)
		if k%10 == 9 {
			fmt.Fprintf(w, "d%d,ACME%d,,,,%s,,data,%d\n", k, k%50, ts, 1000+k)
			continue
		}
		fmt.Fprintf(w, "c%d,ACME%d,outbound,30555501%02d,+1305555%04d,%s,%d,voice,\n", k, k%50, k%100, k%10000, ts, k%3600)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
}

// BenchmarkIngestStage stages one generic file of CDRBILL_BENCH_ROWS rows (default 100000) into an
// empty staging folder per iteration.
func BenchmarkIngestStage(b *testing.B) {
	rows := 100_000
	if s := os.Getenv("CDRBILL_BENCH_ROWS"); s != "" {
		rows, _ = strconv.Atoi(s)
	}
	dir := b.TempDir()
	ingGenericRows(b, filepath.Join(dir, "inbox", "carrier", "usage.csv"), rows)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := ingestTestRun(b, dir)
		r.Cfg.Paths.Staging = filepath.Join(dir, fmt.Sprintf("staging%d", i))
		b.StartTimer()
		if err := (IngestStage{}).Run(ctx, r); err != nil {
			b.Fatal(err)
		}
		if r.Counts["rows_read"] != int64(rows) || r.Counts["rows_duplicate"] != int64(rows/100) {
			b.Fatalf("counts %v", r.Counts)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
