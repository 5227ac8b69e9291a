package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/renameio/v2"
)

// PublishStage makes the work folder the period's current version. If the period was already
// published with the same files, nothing is written. Otherwise the previous version moves to
// output/YYYY-MM.versions/vN and delta.csv in the new version lists what changed, row by row
// (DeltaColumns).
//
// Before anything is moved, the inputs the version was computed with (config, reference data,
// posted invoices) are snapshotted into staging/snapshots and the version is recorded in
// staging/snapshots/published.csv, so an auditor's rerun can use them (see SnapshotInputs).
//
// Replacing a version takes two renames (previous out, new in). A journal,
// output/.publish-YYYY-MM.json, is written before them and removed after; Recover completes an
// interrupted swap from it, so output/YYYY-MM is never left missing.
type PublishStage struct{}

func (PublishStage) String() string { return "publish" }

// publishJournal records a swap in progress.
type publishJournal struct {
	Target string `json:"target"` // output/YYYY-MM
	Work   string `json:"work"`   // the new version's work folder
	Keep   string `json:"keep"`   // where the previous version goes ("" when there is none)
}

func journalPath(output, month string) string {
	return filepath.Join(output, ".publish-"+month+".json")
}

func (PublishStage) Run(ctx context.Context, r *Run) error {
	target := filepath.Join(r.Cfg.Paths.Output, r.Period.Month)
	_, statErr := os.Stat(target)
	exists := statErr == nil
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return fmt.Errorf("publish %s: %w", target, statErr)
	}
	var diffs []Difference
	if exists {
		var err error
		if diffs, err = CompareTrees(target, r.WorkDir); err != nil {
			return fmt.Errorf("compare with the published version: %w", err)
		}
		if len(diffs) == 0 {
			return fmt.Errorf("%w: %s is already published with the same files", ErrSkip, r.Period.Month)
		}
		if err := WriteDifferences(r.OutPath("delta.csv"), diffs); err != nil {
			return fmt.Errorf("delta: %w", err)
		}
	}
	if err := recordVersion(r); err != nil {
		return err
	}
	crashPoint("publish-recorded")
	j := publishJournal{Target: target, Work: r.WorkDir}
	if exists {
		versions := target + ".versions"
		if err := os.MkdirAll(versions, 0o755); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		n, err := nextVersion(versions)
		if err != nil {
			return err
		}
		j.Keep = filepath.Join(versions, fmt.Sprintf("v%d", n))
	}
	b, _ := json.Marshal(j)
	jp := journalPath(r.Cfg.Paths.Output, r.Period.Month)
	if err := renameio.WriteFile(jp, b, 0o644); err != nil {
		return fmt.Errorf("publish journal: %w", err)
	}
	if j.Keep != "" {
		if err := os.Rename(target, j.Keep); err != nil {
			os.Remove(jp)
			return fmt.Errorf("keep previous version: %w", err)
		}
		crashPoint("publish-swap")
	}
	if err := os.Rename(r.WorkDir, target); err != nil {
		// put the previous version back: output/YYYY-MM keeps its current version
		if j.Keep != "" {
			if rbErr := os.Rename(j.Keep, target); rbErr != nil {
				return fmt.Errorf("publish %s: %w (and restoring the previous version failed: %v; the next run restores it)", target, err, rbErr)
			}
		}
		os.Remove(jp)
		return fmt.Errorf("publish %s: %w", target, err)
	}
	syncDir(r.Cfg.Paths.Output)
	if err := os.Remove(jp); err != nil {
		return fmt.Errorf("publish journal: %w", err)
	}
	r.Published = target
	if j.Keep != "" {
		r.Log.Info("published a new version", "period", r.Period.Month, "previous", j.Keep, "differences", len(diffs))
	}
	return nil
}

// recordVersion snapshots the run's inputs and appends the version to published.csv.
func recordVersion(r *Run) error {
	key, err := SnapshotInputs(r.Cfg)
	if err != nil {
		return err
	}
	ledger, err := ReadLedger(r.Cfg.Paths.Staging)
	if err != nil {
		return err
	}
	return RecordPublished(r.Cfg.Paths.Staging, PublishedVersion{Period: r.Period.Month, RunID: r.ID,
		PublishedAt: nowUTC(), Snapshot: key, LedgerRows: len(ledger)})
}

// nextVersion is one more than the highest vN in the versions folder.
func nextVersion(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("publish: %w", err)
	}
	hi := 0
	for _, e := range ents {
		if n, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "v")); err == nil && strings.HasPrefix(e.Name(), "v") && n > hi {
			hi = n
		}
	}
	return hi + 1, nil
}
