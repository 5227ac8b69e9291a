package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ClosedPeriodStage stands in for the build and publish stages when the run's period is closed
// (periods.closed_through): output/YYYY-MM and its versions are never rewritten. The CDR files
// ingested after the period's current version was published that carry usage of the period (late
// usage) are counted and listed for review as late_usage_closed_period (exit status 3), so late
// usage is never dropped silently. Billing it in the next open period is not done yet (README).
type ClosedPeriodStage struct{}

func (ClosedPeriodStage) String() string { return "closed_period" }

func (ClosedPeriodStage) Run(ctx context.Context, r *Run) error {
	files, err := LateFiles(r.Cfg, r.Period, "")
	if err != nil {
		return err
	}
	var paths []string
	for _, e := range files {
		for d := r.Period.From; !d.After(r.Period.To); d = d.AddDate(0, 0, 1) {
			p := filepath.Join(r.Cfg.Paths.Staging, cdrsDir, partitionPfx+d.Format(time.DateOnly), e.SHA256+".parquet")
			if _, err := os.Stat(p); err == nil {
				paths = append(paths, p)
			}
		}
	}
	var n int64
	if len(paths) > 0 {
		if err := r.DB.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet("+sqlList(paths)+")").Scan(&n); err != nil {
			return fmt.Errorf("count late usage: %w", err)
		}
	}
	r.Count("late_usage_closed_period", n)
	r.NeedsReview("late_usage_closed_period", n)
	names := make([]string, len(files))
	for i, e := range files {
		names[i] = e.File
	}
	if n > 0 {
		r.Log.Warn("late usage for a closed period: not billed, the period is not rewritten",
			"period", r.Period.Month, "closed_through", r.Cfg.Periods.ClosedThrough, "cdrs", n, "files", names)
	}
	return fmt.Errorf("%w: %s is closed (periods.closed_through = %s)", ErrSkip, r.Period.Month, r.Cfg.Periods.ClosedThrough)
}

// LateFiles lists the ledger's files with usage dates in the period that the period's current
// version (output/YYYY-MM/manifest.json's inputs) does not include: all of them when the period
// was never published.
// Files already billed as late usage by a published period are left out, except by billingPeriod
// (the period being rebuilt keeps the late usage it bills).
func LateFiles(cfg *Config, p Period, billingPeriod string) ([]LedgerEntry, error) {
	ledger, err := ReadLedger(cfg.Paths.Staging)
	if err != nil {
		return nil, err
	}
	billed := map[string]bool{}
	b, err := os.ReadFile(filepath.Join(cfg.Paths.Output, p.Month, "manifest.json"))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	if err == nil {
		var m Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s/manifest.json: %w", p.Month, err)
		}
		for _, in := range m.Inputs {
			billed[in.SHA256] = true
		}
	}
	billedLate, err := lateBilled(cfg)
	if err != nil {
		return nil, err
	}
	from, to := p.From.Format(time.DateOnly), p.To.Format(time.DateOnly)
	var out []LedgerEntry
	for _, e := range ledger {
		if billed[e.SHA256] || billedLate[e.SHA256+"/"+p.Month] != "" && billedLate[e.SHA256+"/"+p.Month] != billingPeriod || e.RowsStaged == 0 || e.FirstUsageDate == "" {
			continue
		}
		if e.FirstUsageDate <= to && e.LastUsageDate >= from {
			out = append(out, e)
		}
	}
	return out, nil
}

// closedStages keeps the stages that do not build the period (ingest) and adds ClosedPeriodStage.
func closedStages(stages []Stage) []Stage {
	var out []Stage
	for _, s := range stages {
		if _, ok := s.(IngestStage); ok {
			out = append(out, s)
		}
	}
	return append(out, ClosedPeriodStage{})
}

// publishes reports whether stages end in publishing the period (reconcile alone may still run
// for a closed period: it publishes nothing).
func publishes(stages []Stage) bool {
	for _, s := range stages {
		if _, ok := s.(PublishStage); ok {
			return true
		}
	}
	return false
}
