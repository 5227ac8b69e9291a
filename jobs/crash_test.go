package jobs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"cdrbill/pipeline"
	"cdrbill/pipeline/testkit"
)

// The kill test: the real binary (the test binary under the name cdrbill, see TestMain) is
// stopped dead (exit 137, no deferred cleanup, like kill -9) at chosen points of the nightly job
// through the CDRBILL_CRASH_AT hook; the next run must recover and end exactly where an
// uninterrupted run ends.

// crashRun runs the cdrbill binary as a separate process with the crash hook set.
func crashRun(t *testing.T, point string, args ...string) int {
	t.Helper()
	bin, err := exec.LookPath("cdrbill")
	if err != nil {
		t.Skipf("cdrbill test binary not on PATH: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), pipeline.CrashEnv+"="+point)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// outputState is the output folder as comparable bytes: every file but runs.csv, manifests
// without their run section.
func outputState(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := readTree(t, filepath.Join(dir, "output"))
	delete(files, "runs.csv")
	for name, b := range files {
		if filepath.Base(name) == "manifest.json" {
			files[name] = withoutRunSection(t, b)
		}
	}
	return files
}

// stagingState is the staged data as comparable bytes: the Parquet files and snapshots (the
// ledger, invoice book and published index carry run ids and times, and are checked apart).
func stagingState(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := readTree(t, filepath.Join(dir, "fixtures", "demo", "staging"))
	for name := range files {
		if strings.HasPrefix(name, "tmp/") || strings.HasSuffix(name, ".lock") || name == "ledger.csv" ||
			name == pipeline.InvoiceBookFile || name == "snapshots/published.csv" {
			delete(files, name)
		}
	}
	return files
}

func compareStates(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	var names []string
	seen := map[string]bool{}
	for n := range got {
		seen[n] = true
		names = append(names, n)
	}
	for n := range want {
		if !seen[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		g, gok := got[n]
		w, wok := want[n]
		switch {
		case !gok:
			t.Errorf("%s: %s missing after recovery", what, n)
		case !wok:
			t.Errorf("%s: %s exists only after recovery", what, n)
		case !bytes.Equal(g, w):
			t.Errorf("%s: %s differs from an uninterrupted run", what, n)
		}
	}
}

// checkNoLeftovers fails on any work folder, journal or temporary file (a name starting with a
// dot) in output/ or staging/ (DuckDB's own temp folder apart).
func checkNoLeftovers(t *testing.T, dir string) {
	t.Helper()
	for _, root := range []string{filepath.Join(dir, "output"), filepath.Join(dir, "fixtures", "demo", "staging")} {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && d.Name() == "tmp" {
				return filepath.SkipDir
			}
			if strings.HasPrefix(d.Name(), ".") {
				t.Errorf("leftover after recovery: %s", p)
			}
			return nil
		})
	}
}

// checkLedger fails when a file is in the ledger twice (its CDRs would be staged twice).
func checkLedger(t *testing.T, dir string, want int) {
	t.Helper()
	ledger, err := pipeline.ReadLedger(filepath.Join(dir, "fixtures", "demo", "staging"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range ledger {
		if seen[e.SHA256] {
			t.Errorf("file %s ingested twice", e.File)
		}
		seen[e.SHA256] = true
	}
	if len(ledger) != want {
		t.Errorf("ledger has %d files, want %d", len(ledger), want)
	}
}

// checkUniqueCDRs fails when usage_detail.csv bills a cdr_id twice.
func checkUniqueCDRs(t *testing.T, dir string) {
	t.Helper()
	seen := map[string]bool{}
	for _, row := range rowsOf(testkit.ReadCSV(t, filepath.Join(dir, "output", "2025-10", "usage_detail.csv"))) {
		if seen[row["cdr_id"]] {
			t.Errorf("cdr %s billed twice", row["cdr_id"])
		}
		seen[row["cdr_id"]] = true
	}
	if len(seen) == 0 {
		t.Errorf("usage_detail.csv is empty")
	}
}

// lateCDRs is a new CDR file for 2025-10 that arrives after the month was published.
const lateCDRs = "call_id,account,direction,origin,destination,start,duration,usage_type,bytes\n" +
	"late001,1001,outbound,+13055550101,+13055550152,2025-10-20T10:00:00-04:00,120,voice,\n"

func addLateFile(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, "fixtures", "demo", "inbox", "pbx1", "cdrs-2025-10-late.csv")
	if err := os.WriteFile(p, []byte(lateCDRs), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestKillAndRecover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary about 30 times")
	}
	// the uninterrupted run
	ref := t.TempDir()
	refCfg := testkit.CopyDemo(t, ref)
	if code, _, stderr := runCLI(t, "--config", refCfg, "run", "--period", "2025-10"); code != ExitReview {
		t.Fatalf("uninterrupted run: exit %d\n%s", code, stderr)
	}
	wantOut, wantStaging := outputState(t, ref), stagingState(t, ref)

	points := []string{"ingest", "ingest-ledger", "staging", "rate", "summarize", "tax", "export", "reconcile",
		"manifest", "publish", "publish-recorded"}
	for _, point := range points {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testkit.CopyDemo(t, dir)
			if code := crashRun(t, point, "--config", cfg, "run", "--period", "2025-10"); code != 137 {
				t.Fatalf("crash at %s: exit %d, want 137 (the hook did not fire)", point, code)
			}
			if _, err := os.Stat(filepath.Join(dir, "output", "2025-10")); !os.IsNotExist(err) {
				t.Errorf("crash at %s: the period was published by a killed run", point)
			}
			if code, _, stderr := runCLI(t, "--config", cfg, "run", "--period", "2025-10"); code != ExitReview {
				t.Fatalf("run after the crash: exit %d\n%s", code, stderr)
			}
			compareStates(t, "output", outputState(t, dir), wantOut)
			compareStates(t, "staging", stagingState(t, dir), wantStaging)
			checkNoLeftovers(t, dir)
			checkLedger(t, dir, 2)
			checkUniqueCDRs(t, dir)
		})
	}
}

// TestKillBetweenPublishRenames kills a run that replaces a published version in the window
// where the previous version was moved away and the new one is not in place yet.
func TestKillBetweenPublishRenames(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	ref := t.TempDir()
	refCfg := testkit.CopyDemo(t, ref)
	runCLI(t, "--config", refCfg, "run", "--period", "2025-10")
	addLateFile(t, ref)
	if code, _, stderr := runCLI(t, "--config", refCfg, "run", "--period", "2025-10"); code != ExitReview {
		t.Fatalf("second uninterrupted run: exit %d\n%s", code, stderr)
	}
	want := outputState(t, ref)
	if _, ok := want["2025-10.versions/v1/usage_detail.csv"]; !ok {
		t.Fatalf("the uninterrupted runs kept no previous version")
	}

	dir := t.TempDir()
	cfg := testkit.CopyDemo(t, dir)
	runCLI(t, "--config", cfg, "run", "--period", "2025-10")
	addLateFile(t, dir)
	if code := crashRun(t, "publish-swap", "--config", cfg, "run", "--period", "2025-10"); code != 137 {
		t.Fatalf("exit %d, want 137", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "output", "2025-10")); !os.IsNotExist(err) {
		t.Fatalf("the crash did not happen inside the window (output/2025-10 is there)")
	}
	if code, _, stderr := runCLI(t, "--config", cfg, "run", "--period", "2025-10"); code != ExitReview {
		t.Fatalf("run after the crash: exit %d\n%s", code, stderr)
	}
	compareStates(t, "output", outputState(t, dir), want)
	checkNoLeftovers(t, dir)
	checkLedger(t, dir, 3)
	checkUniqueCDRs(t, dir)
}
