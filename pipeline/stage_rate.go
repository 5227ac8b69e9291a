package pipeline

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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

// rateTempViews and rateTempTables are the intermediate views and tables of rateModels, dropped
// once rated_usage is written (views first: they read the tables).
var (
	rateTempViews  = []string{"rating_rated", "rating_call_rates", "rating_calls"}
	rateTempTables = []string{
		"rating_minutes", "rating_slots", "rating_band_sets", "rating_heads", "rating_days",
		"rating_prefix_hits", "rating_cut_prefix", "rating_keys", "rating_match", "rating_quantities",
		"rating_tiers", "rating_tier_steps", "rating_amounts",
	}
	// rateStepTables are the intermediate tables that only Trace reads once the models have run
	// (millions of rows at 10 M calls).
	rateStepTables = []string{"rating_prefix_hits", "rating_quantities", "rating_tiers", "rating_tier_steps"}
)

// runRateModels runs the rating models on the run's database and stores rated_usage
// (writeRatedUsage). With keepSteps (Trace) every intermediate table is left in place; without, the
// ones rated_usage does not need (rateStepTables) are dropped first, to leave DuckDB's memory to
// the writer (at 10 M calls: 26 s instead of 43 s).
//
// DuckDB picks each join's build side (the one it hashes) from estimated row counts, and after the
// staged calls are joined to customers its estimate falls below the small tables'; it then hashes
// ten million calls to probe them with a few thousand rows (5 s instead of 0.4 s per join at 10 M
// calls). The models put the calls first and the small table on the right of every join, so the
// optimizer that flips sides is off while they run (the settings hold for the connection, and
// OpenDB keeps one).
func runRateModels(ctx context.Context, r *Run, keepSteps bool) (err error) {
	db := r.DB
	if _, err := db.ExecContext(ctx, "SET disabled_optimizers = 'build_side_probe_side'"); err != nil {
		return fmt.Errorf("rating: %w", err)
	}
	defer func() {
		if _, rerr := db.ExecContext(context.WithoutCancel(ctx), "RESET disabled_optimizers"); rerr != nil && err == nil {
			err = fmt.Errorf("rating: %w", rerr)
		}
	}()
	for _, m := range rateModels {
		if err := ExecModel(ctx, db, m); err != nil {
			return err
		}
	}
	if !keepSteps {
		if err := dropTables(ctx, db, rateStepTables); err != nil {
			return err
		}
	}
	return writeRatedUsage(ctx, r)
}

// writeRatedUsage stores the rated calls (view rating_rated) as Parquet in the run's scratch folder
// and makes rated_usage a view of those files. As a table, DuckDB would keep ten million wide rows
// uncompressed and spill them to temp_directory (2.9 GB at 10 M calls, against 0.8 GB of Parquet).
// The files are split by the first character of cdr_id, so that a reader of one cdr_id range
// (usage_detail.csv is written range by range, WriteSortedQueryCSV) skips the other files on their
// statistics. A zero-row file of the same columns comes last in the list: it keeps the view valid
// when nothing was rated, and DuckDB estimates a list's rows from its first file.
func writeRatedUsage(ctx context.Context, r *Run) error {
	// Trace rates again on the same run: a new folder each time, because DuckDB's external file
	// cache keeps what it read of a file by path.
	olds, _ := filepath.Glob(filepath.Join(r.ScratchDir(), "rated_usage-*"))
	for _, o := range olds {
		if err := os.RemoveAll(o); err != nil {
			return fmt.Errorf("rated_usage: %w", err)
		}
	}
	if err := os.MkdirAll(r.ScratchDir(), 0o755); err != nil {
		return fmt.Errorf("rated_usage: %w", err)
	}
	dir, err := os.MkdirTemp(r.ScratchDir(), "rated_usage-")
	if err != nil {
		return fmt.Errorf("rated_usage: %w", err)
	}
	shards, schema := filepath.Join(dir, "shards"), filepath.Join(dir, "schema.parquet")
	// The partitioned writer buffers this many rows per thread before flushing them to the files:
	// DuckDB's default (524 288) of wide rows crowds the joins' hash tables out of a 1 GB pool.
	if _, err := r.DB.ExecContext(ctx, "SET partitioned_write_flush_threshold = 131072"); err != nil {
		return fmt.Errorf("rated_usage: %w", err)
	}
	defer r.DB.ExecContext(context.WithoutCancel(ctx), "RESET partitioned_write_flush_threshold")
	for _, stmt := range []string{
		"COPY (SELECT *, ascii(cdr_id) AS cdr_shard FROM rating_rated) TO " + sqlString(shards) +
			" (FORMAT parquet, PARTITION_BY (cdr_shard))",
		"COPY (FROM rating_rated LIMIT 0) TO " + sqlString(schema) + " (FORMAT parquet)",
	} {
		if _, err := r.DB.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("rated_usage: %w", err)
		}
	}
	files, err := filepath.Glob(filepath.Join(shards, "*", "*.parquet"))
	if err != nil {
		return fmt.Errorf("rated_usage: %w", err)
	}
	sort.Strings(files)
	files = append(files, schema)
	if _, err := r.DB.ExecContext(ctx, "CREATE OR REPLACE VIEW rated_usage AS SELECT * FROM read_parquet("+
		sqlList(files)+", hive_partitioning = false)"); err != nil {
		return fmt.Errorf("rated_usage: %w", err)
	}
	return nil
}

func dropRateTempTables(ctx context.Context, db *sql.DB) error {
	for _, v := range rateTempViews {
		if _, err := db.ExecContext(ctx, "DROP VIEW IF EXISTS "+v); err != nil {
			return fmt.Errorf("drop %s: %w", v, err)
		}
	}
	return dropTables(ctx, db, rateTempTables)
}

func dropTables(ctx context.Context, db *sql.DB, tables []string) error {
	for _, t := range tables {
		if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+t); err != nil {
			return fmt.Errorf("drop %s: %w", t, err)
		}
	}
	return nil
}

func (RateStage) Run(ctx context.Context, r *Run) error {
	if err := runRateModels(ctx, r, false); err != nil {
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
