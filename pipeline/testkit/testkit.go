// Package testkit holds the helpers the end-to-end tests of jobs and pipeline share: a scratch
// copy of the demo data and header-keyed reading of output CSVs.
package testkit

import (
	"encoding/csv"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// DemoDir is fixtures/demo in the repository.
func DemoDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "fixtures", "demo")
}

// CopyDemo copies fixtures/demo (without its staging) to dir/fixtures/demo and returns the
// config path; the demo config's output folder is then dir/output.
func CopyDemo(t testing.TB, dir string) string {
	t.Helper()
	src := DemoDir()
	dst := filepath.Join(dir, "fixtures", "demo")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() && (rel == "staging" || rel == "output") {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dst, "cdrbill.toml")
}

// ReadCSV reads an output CSV: its header and its rows keyed by header name.
func ReadCSV(t testing.TB, path string) ([]string, []map[string]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	if len(recs) == 0 {
		t.Fatalf("%s: empty, not even a header", filepath.Base(path))
	}
	rows := make([]map[string]string, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		m := make(map[string]string, len(rec))
		for i, h := range recs[0] {
			m[h] = rec[i]
		}
		rows = append(rows, m)
	}
	return recs[0], rows
}
