package jobs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"cdrbill/pipeline"
)

func TestReconcileCadenceLine(t *testing.T) {
	now := time.Date(2025, 12, 10, 15, 0, 0, 0, time.UTC)
	cases := []struct {
		name, cutover, runs, want string
	}{
		{"no cutover, never reconciled", "", "", "reconcile: monthly cadence, last never: due now (cdrbill reconcile --period 2025-11)"},
		{"before cutover", "2026-01-01", "", ""},
		{"weekly, reconciled 3 days ago", "2025-11-01", "r1,reconcile,2025-12-07T10:00:00Z,2025-12-07T10:01:00Z,2025-11,0\n",
			"reconcile: weekly cadence, last 2025-12-07, next due 2025-12-14"},
		{"weekly, reconciled 8 days ago", "2025-11-01", "r1,reconcile,2025-12-02T10:00:00Z,2025-12-02T10:01:00Z,2025-11,3\nr2,run,2025-12-09T07:00:00Z,2025-12-09T07:01:00Z,2025-12,0\n",
			"reconcile: weekly cadence, last 2025-12-02: due now (cdrbill reconcile --period 2025-11)"},
		{"monthly after 90 days", "2025-06-01", "r1,reconcile,2025-12-01T10:00:00Z,2025-12-01T10:01:00Z,2025-11,0\n",
			"reconcile: monthly cadence, last 2025-12-01, next due 2026-01-01"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := &pipeline.Config{Location: time.UTC}
			cfg.Paths.Output = dir
			cfg.Monitor.Cutover = c.cutover
			if c.runs != "" {
				header := "run_id,command,started,finished,period,exit_status\n"
				if err := os.WriteFile(filepath.Join(dir, "runs.csv"), []byte(header+c.runs), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := reconcileCadenceLine(cfg, now)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}
