package pipeline

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// runLogHeader is output/runs.csv: one row per run, appended, never rewritten.
var runLogHeader = []string{"run_id", "command", "started", "finished", "period", "exit_status",
	"rows_read", "rows_staged", "rows_rejected", "rows_duplicate", "published", "review_items"}

// AppendRunLog appends the run to output/runs.csv so an admin sees the export history.
func AppendRunLog(cfg *Config, r *Run, command string, exitStatus int) error {
	path := filepath.Join(cfg.Paths.Output, "runs.csv")
	if err := os.MkdirAll(cfg.Paths.Output, 0o755); err != nil {
		return err
	}
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("run log: %w", err)
	}
	w := csv.NewWriter(f)
	if os.IsNotExist(statErr) {
		w.Write(runLogHeader)
	}
	var review int64
	for _, it := range r.Review {
		review += it.Count
	}
	count := func(k string) string { return strconv.FormatInt(r.Counts[k], 10) }
	published := "no"
	if r.Published != "" {
		published = "yes"
	}
	w.Write([]string{r.ID, command, r.Started.Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339),
		r.Period.Month, strconv.Itoa(exitStatus), count("rows_read"), count("rows_staged"),
		count("rows_rejected"), count("rows_duplicate"), published, strconv.FormatInt(review, 10)})
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("run log: %w", err)
	}
	return f.Close()
}

// LastRunStart is when the newest run of a command ("run", "reconcile") in output/runs.csv
// started (zero if none).
func LastRunStart(cfg *Config, command string) (time.Time, error) {
	f, err := os.Open(filepath.Join(cfg.Paths.Output, "runs.csv"))
	if os.IsNotExist(err) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return time.Time{}, fmt.Errorf("read runs.csv: %w", err)
	}
	var last time.Time
	for i, row := range rows {
		if i > 0 && len(row) > 2 && row[1] == command {
			if t, err := time.Parse(time.RFC3339, row[2]); err == nil && t.After(last) {
				last = t
			}
		}
	}
	return last, nil
}
