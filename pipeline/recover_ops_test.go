package pipeline

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// opsListTree lists the files and empty folders under dir, relative and sorted.
func opsListTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !d.IsDir() {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func TestRecover(t *testing.T) {
	root := t.TempDir()
	cfg := &Config{Paths: Paths{Output: filepath.Join(root, "output"), Staging: filepath.Join(root, "staging")}}
	cfg.DuckDB.TempDirectory = filepath.Join(cfg.Paths.Staging, "tmp")
	const sha1, sha2 = "aaaa", "bbbb"
	ledger := strings.Join(ledgerHeader, ",") + "\n" +
		sha1 + ",pbx1,a.csv,2,2,0,0,0,2025-10-01,2025-10-02,2025-11-01T02:00:00Z,r1\n" +
		sha2 + ",pbx1,b.csv,1,1,0,0,0,2025-10-0" // torn: killed while appending
	opsWrite(t, root, map[string]string{
		"staging/ledger.csv":                                       ledger,
		"staging/cdrs/usage_date=2025-10-01/aaaa.parquet":          "kept",
		"staging/cdrs/usage_date=2025-10-01/bbbb.parquet":          "no ledger row",
		"staging/cdrs/usage_date=2025-10-01/.cccc.parquet.123.tmp": "half written",
		"staging/rejects/bbbb.parquet":                             "no ledger row",
		"staging/invoice_numbers.csv":                              "kept",
		"staging/.invoice_numbers.csv8812":                         "renameio temp",
		"staging/snapshots/.tmp-abc-1/reference/rates.csv":         "unfinished snapshot",
		"staging/snapshots/abc/reference/rates.csv":                "kept",
		"staging/snapshots/published.csv":                          "period,run_id,published_at,snapshot,ledger_rows\n2025-10,r1,t,abc,1\n",
		"output/runs.csv":                                          "h\nrow\n",
		// a swap killed between the renames: 2025-10 moved to v1, the new version still in its work folder
		"output/2025-10.versions/v1/usage_detail.csv": "previous",
		"output/.work-r2/2025-10/usage_detail.csv":    "new",
		"output/.work-mine/2025-10/usage_detail.csv":  "the calling run's",
		"output/2025-09/usage_detail.csv":             "kept",
		"output/2025-09/.usage_detail.csv123":         "renameio temp",
		// scratch of runs that died
		"staging/tmp/run-r0/rated_usage-1/schema.parquet": "rated calls",
		"staging/tmp/staging-schema-r0/cdrs.parquet":      "schema",
	})
	j, _ := json.Marshal(publishJournal{Target: filepath.Join(cfg.Paths.Output, "2025-10"),
		Work: filepath.Join(cfg.Paths.Output, ".work-r2", "2025-10"), Keep: filepath.Join(cfg.Paths.Output, "2025-10.versions", "v1")})
	opsWrite(t, root, map[string]string{"output/.publish-2025-10.json": string(j)})

	did, err := Recover(cfg, filepath.Join(cfg.Paths.Output, ".work-mine", "2025-10"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"output/.work-mine/2025-10/usage_detail.csv",
		"output/2025-09/usage_detail.csv",
		"output/2025-10/usage_detail.csv",
		"output/runs.csv",
		"staging/cdrs/usage_date=2025-10-01/aaaa.parquet",
		"staging/invoice_numbers.csv",
		"staging/ledger.csv",
		"staging/snapshots/abc/reference/rates.csv",
		"staging/snapshots/published.csv",
	}
	got := opsListTree(t, root)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("after Recover:\n%s\nwant:\n%s\nactions: %q", strings.Join(got, "\n"), strings.Join(want, "\n"), did)
	}
	if b, _ := os.ReadFile(filepath.Join(cfg.Paths.Output, "2025-10", "usage_detail.csv")); string(b) != "previous" {
		t.Errorf("output/2025-10 holds %q, want the previous version back", b)
	}
	l, err := ReadLedger(cfg.Paths.Staging)
	if err != nil || len(l) != 1 || l[0].SHA256 != sha1 {
		t.Errorf("ledger after cutting the torn line: %v, %v", l, err)
	}
	// a second Recover has nothing to do
	if did, err := Recover(cfg, filepath.Join(cfg.Paths.Output, ".work-mine", "2025-10"), nil); err != nil || len(did) != 0 {
		t.Errorf("second Recover: %q, %v", did, err)
	}
}

// A journal whose swap completed (the period folder is there) is only removed.
func TestRecoverCompletedSwap(t *testing.T) {
	root := t.TempDir()
	cfg := &Config{Paths: Paths{Output: filepath.Join(root, "output"), Staging: filepath.Join(root, "staging")}}
	opsWrite(t, root, map[string]string{
		"output/2025-10/usage_detail.csv":             "new",
		"output/2025-10.versions/v1/usage_detail.csv": "previous",
	})
	j, _ := json.Marshal(publishJournal{Target: filepath.Join(cfg.Paths.Output, "2025-10"),
		Work: filepath.Join(cfg.Paths.Output, ".work-r2", "2025-10"), Keep: filepath.Join(cfg.Paths.Output, "2025-10.versions", "v1")})
	opsWrite(t, root, map[string]string{"output/.publish-2025-10.json": string(j)})
	if _, err := Recover(cfg, "", nil); err != nil {
		t.Fatal(err)
	}
	want := "output/2025-10.versions/v1/usage_detail.csv\noutput/2025-10/usage_detail.csv"
	if got := strings.Join(opsListTree(t, root), "\n"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(cfg.Paths.Output, "2025-10", "usage_detail.csv")); string(b) != "new" {
		t.Errorf("output/2025-10 holds %q, want the new version", b)
	}
}
