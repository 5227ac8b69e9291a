package pipeline

import (
	"context"
	"database/sql"
	"fmt"
)

// RateStage prices every staged CDR (sql/rating_*.sql): it reads staged_cdrs and the ref_* tables
// and writes rated_usage and rating_errors (sql/TABLES.md). Unmapped accounts and unrated calls
// are counted and flagged for review; they are never charged zero.
type RateStage struct{}

func (RateStage) String() string { return "rate" }

// rateModels are the rating models in the order they run.
var rateModels = []string{
	"rating_calls.sql",
	"rating_match.sql",
	"rating_tiers.sql",
	"rating_rated_usage.sql",
}

// rateTempTables are the intermediate tables of rateModels, dropped once rated_usage is written.
var rateTempTables = []string{
	"rating_minutes", "rating_calls", "rating_slots", "rating_band_sets", "rating_heads", "rating_keys",
	"rating_prefix_hits", "rating_match", "rating_call_rates", "rating_tiers", "rating_tier_steps",
	"rating_amounts",
}

// runRateModels runs the rating models on db, leaving their intermediate tables in place (Trace
// reads them).
func runRateModels(ctx context.Context, db *sql.DB) error {
	for _, m := range rateModels {
		if err := ExecModel(ctx, db, m); err != nil {
			return err
		}
	}
	return nil
}

func dropRateTempTables(ctx context.Context, db *sql.DB) error {
	for _, t := range rateTempTables {
		if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+t); err != nil {
			return fmt.Errorf("drop %s: %w", t, err)
		}
	}
	return nil
}

func (RateStage) Run(ctx context.Context, r *Run) error {
	if err := runRateModels(ctx, r.DB); err != nil {
		return err
	}
	if err := dropRateTempTables(ctx, r.DB); err != nil {
		return err
	}
	var staged, rated, unmapped, unrated int64
	err := r.DB.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM staged_cdrs),
		(SELECT count(*) FROM rated_usage),
		(SELECT count(*) FROM rating_errors WHERE kind = 'unmapped_account'),
		(SELECT count(*) FROM rating_errors WHERE kind = 'unrated')`).Scan(&staged, &rated, &unmapped, &unrated)
	if err != nil {
		return fmt.Errorf("count rated usage: %w", err)
	}
	// Every staged CDR ends rated or in the error queue, exactly once.
	if staged != rated+unmapped+unrated {
		return fmt.Errorf("%d staged CDRs but %d rated + %d unmapped + %d unrated (overlapping customers.csv rows?)",
			staged, rated, unmapped, unrated)
	}
	r.Count("rated", rated)
	r.Count("unmapped_account", unmapped)
	r.Count("unrated", unrated)
	r.Log.Info("rated", "rated", rated, "unmapped_account", unmapped, "unrated", unrated)
	return nil
}
