package pipeline

import (
	"context"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// usage_detail.csv-shaped rows (17 columns: text, dates, timestamps, integers, decimals).
const benchDetailRows = 200_000

func benchDetailRun(b testing.TB) *Run {
	r := newTestRun(b)
	mustExec(b, r, `CREATE TABLE detail AS
		SELECT md5(i::VARCHAR) AS cdr_id, (700000 + i % 5000)::VARCHAR AS account, 'CUST' || (i % 5000) AS company_identifier,
		       DATE '2025-10-01' + (i % 31)::INTEGER AS usage_date, TIMESTAMP '2025-10-01 00:00:00' + to_seconds(i) AS start,
		       'outbound' AS direction, '+1305555' || lpad((i % 10000)::VARCHAR, 4, '0') AS origin,
		       '+4420794' || lpad((i % 100000)::VARCHAR, 5, '0') AS destination, '4420' AS matched_prefix,
		       'VOICE-INTL' AS product, 'USAGE-INTL' AS catalog_identifier, (i % 600)::BIGINT AS duration,
		       (i % 600)::BIGINT AS billed_quantity, CAST(i % 600 AS DECIMAL(18, 4)) * 0.0123 AS amount,
		       'gen/cdrs-2025-10.csv' AS source_file, (i + 2)::BIGINT AS source_line
		FROM range(`+strconv.Itoa(benchDetailRows)+`) t(i)`)
	return r
}

func benchWriteDetail(b *testing.B, write func(r *Run, path string) (int64, error)) {
	r := benchDetailRun(b)
	path := filepath.Join(b.TempDir(), "usage_detail.csv")
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		n, err := write(r, path)
		if err != nil || n != benchDetailRows {
			b.Fatalf("%d rows, %v", n, err)
		}
	}
	b.ReportMetric(float64(benchDetailRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	// CPU time (all threads, DuckDB's included) is steadier than wall time on a shared machine.
	b.ReportMetric(float64((processCPU()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const benchDetailQuery = `SELECT * FROM detail ORDER BY cdr_id`

// BenchmarkWriteQueryCSVCopy: DuckDB writes the file (COPY, formatting in SQL).
func BenchmarkWriteQueryCSVCopy(b *testing.B) {
	benchWriteDetail(b, func(r *Run, path string) (int64, error) {
		n, ok, err := copyQueryCSV(context.Background(), r.DB, path, benchDetailQuery, nil)
		if !ok {
			b.Fatal("copy path declined")
		}
		return n, err
	})
}

// BenchmarkWriteQueryCSVScan: every row through database/sql and encoding/csv.
func BenchmarkWriteQueryCSVScan(b *testing.B) {
	benchWriteDetail(b, func(r *Run, path string) (int64, error) {
		return scanQueryCSV(context.Background(), r.DB, path, benchDetailQuery)
	})
}
