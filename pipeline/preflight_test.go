package pipeline

import (
	"bytes"
	"cdrbill/pipeline/testkit"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/shopspring/decimal"
)

// pfNow is the preflight tests' clock: two days after the demo period, before a cutover on
// 2025-11-01 + 90 days.
var pfNow = time.Date(2025, 11, 3, 12, 0, 0, 0, time.UTC)

// pfLoadConfig reads a config as the CLI does (strict keys, defaults, validation).
func pfLoadConfig(t testing.TB, path string) *Config {
	t.Helper()
	var cfg Config
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("unknown keys %v", u)
	}
	cfg.File, cfg.Dir = path, filepath.Dir(path)
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

func pfLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// pfPreflight runs the preflight of a config for 2025-10 into dir/report.
func pfPreflight(t testing.TB, cfgPath string) *PreflightReport {
	t.Helper()
	cfg := pfLoadConfig(t, cfgPath)
	p, _ := ParsePeriod("2025-10")
	rep, err := Preflight(context.Background(), cfg, PreflightOptions{
		Out: filepath.Join(filepath.Dir(cfgPath), "report"), Period: p, Now: pfNow, Log: pfLog()})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// pfEdit rewrites a file of the fixture.
func pfEdit(t testing.TB, path string, fn func(string) string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(fn(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pfDemoBadLines are the demo's rows that are bad on purpose (export_errors.csv of the demo):
// rejected rows, the satellite call with no catalog item, two unrated calls, an unknown account.
var pfDemoBadLines = map[int]bool{11: true, 26: true, 41: true, 56: true, 71: true, 164: true, 165: true, 166: true, 172: true}

var (
	pfPostedOnce sync.Once
	pfPosted     string
)

// pfCleanFixture is the demo without its bad rows, with a ticket board and a cutover, and with
// posted invoices equal to what the job rates: every step passes. It returns the config path.
func pfCleanFixture(t testing.TB) string {
	t.Helper()
	cfgPath := testkit.CopyDemo(t, t.TempDir())
	dir := filepath.Dir(cfgPath)
	pfEdit(t, filepath.Join(dir, "inbox", "pbx1", "cdrs-2025-10-a.csv"), func(s string) string {
		lines := strings.SplitAfter(s, "\n")
		var out []string
		for i, l := range lines {
			if !pfDemoBadLines[i+1] {
				out = append(out, l)
			}
		}
		return strings.Join(out, "")
	})
	pfEdit(t, cfgPath, func(s string) string {
		return s + "\n[tickets]\nboard = \"Billing Review\"\npriority = \"Priority 2 - Quick Response\"\n\n[monitoring]\ncutover = \"2025-11-01\"\n"
	})
	posted := filepath.Join(dir, "posted")
	if err := os.RemoveAll(posted); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(posted, 0o755)
	pfPostedOnce.Do(func() {
		// The first invoice batch as ConnectWise would have posted it: the rated totals.
		rep := pfPreflight(t, cfgPath)
		if st := rep.step(9).Status; st != PreflightWarn {
			t.Fatalf("without posted invoices step 9 is %s, want warn", st)
		}
		pfPosted = pfPostedFrom(t, filepath.Join(dir, "report", "dry-run", "2025-10"))
	})
	if err := os.WriteFile(filepath.Join(posted, "cw_invoices.csv"), []byte(pfPosted), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath
}

// pfPostedFrom builds a posted-invoices CSV from a period's exports: one invoice per customer with
// the subtotal of usage_summary.csv and the tax of tax_lines.csv.
func pfPostedFrom(t testing.TB, dir string) string {
	t.Helper()
	inv, err := readExportCSV(dir, "connectwise_invoices.csv", ConnectWiseInvoicesColumns)
	if err != nil {
		t.Fatal(err)
	}
	us, _ := readExportCSV(dir, "usage_summary.csv", UsageSummaryColumns)
	tl, _ := readExportCSV(dir, "tax_lines.csv", TaxLinesColumns)
	sub, tax := map[string]decimal.Decimal{}, map[string]decimal.Decimal{}
	for _, r := range us.rows {
		who := us.get(r, "company_identifier")
		sub[who] = sub[who].Add(decimal.RequireFromString(us.get(r, "amount")))
	}
	for _, r := range tl.rows {
		who := tl.get(r, "company_identifier")
		tax[who] = tax[who].Add(decimal.RequireFromString(tl.get(r, "tax_amount")))
	}
	var b strings.Builder
	b.WriteString("invoiceNumber,type,company/id,company/identifier,date,subtotal,salesTax,total,status/name\n")
	seen := map[string]bool{}
	for _, r := range inv.rows {
		n := inv.get(r, "invoiceNumber")
		if seen[n] {
			continue
		}
		seen[n] = true
		who := inv.get(r, "company/identifier")
		fmt.Fprintf(&b, "%s,Miscellaneous,%s,%s,%s,%s,%s,%s,Sent\n", n, inv.get(r, "company/id"), who, inv.get(r, "date"),
			sub[who].StringFixed(2), tax[who].StringFixed(2), sub[who].Add(tax[who]).StringFixed(2))
	}
	return b.String()
}

func pfStatuses(rep *PreflightReport) string {
	var s []string
	for _, st := range rep.Steps {
		s = append(s, fmt.Sprintf("%d=%s", st.No, st.Status))
	}
	return strings.Join(s, " ")
}

func pfDump(rep *PreflightReport) string {
	var b bytes.Buffer
	rep.WriteText(&b)
	return b.String()
}

// TestPreflightClean: the demo without its bad rows passes all ten steps.
func TestPreflightClean(t *testing.T) {
	rep := pfPreflight(t, pfCleanFixture(t))
	if !rep.OK() {
		t.Fatalf("want every step to pass, got %s\n%s", pfStatuses(rep), pfDump(rep))
	}
	// evidence a reviewer relies on
	for _, want := range []struct {
		step int
		text string
	}{
		{1, "166 CDRs staged for 2025-10 from 4 accounts"},
		{3, "20 of the first 20 rows parse"},
		{4, "the job's amount 1.00: equal"},
		{5, "sample invoice: US-TX-AUSTIN"},
		{7, "per-customer totals: 4 customers"},
		{9, "4 ok, 0 flagged"},
		{10, "reconciliation cadence on 2025-11-03: weekly"},
	} {
		if ev := strings.Join(rep.step(want.step).Evidence, "\n"); !strings.Contains(ev, want.text) {
			t.Errorf("step %d evidence lacks %q:\n%s", want.step, want.text, ev)
		}
	}
}

// TestPreflightBreaks breaks one thing at a time in the clean fixture and checks that exactly that
// step fails, with evidence that names the problem.
func TestPreflightBreaks(t *testing.T) {
	cases := []struct {
		name     string
		step     int
		evidence string
		brk      func(t *testing.T, dir string)
	}{
		{"unmapped account", 1, "unmapped account 7777: 1 CDR(s), first pbx1/cdrs-2025-10-c.csv:2", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "inbox", "pbx1", "cdrs-2025-10-c.csv"), []byte(
				"call_id,account,direction,origin,destination,start,duration,usage_type,bytes\n"+
					"x1,7777,outbound,+13055550101,+13055550152,2025-10-20T10:00:00-04:00,60,voice,\n"), 0o644)
		}},
		{"product with no SKU and no fallback", 2, "unmapped product VOICE-IN has no catalog_identifier in products.csv", func(t *testing.T, dir string) {
			pfEdit(t, filepath.Join(dir, "reference", "products.csv"), func(s string) string {
				s = strings.Replace(s, "VOICE-IN,USAGE-VOICE-IN,", "VOICE-IN,,", 1)
				return strings.Replace(s, "OTHER,USAGE-OTHER,Other usage (fallback),true,voice,4190\n", "", 1)
			})
		}},
		{"source whose sample rows do not parse", 3, "source pbx2 (asterisk): pbx2/Master.csv: 0 of the first 3 rows parse", func(t *testing.T, dir string) {
			os.MkdirAll(filepath.Join(dir, "inbox", "pbx2"), 0o755)
			os.WriteFile(filepath.Join(dir, "inbox", "pbx2", "Master.csv"), []byte(
				"call_id,account,direction,origin,destination,start,duration,usage_type,bytes\n"+
					"y1,1001,outbound,+13055550101,+13055550152,2025-10-20T10:00:00-04:00,60,voice,\n"+
					"y2,1001,outbound,+13055550101,+13055550153,2025-10-21T10:00:00-04:00,60,voice,\n"), 0o644)
			pfEdit(t, filepath.Join(dir, "cdrbill.toml"), func(s string) string {
				return strings.Replace(s, "[tickets]", "[[source]]\nname = \"pbx2\"\nformat = \"asterisk\"\npath = \"inbox/pbx2\"\n\n[tickets]", 1)
			})
		}},
		{"plan with no rounding", 4, "reference/plans.csv:3:9: rounding_method: \"\" is not one of", func(t *testing.T, dir string) {
			pfEdit(t, filepath.Join(dir, "reference", "plans.csv"), func(s string) string {
				return strings.Replace(s, "PREMIUM,half_up,2,USD", "PREMIUM,,2,USD", 1)
			})
		}},
		{"unrated call", 4, "unrated: 1 CDR(s), first pbx1/cdrs-2025-10-c.csv:2: no voice rate in plan STANDARD", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "inbox", "pbx1", "cdrs-2025-10-c.csv"), []byte(
				"call_id,account,direction,origin,destination,start,duration,usage_type,bytes\n"+
					"x2,1001,outbound,+13055550101,+61491570156,2025-10-20T10:00:00-04:00,60,voice,\n"), 0o644)
		}},
		{"jurisdiction with no tax rows", 5, "jurisdiction CA-ON-TORONTO (NORTHPEAK): NO tax_rates.csv row applies", func(t *testing.T, dir string) {
			pfEdit(t, filepath.Join(dir, "reference", "customers.csv"), func(s string) string {
				return s + "1005,255,NORTHPEAK,Northpeak Clinic,9005,STANDARD,CA-ON-TORONTO,2,,,2025-01-01,\n"
			})
		}},
		{"template empty on summary lines", 6, "invoice lines with an empty description", func(t *testing.T, dir string) {
			pfEdit(t, filepath.Join(dir, "cdrbill.toml"), func(s string) string {
				return strings.Replace(s, "tax_rounding = \"invoice\"", "tax_rounding = \"invoice\"\ndescription_template = \"{origin}\"", 1)
			})
		}},
		{"posted invoice 2 % off", 9, "flagged BLUEBIRDLAW: rated 16.98, posted 17.32 (USG000002), variance 0.34 = 2.00 %, above 1 %", func(t *testing.T, dir string) {
			pfEdit(t, filepath.Join(dir, "posted", "cw_invoices.csv"), func(s string) string {
				var out []string
				for _, l := range strings.Split(s, "\n") {
					if strings.Contains(l, ",BLUEBIRDLAW,") {
						f := strings.Split(l, ",")
						total := decimal.RequireFromString(f[7])
						f[7] = total.Mul(decimal.RequireFromString("1.02")).StringFixed(2)
						f[5] = decimal.RequireFromString(f[7]).Sub(decimal.RequireFromString(f[6])).StringFixed(2)
						l = strings.Join(f, ",")
					}
					out = append(out, l)
				}
				return strings.Join(out, "\n")
			})
		}},
		{"customers.csv rows that overlap", 1, "reference/customers.csv:", func(t *testing.T, dir string) {
			pfEdit(t, filepath.Join(dir, "reference", "customers.csv"), func(s string) string {
				return s + "1001,250,ACMEDENTAL,Acme Dental Miami,9001,PREMIUM,US-FL-MIAMI,4,,,2025-06-01,\n"
			})
		}},
		{"posted invoices that do not read", 9, "the reconcile stage failed: posted/cw_invoices.csv:3", func(t *testing.T, dir string) {
			pfEdit(t, filepath.Join(dir, "posted", "cw_invoices.csv"), func(s string) string {
				lines := strings.Split(s, "\n")
				f := strings.Split(lines[2], ",")
				f[7] = "twelve"
				lines[2] = strings.Join(f, ",")
				return strings.Join(lines, "\n")
			})
		}},
		{"schedule that does not parse", 10, `schedule.cron "0 2 * *" does not parse`, func(t *testing.T, dir string) {
			pfEdit(t, filepath.Join(dir, "cdrbill.toml"), func(s string) string {
				return strings.Replace(s, `cron = "0 2 * * *"`, `cron = "0 2 * *"`, 1)
			})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfgPath := pfCleanFixture(t)
			c.brk(t, filepath.Dir(cfgPath))
			rep := pfPreflight(t, cfgPath)
			for _, st := range rep.Steps {
				if (st.Status == PreflightFail) != (st.No == c.step) {
					t.Errorf("step %d is %s; want only step %d to fail (%s)\n%s", st.No, st.Status, c.step, pfStatuses(rep), pfDump(rep))
				}
			}
			st := rep.step(c.step)
			if ev := strings.Join(st.Evidence, "\n"); !strings.Contains(ev, c.evidence) {
				t.Errorf("step %d evidence lacks %q:\n%s", c.step, c.evidence, ev)
			}
			if st.Remedy == "" {
				t.Errorf("step %d fails with no remedy", c.step)
			}
		})
	}
}

// TestPreflightWarns: a config without a ticket board or cutover warns on exactly those steps and
// exits 3 like a failure, with every other step passing.
func TestPreflightWarns(t *testing.T) {
	cfgPath := pfCleanFixture(t)
	pfEdit(t, cfgPath, func(s string) string {
		s = strings.Replace(s, "board = \"Billing Review\"\n", "", 1)
		return strings.Replace(s, "cutover = \"2025-11-01\"\n", "", 1)
	})
	rep := pfPreflight(t, cfgPath)
	for _, st := range rep.Steps {
		want := PreflightPass
		if st.No == 8 || st.No == 10 {
			want = PreflightWarn
		}
		if st.Status != want {
			t.Errorf("step %d is %s, want %s\n%s", st.No, st.Status, want, pfDump(rep))
		}
	}
	if rep.OK() {
		t.Error("a report with warnings is not OK (exit 3)")
	}
	if ev := strings.Join(rep.step(8).Evidence, "\n"); !strings.Contains(ev, `tickets.board not set: tickets go to the default board "Billing"`) {
		t.Errorf("step 8 evidence: %s", ev)
	}
}

// pfTree reads every file under dir (skipping the folder named skip), by relative path.
func pfTree(t *testing.T, dir, skip string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() && rel == skip {
			return filepath.SkipDir
		}
		if d.IsDir() {
			files[filepath.ToSlash(rel)+"/"] = nil
			return nil
		}
		b, err := os.ReadFile(path)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func pfSameTree(t *testing.T, what string, before, after map[string][]byte) {
	t.Helper()
	for name, b := range before {
		a, ok := after[name]
		if !ok {
			t.Errorf("%s: %s removed by the preflight", what, name)
		} else if !bytes.Equal(a, b) {
			t.Errorf("%s: %s changed by the preflight", what, name)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s: %s created by the preflight", what, name)
		}
	}
}

// TestPreflightReadOnly runs the real job on the demo, then the preflight (default report folder,
// inside paths.output): staging (ledger, Parquet, invoice book, lock), the published period,
// runs.csv and the inbox are byte-identical afterwards.
func TestPreflightReadOnly(t *testing.T) {
	ctx := context.Background()
	cfgPath := testkit.CopyDemo(t, t.TempDir())
	cfg := pfLoadConfig(t, cfgPath)
	p, _ := ParsePeriod("2025-10")
	unlock, err := Lock(ctx, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRun(ctx, cfg, p, pfLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := RunNightly(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := AppendRunLog(cfg, r, "run", 3); err != nil {
		t.Fatal(err)
	}
	r.Close()
	unlock()
	// a new CDR file arrives after the run: the preflight ingests it into its scratch copy only
	os.WriteFile(filepath.Join(cfg.Dir, "inbox", "pbx1", "cdrs-2025-10-c.csv"), []byte(
		"call_id,account,direction,origin,destination,start,duration,usage_type,bytes\n"+
			"x3,1001,outbound,+13055550101,+13055550152,2025-10-29T10:00:00-04:00,60,voice,\n"), 0o644)

	staging, output, inbox := pfTree(t, cfg.Paths.Staging, ""), pfTree(t, cfg.Paths.Output, "preflight"), pfTree(t, cfg.Paths.Inbox, "")
	if _, ok := staging["invoice_numbers.csv"]; !ok {
		t.Fatal("the run left no invoice book in staging")
	}
	rep, err := Preflight(ctx, cfg, PreflightOptions{Now: pfNow, Log: pfLog()})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteFiles(filepath.Join(cfg.Paths.Output, "preflight")); err != nil {
		t.Fatal(err)
	}
	pfSameTree(t, "staging", staging, pfTree(t, cfg.Paths.Staging, ""))
	pfSameTree(t, "output", output, pfTree(t, cfg.Paths.Output, "preflight"))
	pfSameTree(t, "inbox", inbox, pfTree(t, cfg.Paths.Inbox, ""))

	if rep.Period != "2025-10" {
		t.Errorf("period %s, want 2025-10 (the latest staged usage)", rep.Period)
	}
	if !strings.Contains(rep.Scratch, "scratch copy of staging (") || strings.Contains(rep.Scratch, "(0 files") {
		t.Errorf("scratch not seeded from the real staging: %s", rep.Scratch)
	}
	// the new file is in the audit (171 staged), not in the real staging (170)
	if ev := strings.Join(rep.step(1).Evidence, "\n"); !strings.Contains(ev, "171 CDRs staged") {
		t.Errorf("step 1 evidence: %s", ev)
	}
	if ev := strings.Join(rep.step(10).Evidence, "\n"); !strings.Contains(ev, "run period 2025-10 exit 3") {
		t.Errorf("step 10 lacks the last run: %s", ev)
	}
	for _, f := range []string{"preflight.csv", "preflight.md", "dry-run/2025-10/connectwise_invoices.csv"} {
		if _, err := os.Stat(filepath.Join(cfg.Paths.Output, "preflight", f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.Paths.Output, "preflight", ".scratch")); err == nil {
		t.Error("the scratch folder was left behind")
	}
}

// TestPreflightGolden: the demo's report (fresh demo, fixed clock) equals
// fixtures/golden/preflight/demo (go test ./pipeline -run TestPreflightGolden -update rewrites it).
func TestPreflightGolden(t *testing.T) {
	cfgPath := testkit.CopyDemo(t, t.TempDir())
	rep := pfPreflight(t, cfgPath)
	out := filepath.Join(filepath.Dir(cfgPath), "report")
	if err := rep.WriteFiles(out); err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	os.WriteFile(filepath.Join(out, "preflight.txt"), text.Bytes(), 0o644)
	pass, warn, fail := rep.Counts()
	if pass+warn+fail != 10 || fail == 0 {
		t.Errorf("demo: %s; the demo has bad rows on purpose and must fail", pfStatuses(rep))
	}
	golden := filepath.Join("..", "fixtures", "golden", "preflight", "demo")
	for _, name := range []string{"preflight.csv", "preflight.md", "preflight.txt"} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if updateGolden() {
			os.MkdirAll(golden, 0o755)
			if err := os.WriteFile(filepath.Join(golden, name), got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(filepath.Join(golden, name))
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the golden file (rerun with -update and review the diff)\n--- got\n%s", name, got)
		}
	}
}

// TestValidateExports checks step 7's validator on the demo's golden outputs, then on copies with
// one thing wrong each.
func TestValidateExports(t *testing.T) {
	src := filepath.Join("..", "fixtures", "golden", "demo")
	cases := []struct {
		name string
		file string
		edit func(string) string
		want []string
	}{
		{"as published", "", nil, nil},
		{"extPrice off by a cent", "connectwise_invoices.csv", func(s string) string {
			return strings.Replace(s, "USAGE-DATA,\"Data usage, 2025-10-01 to 2025-10-31, 751.83 MB\",1.00,7.17,7.17,", "USAGE-DATA,\"Data usage, 2025-10-01 to 2025-10-31, 751.83 MB\",1.00,7.17,7.18,", 1)
		}, []string{"connectwise_invoices.csv:2: quantity 1.00 × price 7.17 = 7.17, but extPrice is 7.18"}},
		{"a line dropped from QuickBooks", "quickbooks_invoices.csv", func(s string) string {
			i := strings.Index(s, "\n")
			j := strings.Index(s[i+1:], "\n")
			return s[:i+1] + s[i+1+j+1:]
		}, []string{"quickbooks_invoices.csv:0: ACMEDENTAL totals 5.40, usage_summary + tax_lines 12.57"}},
		{"a contract column renamed", "connectwise_additions.csv", func(s string) string {
			return strings.Replace(s, "unitPrice", "unit_price", 1)
		}, []string{`connectwise_additions.csv:1: column "unitPrice" missing`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, b := range pfTreeOf(t, src) {
				p := filepath.Join(dir, name)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if name == c.file {
					b = []byte(c.edit(string(b)))
				}
				os.WriteFile(p, b, 0o644)
			}
			got, err := validateExports(dir, true)
			if err != nil {
				t.Fatal(err)
			}
			var probs []string
			for _, p := range got.problems {
				probs = append(probs, p.String())
			}
			all := strings.Join(probs, "\n")
			if len(c.want) == 0 && len(probs) > 0 {
				t.Errorf("problems on the published demo:\n%s", all)
			}
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("want a problem %q, got:\n%s", w, all)
				}
			}
			if c.file == "" && got.lines != 256 {
				t.Errorf("%d lines checked, want 256 (64 lines in each of 4 files)", got.lines)
			}
		})
	}
}

func pfTreeOf(t *testing.T, dir string) map[string][]byte {
	files := pfTree(t, dir, "")
	for k := range files {
		if strings.HasSuffix(k, "/") {
			delete(files, k)
		}
	}
	return files
}
