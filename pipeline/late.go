package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// LateInput is a CDR file with usage of a closed period that a later period bills.
type LateInput struct {
	File        string `json:"file"`
	SHA256      string `json:"sha256"`
	UsagePeriod string `json:"usage_period"`
	CDRs        int64  `json:"cdrs"`
}

// LateUsageStage adds to the period's staged CDRs the late usage of closed periods that it bills
// (periods.closed_through): the CDRs of a closed month from a file that month's published version
// did not include and no other period has billed yet. Such a file is billed in the later of the
// month it was ingested in (billing zone) and the first open month, so every late CDR is billed
// exactly once, on its own invoice lines labelled with its own month.
type LateUsageStage struct{}

func (LateUsageStage) String() string { return "late_usage" }

func (LateUsageStage) Run(ctx context.Context, r *Run) error {
	cfg := r.Cfg
	if cfg.Periods.ClosedThrough == "" || cfg.Closed(r.Period.Month) {
		return fmt.Errorf("%w: no closed period before %s", ErrSkip, r.Period.Month)
	}
	closedThrough, err := ParsePeriod(cfg.Periods.ClosedThrough)
	if err != nil {
		return err
	}
	firstOpen := PeriodOf(closedThrough.To.AddDate(0, 0, 1))
	ledger, err := ReadLedger(cfg.Paths.Staging)
	if err != nil {
		return err
	}
	var files []string
	for _, month := range closedMonths(ledger, closedThrough) {
		late, err := LateFiles(cfg, month, r.Period.Month)
		if err != nil {
			return err
		}
		for _, e := range late {
			target := PeriodOf(e.IngestedAt.In(cfg.Location))
			if target.From.Before(firstOpen.From) {
				target = firstOpen
			}
			if target.Month != r.Period.Month {
				continue
			}
			paths := stagedFilesIn(cfg, e.SHA256, month)
			if len(paths) == 0 {
				continue
			}
			var n int64
			if err := r.DB.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet("+sqlList(paths)+")").Scan(&n); err != nil {
				return fmt.Errorf("count late usage in %s: %w", e.File, err)
			}
			r.LateInputs = append(r.LateInputs, LateInput{File: e.File, SHA256: e.SHA256, UsagePeriod: month.Month, CDRs: n})
			files = append(files, paths...)
		}
	}
	if len(files) == 0 {
		return fmt.Errorf("%w: no late usage of closed periods to bill in %s", ErrSkip, r.Period.Month)
	}
	sort.Strings(files)
	q := `ALTER VIEW staged_cdrs RENAME TO staged_cdrs_of_period;
		CREATE VIEW staged_cdrs AS
		SELECT * FROM staged_cdrs_of_period
		UNION ALL
		SELECT * FROM staged_cdrs_from(` + sqlList(files) + `)`
	if _, err := r.DB.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("add late usage: %w", err)
	}
	for _, in := range r.LateInputs {
		r.Count("late_usage_cdrs", in.CDRs)
	}
	return nil
}

// closedMonths are the closed periods that the ledger's files have usage in, oldest first.
func closedMonths(ledger []LedgerEntry, closedThrough Period) []Period {
	seen := map[string]bool{}
	var out []Period
	for _, e := range ledger {
		if e.FirstUsageDate == "" {
			continue
		}
		first, err1 := time.Parse(time.DateOnly, e.FirstUsageDate)
		last, err2 := time.Parse(time.DateOnly, e.LastUsageDate)
		if err1 != nil || err2 != nil {
			continue
		}
		for p := PeriodOf(first); !p.From.After(last) && !p.From.After(closedThrough.From); p = PeriodOf(p.To.AddDate(0, 0, 1)) {
			if !seen[p.Month] {
				seen[p.Month] = true
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Month < out[j].Month })
	return out
}

// stagedFilesIn lists a file's staged Parquet partitions within a period.
func stagedFilesIn(cfg *Config, sha string, p Period) []string {
	var out []string
	for d := p.From; !d.After(p.To); d = d.AddDate(0, 0, 1) {
		path := filepath.Join(cfg.Paths.Staging, cdrsDir, partitionPfx+d.Format(time.DateOnly), sha+".parquet")
		if _, err := os.Stat(path); err == nil {
			out = append(out, path)
		}
	}
	return out
}

// lateBilled maps each file that a published period bills as late usage to that period.
func lateBilled(cfg *Config) (map[string]string, error) {
	manifests, err := filepath.Glob(filepath.Join(cfg.Paths.Output, "*", "manifest.json"))
	if err != nil {
		return nil, err
	}
	billed := map[string]string{}
	for _, path := range manifests {
		if strings.Contains(filepath.Base(filepath.Dir(path)), ".") {
			continue // work folders and version folders are not current versions
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var m Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, in := range m.LateInputs {
			billed[in.SHA256+"/"+in.UsagePeriod] = m.Period
		}
	}
	return billed, nil
}
