package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// PublishStage makes the work folder the period's current version. If the period was already
// published with the same files, nothing is written. Otherwise the previous version moves to
// output/YYYY-MM.versions/vN and delta.csv in the new version lists what changed.
type PublishStage struct{}

func (PublishStage) String() string { return "publish" }

func (PublishStage) Run(ctx context.Context, r *Run) error {
	target := filepath.Join(r.Cfg.Paths.Output, r.Period.Month)
	next, err := digestTree(r.WorkDir)
	if err != nil {
		return err
	}
	prev, err := digestTree(target)
	if os.IsNotExist(err) {
		if err := os.Rename(r.WorkDir, target); err != nil {
			return fmt.Errorf("publish %s: %w", target, err)
		}
		r.Published = target
		return nil
	}
	if err != nil {
		return err
	}
	changes := diffDigests(prev, next)
	if len(changes) == 0 {
		return fmt.Errorf("%w: %s is already published with the same files", ErrSkip, r.Period.Month)
	}
	f, err := CreateCSV(filepath.Join(r.WorkDir, "delta.csv"), []string{"file", "change", "previous_sha256", "sha256"})
	if err != nil {
		return err
	}
	for _, c := range changes {
		if err := f.Write(c); err != nil {
			f.Abort()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	versions := target + ".versions"
	if err := os.MkdirAll(versions, 0o755); err != nil {
		return err
	}
	old, err := os.ReadDir(versions)
	if err != nil {
		return err
	}
	keep := filepath.Join(versions, fmt.Sprintf("v%d", len(old)+1))
	if err := os.Rename(target, keep); err != nil {
		return fmt.Errorf("keep previous version: %w", err)
	}
	if err := os.Rename(r.WorkDir, target); err != nil {
		return fmt.Errorf("publish %s: %w", target, err)
	}
	r.Published = target
	r.Log.Info("published a new version", "period", r.Period.Month, "previous", keep, "changed_files", len(changes))
	return nil
}

// diffDigests lists files added, removed or changed between two sorted listings.
func diffDigests(prev, next []FileDigest) [][]string {
	old := map[string]string{}
	for _, d := range prev {
		old[d.File] = d.SHA256
	}
	var out [][]string
	seen := map[string]bool{}
	for _, d := range next {
		seen[d.File] = true
		switch o, ok := old[d.File]; {
		case !ok:
			out = append(out, []string{d.File, "added", "", d.SHA256})
		case o != d.SHA256:
			out = append(out, []string{d.File, "changed", o, d.SHA256})
		}
	}
	for _, d := range prev {
		if !seen[d.File] {
			out = append(out, []string{d.File, "removed", d.SHA256, ""})
		}
	}
	return out
}
