package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// The preflight (`cdrbill preflight`) is the 10-step readiness self-audit of CONTRACT.md. It runs
// the whole nightly job against a scratch copy and never writes to the real staging, the
// published outputs, runs.csv or the invoice-number book:
//
//   - staging: DIR/.scratch/staging is seeded with the real staging's ledger.csv and
//     invoice_numbers.csv (copied) and its Parquet files (hard-linked when the file system allows,
//     else copied; staged Parquet is write-once and only ever replaced by rename, so a link can
//     never change the original). Sizes are checked after seeding. New inbox files are ingested
//     into the scratch copy only.
//   - outputs: DIR/.scratch/output; the period's export files are kept afterwards in
//     DIR/dry-run/YYYY-MM/ so they can be opened, and the rest of the scratch folder is removed.
//   - DuckDB's temp folder: DIR/.scratch/tmp.
//   - runs.csv (paths.output) is only read (step 10); the preflight is not a run and is not logged
//     there.
//
// When the real staging holds cdrbill.lock (it has run before), the preflight takes that lock
// while it copies, so it never copies a half-written ledger.

// Preflight statuses.
const (
	PreflightPass = "pass"
	PreflightWarn = "warn"
	PreflightFail = "fail"
)

// PreflightColumns are preflight.csv's columns.
var PreflightColumns = []string{"step", "name", "status", "evidence", "remedy"}

// PreflightStep is one row of the checklist.
type PreflightStep struct {
	No       int
	Name     string
	Status   string
	Evidence []string
	Remedy   string
}

// PreflightReport is the whole checklist.
type PreflightReport struct {
	Config  string // the config file, as given
	Period  string // YYYY-MM audited
	AsOf    time.Time
	Scratch string // how the job was run, for the report
	Steps   []PreflightStep
}

// PreflightOptions configure a preflight.
type PreflightOptions struct {
	// Out is DIR: preflight.csv, preflight.md, dry-run/ and (while it runs) .scratch/.
	Out string
	// Period is the period to audit; the zero value means the month of the latest staged usage
	// date (after ingesting the inbox into the scratch copy), or the month containing yesterday
	// when nothing is staged.
	Period Period
	// Now is the clock (step 10, disputes); zero means time.Now().
	Now time.Time
	// Log receives the stages' logs; nil discards them.
	Log *slog.Logger
	// Wait waits for the real staging's lock instead of failing with ErrLocked.
	Wait bool
}

// PreflightStepNames are the ten steps, in order.
var PreflightStepNames = []string{
	"entities matched",
	"catalog aligned",
	"usage fields mapped",
	"rating rules and rounding",
	"tax validated",
	"invoice line format",
	"export files written and valid",
	"error queue and ticket template",
	"first-invoice reconciliation",
	"monitoring",
}

// OK reports whether every step passed.
func (p *PreflightReport) OK() bool {
	for _, s := range p.Steps {
		if s.Status != PreflightPass {
			return false
		}
	}
	return true
}

// Counts returns how many steps have each status.
func (p *PreflightReport) Counts() (pass, warn, fail int) {
	for _, s := range p.Steps {
		switch s.Status {
		case PreflightPass:
			pass++
		case PreflightWarn:
			warn++
		default:
			fail++
		}
	}
	return
}

// step returns step n (1-based).
func (p *PreflightReport) step(n int) *PreflightStep { return &p.Steps[n-1] }

func (s *PreflightStep) add(format string, args ...any) {
	s.Evidence = append(s.Evidence, fmt.Sprintf(format, args...))
}

// raise sets the status to st when st is worse than the current one, and appends the remedy.
func (s *PreflightStep) raise(st, remedy string) {
	rank := map[string]int{PreflightPass: 0, PreflightWarn: 1, PreflightFail: 2}
	if rank[st] > rank[s.Status] {
		s.Status = st
	}
	if remedy != "" && !strings.Contains(s.Remedy, remedy) {
		if s.Remedy != "" {
			s.Remedy += " "
		}
		s.Remedy += remedy
	}
}

// preflightRun is the state of one preflight.
type preflightRun struct {
	cfg     *Config // the real config (only read)
	scratch *Config // the copy the job runs on
	opt     PreflightOptions
	now     time.Time
	rep     *PreflightReport
	r       *Run   // the scratch run (nil when the reference data did not load)
	refErr  error  // the reference data's InputError
	failed  string // the stage that failed, "" when the job ran through
	failErr error
	skipped map[string]string // stage -> why it was skipped
	period  string            // the published scratch period folder
}

// Preflight runs the ten checks of the readiness self-audit against cfg. It returns an error
// only when the audit itself could not run (a folder not writable, the lock held); everything
// wrong with the data is a warn or fail in the report.
func Preflight(ctx context.Context, cfg *Config, opt PreflightOptions) (*PreflightReport, error) {
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	opt.Log = log
	if opt.Out == "" {
		opt.Out = filepath.Join(cfg.Paths.Output, "preflight")
	}
	out, err := filepath.Abs(opt.Out)
	if err != nil {
		return nil, err
	}
	opt.Out = out
	for _, p := range []string{cfg.Paths.Staging, cfg.Paths.Inbox, cfg.Paths.Reference, cfg.Paths.Posted} {
		if within(out, p) {
			return nil, Inputf("", 0, 0, "preflight --out %s: must not be inside paths.staging, inbox, reference or posted", out)
		}
	}
	if rel, err := filepath.Rel(cfg.Paths.Output, out); err == nil && publishedPeriodRE.MatchString(strings.Split(filepath.ToSlash(rel), "/")[0]) {
		return nil, Inputf("", 0, 0, "preflight --out %s: must not be inside a published period folder", out)
	}
	scratchDir := filepath.Join(out, ".scratch")
	if err := os.RemoveAll(scratchDir); err != nil {
		return nil, fmt.Errorf("preflight scratch: %w", err)
	}
	sc := *cfg
	sc.Paths.Staging = filepath.Join(scratchDir, "staging")
	sc.Paths.Output = filepath.Join(scratchDir, "output")
	sc.DuckDB.TempDirectory = filepath.Join(scratchDir, "tmp")
	pr := &preflightRun{cfg: cfg, scratch: &sc, opt: opt, now: now, skipped: map[string]string{}}
	pr.rep = &PreflightReport{Config: cfg.File, AsOf: now.UTC()}
	for i, n := range PreflightStepNames {
		pr.rep.Steps = append(pr.rep.Steps, PreflightStep{No: i + 1, Name: n, Status: PreflightPass})
	}
	defer os.RemoveAll(scratchDir)

	files, size, err := seedScratchStaging(ctx, cfg, sc.Paths.Staging, opt.Wait)
	if err != nil {
		return nil, err
	}
	pr.rep.Scratch = fmt.Sprintf("the nightly job ran on a scratch copy of staging (%d files, %s) in the report folder's .scratch; "+
		"the real staging, published outputs, runs.csv and invoice-number book were only read",
		files, byteSize(size))

	if err := pr.runJob(ctx); err != nil {
		return nil, err
	}
	if pr.r != nil {
		defer pr.r.Close()
	}
	pr.rep.Period = pr.period
	checks := []func(context.Context) error{
		pr.checkEntities, pr.checkCatalog, pr.checkUsage, pr.checkRating, pr.checkTax,
		pr.checkLineFormat, pr.checkExports, pr.checkErrorQueue, pr.checkReconciliation, pr.checkMonitoring,
	}
	for i, c := range checks {
		t0 := time.Now()
		err := c(ctx)
		log.Info("preflight check", "step", i+1, "seconds", time.Since(t0).Round(time.Millisecond).Seconds())
		if err != nil {
			return nil, fmt.Errorf("preflight step %d (%s): %w", i+1, PreflightStepNames[i], err)
		}
	}
	if err := pr.keepDryRun(); err != nil {
		return nil, err
	}
	return pr.rep, nil
}

// publishedPeriodRE matches the folders of paths.output that hold published periods
// (YYYY-MM and YYYY-MM.versions).
var publishedPeriodRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}($|\.)`)

// within reports whether path is dir or lies under it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// seedScratchStaging copies the real staging's ledger and invoice book and links (or copies) its
// Parquet files into dst. The lock file and DuckDB's temp folder are not copied. It returns the
// number of files and their total size, and checks every copy has its original's size.
func seedScratchStaging(ctx context.Context, cfg *Config, dst string, wait bool) (int, int64, error) {
	src := cfg.Paths.Staging
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return 0, 0, os.MkdirAll(dst, 0o755)
	}
	if _, err := os.Stat(filepath.Join(src, "cdrbill.lock")); err == nil {
		unlock, err := Lock(ctx, cfg, wait)
		if err != nil {
			return 0, 0, err
		}
		defer unlock()
	}
	ledger, err := ReadLedger(src)
	if err != nil {
		return 0, 0, err
	}
	inLedger := map[string]bool{}
	for _, e := range ledger {
		inLedger[e.SHA256] = true
	}
	tmp := filepath.Clean(cfg.DuckDB.TempDirectory)
	var files int
	var size int64
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && filepath.Clean(path) == tmp {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		name := d.Name()
		if !d.Type().IsRegular() || name == "cdrbill.lock" || strings.HasSuffix(name, ".lock") || strings.HasSuffix(name, ".tmp") {
			return nil
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		if sha, ok := strings.CutSuffix(name, ".parquet"); ok {
			if !inLedger[sha] {
				return nil // a leftover of an interrupted run: never read
			}
			err = os.Link(path, target)
		} else {
			err = errors.New("copy")
		}
		if err != nil {
			if err := pfCopyFile(path, target); err != nil {
				return err
			}
		}
		got, err := os.Stat(target)
		if err != nil {
			return err
		}
		if got.Size() != st.Size() {
			return fmt.Errorf("preflight scratch: %s has %d bytes, its copy %d", path, st.Size(), got.Size())
		}
		files++
		size += st.Size()
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("seed scratch staging from %s: %w", src, err)
	}
	return files, size, nil
}

func pfCopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// preflightStageStep is the checklist step a failing stage belongs to.
var preflightStageStep = map[string]int{
	"ingest": 3, "staging": 3, "rate": 4, "summarize": 2, "tax": 5, "export": 7,
	"reconcile": 9, "disputes": 10, "manifest": 7, "publish": 7,
}

// refFileStep is the checklist step a reference file belongs to.
var refFileStep = map[string]int{
	"customers.csv": 1, "products.csv": 2, "plans.csv": 4, "rates.csv": 4, "time_bands.csv": 4, "tax_rates.csv": 5,
}

// runJob runs the nightly job's stages on the scratch copy. Bad reference data and failing
// stages are recorded for the checks, not returned.
func (pr *preflightRun) runJob(ctx context.Context) error {
	sc := pr.scratch
	period := pr.opt.Period
	provisional := period
	if provisional.Month == "" {
		provisional = DefaultPeriod(pr.now, sc.Location)
	}
	pr.period = provisional.Month
	stages := NightlyStages(sc)
	r, err := NewRun(ctx, sc, provisional, pr.opt.Log)
	if IsInputError(err) {
		// The reference data does not load: ingest and stage only, so step 3 still sees the files.
		pr.refErr = err
		db, err := OpenDB(ctx, sc.DuckDB)
		if err != nil {
			return err
		}
		r = &Run{Cfg: sc, Period: provisional, DB: db, Log: pr.opt.Log, ID: newRunID()}
		if err := r.SetVariables(ctx); err != nil {
			db.Close()
			return err
		}
		stages = stages[:2]
	} else if err != nil {
		return err
	}
	pr.r = r
	r.Started = pr.now.UTC()
	for i, s := range stages {
		if err := ctx.Err(); err != nil {
			return err
		}
		if i == 1 && period.Month == "" { // after ingest: the latest staged month
			r.Period, _ = ParsePeriod(latestStagedPeriod(sc.Paths.Staging, provisional))
			if err := r.SetVariables(ctx); err != nil {
				return err
			}
		}
		if i == 1 {
			pr.period = r.Period.Month
			r.WorkDir = filepath.Join(sc.Paths.Output, ".work-"+r.ID, r.Period.Month)
			if err := os.MkdirAll(r.WorkDir, 0o755); err != nil {
				return fmt.Errorf("work folder: %w", err)
			}
		}
		t0 := time.Now()
		err := s.Run(ctx, r)
		pr.opt.Log.Info("preflight stage", "stage", s.String(), "seconds", time.Since(t0).Round(time.Millisecond).Seconds())
		if errors.Is(err, ErrSkip) {
			pr.skipped[s.String()] = err.Error()
			continue
		}
		if err != nil {
			pr.failed, pr.failErr = s.String(), err
			pr.opt.Log.Warn("preflight: stage failed", "stage", s.String(), "error", err.Error())
			return nil
		}
	}
	return nil
}

// latestStagedPeriod is the month of the latest usage date in a staging ledger, or def.
func latestStagedPeriod(staging string, def Period) string {
	ledger, err := ReadLedger(staging)
	if err != nil {
		return def.Month
	}
	last := ""
	for _, e := range ledger {
		if e.LastUsageDate > last {
			last = e.LastUsageDate
		}
	}
	if len(last) < 7 {
		return def.Month
	}
	return last[:7]
}

// ready says whether a check can use the scratch job's results up to the given stage; when it
// cannot, it marks the step and returns false.
func (pr *preflightRun) ready(n int, stage string) bool {
	st := pr.rep.step(n)
	order := []string{"ingest", "staging", "rate", "summarize", "tax", "export", "reconcile", "disputes", "manifest", "publish"}
	idx := func(s string) int {
		for i, o := range order {
			if o == s {
				return i
			}
		}
		return len(order)
	}
	if pr.refErr != nil && idx(stage) > idx("staging") {
		var ie *InputError
		errors.As(pr.refErr, &ie)
		file := filepath.Base(ie.File)
		if own, ok := refFileStep[file]; ok && own == n {
			st.add("reference data refused: %s", pr.relErr(pr.refErr))
			st.raise(PreflightFail, fmt.Sprintf("Fix %s at the line and column named; the nightly job refuses to start (exit 2) until it loads.", file))
			return false
		}
		st.add("not checked: the reference data did not load (%s: see step %d)", file, refFileStep[file])
		st.raise(PreflightWarn, "Rerun the preflight once the reference data loads.")
		return false
	}
	if pr.failed == "" {
		return true
	}
	if idx(stage) < idx(pr.failed) {
		return true
	}
	if preflightStageStep[pr.failed] == n {
		st.add("the %s stage failed: %s", pr.failed, pr.relErr(pr.failErr))
		st.raise(PreflightFail, "Fix the input named in the message; the nightly job fails the same way.")
		return false
	}
	st.add("not checked: the %s stage failed (see step %d)", pr.failed, preflightStageStep[pr.failed])
	st.raise(PreflightWarn, "Rerun the preflight once the job runs through.")
	return false
}

// relErr is an error message with the config folder's and scratch paths shortened.
func (pr *preflightRun) relErr(err error) string {
	s := err.Error()
	s = strings.ReplaceAll(s, pr.scratch.Paths.Staging+string(filepath.Separator), "staging/")
	s = strings.ReplaceAll(s, pr.scratch.Paths.Output+string(filepath.Separator), "output/")
	s = strings.ReplaceAll(s, pr.cfg.Dir+string(filepath.Separator), "")
	return s
}

// rel is a path relative to the config folder.
func (pr *preflightRun) rel(path string) string {
	if r, err := filepath.Rel(pr.cfg.Dir, path); err == nil && !strings.HasPrefix(r, "..") {
		return filepath.ToSlash(r)
	}
	return filepath.ToSlash(path)
}

// filesDir is the scratch period folder with the job's files: the published one, or the work
// folder when a stage after the export failed ("" when the export did not run).
func (pr *preflightRun) filesDir() string {
	if pr.r == nil {
		return ""
	}
	if pr.r.Published != "" {
		return pr.r.Published
	}
	if _, err := os.Stat(filepath.Join(pr.r.WorkDir, "connectwise_invoices.csv")); err == nil {
		return pr.r.WorkDir
	}
	return ""
}

// keepDryRun moves the scratch period's files to DIR/dry-run/YYYY-MM.
func (pr *preflightRun) keepDryRun() error {
	dir := pr.filesDir()
	target := filepath.Join(pr.opt.Out, "dry-run", pr.period)
	if err := os.RemoveAll(target); err != nil {
		return err
	}
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	return os.Rename(dir, target)
}

// WriteFiles writes DIR/preflight.csv and DIR/preflight.md.
func (p *PreflightReport) WriteFiles(dir string) error {
	f, err := CreateCSV(filepath.Join(dir, "preflight.csv"), PreflightColumns)
	if err != nil {
		return err
	}
	for _, s := range p.Steps {
		if err := f.Write([]string{fmt.Sprint(s.No), s.Name, s.Status, strings.Join(s.Evidence, "\n"), s.Remedy}); err != nil {
			f.Abort()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	var b strings.Builder
	p.WriteMarkdown(&b)
	return writeFileAtomic(filepath.Join(dir, "preflight.md"), []byte(b.String()))
}

func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// summaryLine is "7 pass, 2 warn, 1 fail".
func (p *PreflightReport) summaryLine() string {
	pass, warn, fail := p.Counts()
	return fmt.Sprintf("%d pass, %d warn, %d fail", pass, warn, fail)
}

// WriteText prints the checklist for a terminal.
func (p *PreflightReport) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "cdrbill preflight: %s, period %s, as of %s\n\n", filepath.Base(p.Config), p.Period, p.AsOf.Format(time.RFC3339))
	for _, s := range p.Steps {
		fmt.Fprintf(w, "[%s] %2d %s\n", strings.ToUpper(s.Status), s.No, s.Name)
		for _, e := range s.Evidence {
			fmt.Fprintf(w, "         %s\n", e)
		}
		if s.Remedy != "" && s.Status != PreflightPass {
			fmt.Fprintf(w, "         remedy: %s\n", s.Remedy)
		}
	}
	_, err := fmt.Fprintf(w, "\n%s\n", p.summaryLine())
	return err
}

// WriteMarkdown writes the one-page report for a change ticket.
func (p *PreflightReport) WriteMarkdown(w io.Writer) {
	verdict := "READY: every check passed."
	if !p.OK() {
		verdict = "NOT READY: fix the steps marked fail, review those marked warn, then rerun the preflight."
	}
	fmt.Fprintf(w, "# cdrbill preflight: %s\n\n", p.Period)
	fmt.Fprintf(w, "- Config: `%s`\n- Period audited: %s\n- As of: %s\n- Result: **%s** (%s)\n- Method: %s.\n\n",
		filepath.Base(p.Config), p.Period, p.AsOf.Format(time.RFC3339), verdict, p.summaryLine(), p.Scratch)
	fmt.Fprintf(w, "| # | check | status |\n|---|---|---|\n")
	for _, s := range p.Steps {
		fmt.Fprintf(w, "| %d | %s | %s |\n", s.No, s.Name, mdStatus(s.Status))
	}
	fmt.Fprintln(w)
	for _, s := range p.Steps {
		fmt.Fprintf(w, "## %d. %s: %s\n\n", s.No, s.Name, s.Status)
		for _, e := range s.Evidence {
			if sub, ok := strings.CutPrefix(e, "  "); ok {
				fmt.Fprintf(w, "  - %s\n", mdEscape(sub))
			} else {
				fmt.Fprintf(w, "- %s\n", mdEscape(e))
			}
		}
		if s.Remedy != "" && s.Status != PreflightPass {
			fmt.Fprintf(w, "\n**Remedy:** %s\n", mdEscape(s.Remedy))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Reviewed by (billing admin): ..............................   Date: ..............\n")
}

func mdStatus(s string) string {
	switch s {
	case PreflightPass:
		return "pass"
	case PreflightWarn:
		return "**warn**"
	}
	return "**FAIL**"
}

// mdEscape keeps evidence from turning into markup.
func mdEscape(s string) string {
	r := strings.NewReplacer("|", `\|`, "*", `\*`, "<", "&lt;", ">", "&gt;", "`", "'")
	return r.Replace(s)
}

// sortedStrings returns the map's keys sorted.
func sortedStrings(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
