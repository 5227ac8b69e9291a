package pipeline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"time"
)

// Stage is one step of a job: it reads files or tables and writes files or tables.
type Stage interface {
	String() string
	Run(ctx context.Context, r *Run) error
}

// ErrSkip is returned (wrapped) by a stage that has nothing to do this run; the job goes on.
var ErrSkip = errors.New("skipped")

// Run is what the stages of one job share.
type Run struct {
	Cfg    *Config
	Period Period
	DB     *sql.DB
	Log    *slog.Logger
	// ID identifies the run in logs, the manifest and runs.csv.
	ID      string
	Started time.Time
	// WorkDir is where the stages write the period's files before they are published
	// (output/.work-<id>/YYYY-MM); Publish renames it into place.
	WorkDir string
	// Counts are the row counts reported in the manifest and the log, by name.
	Counts map[string]int64
	// Review lists what needs a person's attention; any item makes the exit status 3.
	Review []ReviewItem
	// Progress, when set (an interactive terminal), shows which stage is running.
	Progress io.Writer
	// LateInputs are the late usage files of closed periods that this period bills.
	LateInputs []LateInput
	// Published is the period folder the run published, or "" when nothing changed.
	Published string
}

// ReviewItem is a kind of problem and how many rows have it.
type ReviewItem struct {
	Kind  string
	Count int64
}

// NeedsReview records n items of a kind (n <= 0 is ignored).
func (r *Run) NeedsReview(kind string, n int64) {
	if n <= 0 {
		return
	}
	for i := range r.Review {
		if r.Review[i].Kind == kind {
			r.Review[i].Count += n
			return
		}
	}
	r.Review = append(r.Review, ReviewItem{kind, n})
	sort.Slice(r.Review, func(i, j int) bool { return r.Review[i].Kind < r.Review[j].Kind })
}

// ScratchDir is the run's own folder in temp_directory, for intermediate files that are not
// published (rated_usage's Parquet); Close removes it, and Recover removes those of runs that
// died.
func (r *Run) ScratchDir() string {
	return filepath.Join(r.Cfg.DuckDB.TempDirectory, scratchPfx+safeID(r.ID))
}

const scratchPfx = "run-"

// OutPath is the path of a period file in the run's work folder.
func (r *Run) OutPath(name string) string { return filepath.Join(r.WorkDir, name) }

// Count adds to a named count.
func (r *Run) Count(name string, n int64) {
	if r.Counts == nil {
		r.Counts = map[string]int64{}
	}
	r.Counts[name] += n
}

// SetVariables publishes the run's parameters to SQL (see sql/TABLES.md).
func (r *Run) SetVariables(ctx context.Context) error {
	vars := []struct {
		name string
		val  any
	}{
		{"period", r.Period.Month},
		{"period_from", r.Period.From.Format(time.DateOnly)},
		{"period_to", r.Period.To.Format(time.DateOnly)},
		{"billing_tz", r.Cfg.Billing.Timezone},
		{"fallback_sku", r.Cfg.Billing.FallbackSKU},
		{"invoice_mode", r.Cfg.Billing.InvoiceMode},
		{"tax_rounding", r.Cfg.Billing.TaxRounding},
		{"currency", r.Cfg.Billing.Currency},
	}
	for _, v := range vars {
		cast := ""
		if v.name == "period_from" || v.name == "period_to" {
			cast = "::DATE"
		}
		if _, err := r.DB.ExecContext(ctx, fmt.Sprintf("SET VARIABLE %s = ?%s", v.name, cast), v.val); err != nil {
			return fmt.Errorf("set variable %s: %w", v.name, err)
		}
	}
	return nil
}

// RunStages runs the stages in order, logging each with its duration.
func RunStages(ctx context.Context, r *Run, stages []Stage) error {
	for i, s := range stages {
		if err := ctx.Err(); err != nil {
			return err
		}
		crashPoint(s.String())
		if r.Progress != nil {
			fmt.Fprintf(r.Progress, "\r\033[K[%d/%d] %s %s…", i+1, len(stages), r.Period.Month, s)
		}
		before := maps.Clone(r.Counts)
		t0 := time.Now()
		err := s.Run(ctx, r)
		if errors.Is(err, ErrSkip) {
			r.Log.Info("stage skipped", "stage", s.String(), "reason", err.Error())
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		attrs := []any{"stage", s.String(), "seconds", time.Since(t0).Round(time.Millisecond).Seconds()}
		for _, k := range slices.Sorted(maps.Keys(r.Counts)) {
			if n := r.Counts[k] - before[k]; n != 0 {
				attrs = append(attrs, k, n)
			}
		}
		r.Log.Info("stage done", attrs...)
	}
	if r.Progress != nil {
		fmt.Fprint(r.Progress, "\r\033[K")
	}
	return nil
}

// Period is a billing month in the billing time zone.
type Period struct {
	Month    string    // YYYY-MM
	From, To time.Time // first and last day, midnight UTC used as a calendar date
}

// ParsePeriod reads YYYY-MM.
func ParsePeriod(s string) (Period, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil {
		return Period{}, fmt.Errorf("period %q: want YYYY-MM", s)
	}
	return PeriodOf(t), nil
}

// PeriodOf is the month containing day d (its calendar date is used as is).
func PeriodOf(d time.Time) Period {
	from := time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, time.UTC)
	return Period{Month: from.Format("2006-01"), From: from, To: from.AddDate(0, 1, -1)}
}

// DefaultPeriod is the period containing yesterday in the billing zone.
func DefaultPeriod(now time.Time, loc *time.Location) Period {
	return PeriodOf(now.In(loc).AddDate(0, 0, -1))
}
