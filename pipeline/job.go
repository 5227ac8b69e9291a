package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// NewRun prepares a run of the given period: the database with the reference data loaded and
// validated, and an empty work folder for the period's files.
func NewRun(ctx context.Context, cfg *Config, period Period, log *slog.Logger) (*Run, error) {
	db, err := OpenDB(ctx, cfg.DuckDB)
	if err != nil {
		return nil, err
	}
	r := &Run{Cfg: cfg, Period: period, DB: db, Log: log, ID: newRunID(), Started: time.Now().UTC()}
	r.WorkDir = filepath.Join(cfg.Paths.Output, ".work-"+r.ID, period.Month)
	if err := LoadReference(ctx, db, cfg.Paths.Reference, cfg.Billing.Currency); err != nil {
		db.Close()
		return nil, err
	}
	if err := ValidateTaxRates(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	if err := r.SetVariables(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return r, nil
}

// Close releases the database and removes the work folder (published files were moved out) and
// the scratch folder.
func (r *Run) Close() error {
	os.RemoveAll(filepath.Dir(r.WorkDir))
	err := r.DB.Close()
	os.RemoveAll(r.ScratchDir())
	return err
}

func newRunID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// NightlyStages is the nightly job: ingest new files, then build the period from staging.
func NightlyStages(cfg *Config) []Stage {
	return append([]Stage{IngestStage{}}, PeriodStages(cfg)...)
}

// PeriodStages build and publish a period from what is staged.
func PeriodStages(cfg *Config) []Stage {
	return append(BuildStages(cfg), ManifestStage{}, PublishStage{})
}

// BuildStages build a period's files in the work folder without publishing them: rate,
// summarize, tax, invoice lines and exports, reconciliation.
func BuildStages(cfg *Config) []Stage {
	return []Stage{
		StagingStage{},
		LateUsageStage{},
		RateStage{},
		SummaryStage{},
		TaxStage{},
		exportStage(cfg),
		ReconcileStage{},
		DisputesStage{},
	}
}

func exportStage(cfg *Config) ExportStage {
	return ExportStage{
		FlagErrors:     cfg.Invoices.OnError == "flag",
		DetailTemplate: cfg.Invoices.DetailTemplate,
		TicketBoard:    cfg.Tickets.Board,
		TicketPriority: cfg.Tickets.Priority,
	}
}

// RunNightly runs the nightly job for one period.
func RunNightly(ctx context.Context, r *Run) error {
	return Execute(ctx, r, NightlyStages(r.Cfg))
}

// Execute runs stages for the run's period, starting from an empty work folder, after
// recovering from an interrupted run (Recover). A closed period is never rebuilt (ClosedPeriodStage).
func Execute(ctx context.Context, r *Run, stages []Stage) error {
	if _, err := Recover(r.Cfg, r.WorkDir, r.Log); err != nil {
		return err
	}
	if r.Cfg.Closed(r.Period.Month) && publishes(stages) {
		stages = closedStages(stages)
	}
	if err := os.MkdirAll(r.WorkDir, 0o755); err != nil {
		return fmt.Errorf("work folder: %w", err)
	}
	return RunStages(ctx, r, stages)
}
