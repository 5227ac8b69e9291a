package pipeline

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// newTestRun is a run for period 2025-10 (billing zone America/New_York) on a fresh database with
// the empty reference tables of sql/reference_tables.sql; tests insert the rows they need.
func newTestRun(t testing.TB) *Run {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := &Config{Dir: dir}
	cfg.Billing.Timezone = "America/New_York"
	cfg.Billing.FallbackSKU = "USAGE-OTHER"
	cfg.Defaults()
	cfg.DuckDB.TempDirectory = filepath.Join(dir, "tmp")
	loc, err := time.LoadLocation(cfg.Billing.Timezone)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Location = loc
	db, err := OpenDB(ctx, cfg.DuckDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	period, _ := ParsePeriod("2025-10")
	r := &Run{Cfg: cfg, Period: period, DB: db, ID: "test", WorkDir: filepath.Join(dir, "work"),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Started: time.Date(2025, 11, 1, 7, 0, 0, 0, time.UTC)}
	if err := r.SetVariables(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ExecModel(ctx, db, "reference_tables.sql"); err != nil {
		t.Fatal(err)
	}
	return r
}

// mustExec runs SQL in a test.
func mustExec(t testing.TB, r *Run, q string, args ...any) {
	t.Helper()
	if _, err := r.DB.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
