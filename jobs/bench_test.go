package jobs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v3"

	"cdrbill/pipeline"
	"cdrbill/pipeline/ingest"
)

// runBench runs `cdrbill bench ARGS` in process and returns its standard output.
func runBench(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	app := &cli.Command{
		Name: "cdrbill", Writer: &stdout, ErrWriter: &stderr,
		Flags:          []cli.Flag{&cli.StringFlag{Name: "config", Value: "cdrbill.toml"}},
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
		Commands:       []*cli.Command{benchCommand()},
	}
	err := app.Run(context.Background(), append([]string{"cdrbill", "bench"}, args...))
	if err != nil {
		t.Logf("stderr: %s", stderr.String())
	}
	return stdout.String(), err
}

// TestBench runs the bench on 2 000 rows and checks its table: one line per step (generation,
// setup, every nightly stage, the full run, the floor) with 2 000 rows, and the ratio.
func TestBench(t *testing.T) {
	if !slices.Contains(ingest.Formats(), "generic") {
		t.Skip("no generic CDR parser registered yet (the ingest stage has not landed)")
	}
	dir := filepath.Join(t.TempDir(), "bench")
	out, err := runBench(t, "--rows", "2000", "--dir", dir)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	steps := []string{"generate", "setup + reference"}
	for _, s := range pipeline.NightlyStages(&pipeline.Config{}) {
		steps = append(steps, s.String())
	}
	steps = append(steps, "full run", "floor: duckdb csv -> parquet")
	for _, s := range steps {
		line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(s) + ` +2000 +[0-9]+\.[0-9]{3} +([0-9]+|-) +[0-9]+ +[0-9]+ `)
		if !line.MatchString(out) {
			t.Errorf("no line for %q with 2000 rows, seconds, rows/s and peak RSS in\n%s", s, out)
		}
	}
	if !regexp.MustCompile(`(?m)^ratio full run / floor: [0-9]+\.[0-9]{2}$`).MatchString(out) {
		t.Errorf("no ratio in\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^process peak RSS: [0-9]+ MiB$`).MatchString(out) {
		t.Errorf("no process peak RSS in\n%s", out)
	}
	// The --dir folder is kept, with the published period; the floor's Parquet file is removed.
	if _, err := os.Stat(filepath.Join(dir, "output", "2025-10", "manifest.json")); err != nil {
		t.Errorf("published period: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "floor.parquet")); err == nil {
		t.Error("floor.parquet left behind")
	}
	// A second bench into the same folder starts again from scratch.
	out2, err := runBench(t, "--rows", "2000", "--dir", dir)
	if err != nil || !strings.Contains(out2, "ratio full run / floor") {
		t.Errorf("second bench in the same folder: %v\n%s", err, out2)
	}
}

func TestBenchRefusals(t *testing.T) {
	if _, err := runBench(t, "--rows", "0"); exitCode(err) != ExitInput {
		t.Errorf("--rows 0: %v (status %d), want status 2", err, exitCode(err))
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "precious.txt"), []byte("x"), 0o644)
	if _, err := runBench(t, "--rows", "10", "--dir", dir); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("foreign --dir: %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "precious.txt")); err != nil {
		t.Errorf("foreign file removed: %v", err)
	}
}
