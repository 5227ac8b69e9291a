package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v3"

	"cdrbill/pipeline"
)

// runTrace runs `cdrbill --config DEMO trace ARGS...` (the trace command alone under a root).
func runTrace(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	// The demo's billing settings and reference data, without its [[source]] (whose format
	// belongs to ingest): trace reads neither the inbox nor staging.
	demo, err := filepath.Abs(filepath.Join("..", "fixtures", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &pipeline.Config{Dir: demo}
	cfg.Billing.Timezone = "America/New_York"
	cfg.Defaults()
	cfg.Paths.Reference = demoReference(t, filepath.Join(demo, "reference"))
	cfg.Paths.Output = t.TempDir()
	cfg.DuckDB.TempDirectory = filepath.Join(t.TempDir(), "duckdb")
	if cfg.Location, err = time.LoadLocation(cfg.Billing.Timezone); err != nil {
		t.Fatal(err)
	}
	trace := traceCommand()
	trace.Action = func(ctx context.Context, cmd *cli.Command) error { return traceAction(ctx, cmd, cfg) }
	app := &cli.Command{
		Name: "cdrbill", Writer: &out, ErrWriter: &errb,
		Flags:          []cli.Flag{&cli.StringFlag{Name: "config", Value: "cdrbill.toml"}},
		OnUsageError:   func(ctx context.Context, cmd *cli.Command, err error, _ bool) error { return usageError{err} },
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
		Commands:       []*cli.Command{trace},
	}
	err = app.Run(context.Background(), append([]string{"cdrbill", "trace"}, args...))
	if err != nil {
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), exitCode(err)
}

// The contract's example on the demo deck: STANDARD plan, prefix 44 (0 s: 0.2/60 s inc 60;
// 60 s: 0.1/60 s inc 1; connect 0.4; up to 4 decimals).
func TestTraceCommand(t *testing.T) {
	cases := []struct {
		args       []string
		code       int
		want       []string
		jsonAmount string
	}{
		{[]string{"--account", "1001", "--destination", "+44 20 7946 0123", "--start", "2025-10-08T11:00:00-04:00", "--duration", "120"},
			0, []string{"Amount       0.7000 (up to 4 decimals)", `Matched      prefix "44"`}, ""},
		{[]string{"--account", "1001", "--destination", "+442079460123", "--start", "2025-10-08 11:00", "--duration", "130"},
			0, []string{"Amount       0.7167 (up to 4 decimals)", "Exact        0.716666666667… = 43/60"}, ""},
		{[]string{"--account", "1001", "--destination", "+442079460123", "--start", "2025-10-08T15:00:00Z", "--duration", "130", "--format", "json"},
			0, nil, "0.7167"},
		{[]string{"--account", "9999", "--destination", "+13055550123", "--start", "2025-10-08T15:00:00Z", "--duration", "60"},
			3, []string{"NOT RATED    unmapped_account"}, ""},
		{[]string{"--account", "1001", "--destination", "+13055550123", "--start", "yesterday", "--duration", "60"},
			2, nil, ""},
		{[]string{"--account", "1001", "--destination", "+13055550123", "--start", "2025-10-08T15:00:00Z", "--direction", "up"},
			2, nil, ""},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out, stderr, code := runTrace(t, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, c.code, out, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if c.jsonAmount != "" {
				var v struct{ Amount string }
				if err := json.Unmarshal([]byte(out), &v); err != nil || v.Amount != c.jsonAmount {
					t.Errorf("json amount %q (%v):\n%s", v.Amount, err, out)
				}
			}
		})
	}
}

// demoReference copies the demo's reference CSVs into a temporary folder, adding a header-only
// tax_rates.csv when the demo has none yet (rating does not read it).
func demoReference(t *testing.T, dir string) string {
	t.Helper()
	tmp := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tax := filepath.Join(tmp, "tax_rates.csv")
	if _, err := os.Stat(tax); err != nil {
		header := "jurisdiction,tax_code,tax_name,level,tax_class,percent,amount_per_line,base_percent,base_includes,catalog_identifier,effective_from,effective_to\n"
		if err := os.WriteFile(tax, []byte(header), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return tmp
}
