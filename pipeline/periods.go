package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// TouchedPeriods lists the periods other than except that the files a run ingested carry usage
// in, and that must therefore be rebuilt: periods already published (a new version with a delta)
// and closed periods (their late usage is reported). A period never published is left for its own
// nightly run.
func TouchedPeriods(cfg *Config, runID string, except Period) ([]Period, error) {
	ledger, err := ReadLedger(cfg.Paths.Staging)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{except.Month: true}
	var out []Period
	for _, e := range ledger {
		if e.RunID != runID || e.FirstUsageDate == "" {
			continue
		}
		first, err1 := time.Parse(time.DateOnly, e.FirstUsageDate)
		last, err2 := time.Parse(time.DateOnly, e.LastUsageDate)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("ledger row for %s: bad usage dates %q..%q", e.File, e.FirstUsageDate, e.LastUsageDate)
		}
		for p := PeriodOf(first); !p.From.After(last); p = PeriodOf(p.To.AddDate(0, 0, 1)) {
			if seen[p.Month] {
				continue
			}
			seen[p.Month] = true
			if _, err := os.Stat(filepath.Join(cfg.Paths.Output, p.Month)); err == nil || cfg.Closed(p.Month) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}
