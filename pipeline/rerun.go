package pipeline

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// An auditor's rerun rebuilds periods from the staged Parquet into a folder of its own, with the
// inputs each period's published version was computed with:
//
//   - the reference CSVs, posted invoices and billing settings ([billing], [invoices], [tickets])
//     of the snapshot recorded when the version was published (staging/snapshots, see
//     SnapshotInputs); a period published before snapshots existed, or never published, uses the
//     current ones, with a warning;
//   - the staged files of the ledger as it was when the version was published (its first
//     ledger_rows rows), so CDR files ingested later do not change the result; AllStaged uses
//     every staged file instead;
//   - the invoice numbers of a copy of the invoice number book (a customer keeps the number it
//     was given; one that had none gets a number in the copy only).
//
// It writes DIR/YYYY-MM/ per month the range touches and nothing else: no ingest, and staging,
// the published outputs, output/runs.csv and the invoice number book are never written.
//
// A range that does not cover whole months: each month is still billed as that month (its
// period label, invoice dates and line descriptions are the month's), but only the CDRs whose
// usage_date (billing time zone) lies in the range are rated. Rejected rows have no date of their
// own and stay with their file's month (listed in full).

// RerunOptions are the rerun command's flags.
type RerunOptions struct {
	From, To  time.Time // calendar dates, inclusive
	Out       string    // DIR
	Verify    bool
	AllStaged bool
}

// RerunPeriod is the result of one month.
type RerunPeriod struct {
	Month    string
	Dir      string // DIR/YYYY-MM
	Partial  bool   // the range covers only part of the month
	Snapshot string // snapshot used; "" when the current reference data was used
	// Verified is set when --verify compared the month with a published version; Differences
	// lists what differs (empty: identical apart from manifest.json's run section).
	Verified    bool
	Published   string // the published folder compared with
	Differences []Difference
	Seconds     float64
}

// Rerun rebuilds each month of the range into opt.Out. The caller holds the data folder's lock.
func Rerun(ctx context.Context, cfg *Config, opt RerunOptions, log *slog.Logger) ([]RerunPeriod, error) {
	if opt.To.Before(opt.From) {
		return nil, Inputf("", 0, 0, "--to %s is before --from %s", opt.To.Format(time.DateOnly), opt.From.Format(time.DateOnly))
	}
	out, err := filepath.Abs(opt.Out)
	if err != nil {
		return nil, err
	}
	if err := checkRerunOut(cfg, out); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("rerun: %w", err)
	}
	// scratch folders of an earlier rerun into DIR that was killed
	for _, pat := range []string{".rerun-*", ".work-*"} {
		olds, _ := filepath.Glob(filepath.Join(out, pat))
		for _, o := range olds {
			os.RemoveAll(o)
		}
	}
	var res []RerunPeriod
	for p := PeriodOf(opt.From); !p.From.After(opt.To); p = PeriodOf(p.To.AddDate(0, 0, 1)) {
		rp, err := rerunPeriod(ctx, cfg, opt, out, p, log)
		if err != nil {
			return res, fmt.Errorf("rerun %s: %w", p.Month, err)
		}
		res = append(res, rp)
	}
	return res, nil
}

// checkRerunOut refuses an output folder that would overwrite published outputs or staging.
func checkRerunOut(cfg *Config, out string) error {
	inside := func(dir, p string) bool {
		rel, err := filepath.Rel(dir, p)
		return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
	}
	if out == cfg.Paths.Output || inside(cfg.Paths.Staging, out) || inside(cfg.Paths.Inbox, out) ||
		inside(cfg.Paths.Reference, out) || inside(cfg.Paths.Posted, out) {
		return Inputf("", 0, 0, "--out %s: must not be the output folder or lie in the staging, inbox, reference or posted folders", out)
	}
	if inside(cfg.Paths.Output, out) {
		rel, _ := filepath.Rel(cfg.Paths.Output, out)
		first := strings.Split(filepath.ToSlash(rel), "/")[0]
		if _, err := time.Parse("2006-01", strings.TrimSuffix(first, ".versions")); err == nil || strings.HasPrefix(first, ".") {
			return Inputf("", 0, 0, "--out %s: must not lie in a published period's folder", out)
		}
	}
	return nil
}

func rerunPeriod(ctx context.Context, cfg *Config, opt RerunOptions, out string, p Period, log *slog.Logger) (RerunPeriod, error) {
	t0 := time.Now()
	rp := RerunPeriod{Month: p.Month, Dir: filepath.Join(out, p.Month)}
	from, to := p.From, p.To
	if opt.From.After(from) {
		from = opt.From
	}
	if opt.To.Before(to) {
		to = opt.To
	}
	rp.Partial = !from.Equal(p.From) || !to.Equal(p.To)
	published := filepath.Join(cfg.Paths.Output, p.Month)

	scratch, err := os.MkdirTemp(out, ".rerun-"+p.Month+"-")
	if err != nil {
		return rp, err
	}
	defer os.RemoveAll(scratch)

	pcfg := *cfg
	pcfg.Paths.Output = out
	pcfg.DuckDB.TempDirectory = filepath.Join(scratch, "tmp")
	ledgerRows := -1
	v, ok, err := PublishedSnapshot(cfg.Paths.Staging, p.Month, publishedRunID(published))
	if err != nil {
		return rp, err
	}
	if ok {
		if err := useSnapshot(&pcfg, filepath.Join(cfg.Paths.Staging, snapshotsDir, v.Snapshot)); err != nil {
			return rp, err
		}
		rp.Snapshot = v.Snapshot
		ledgerRows = v.LedgerRows
	} else {
		log.Warn("no snapshot of the inputs of a published version: using the current reference data, posted invoices and billing settings",
			"period", p.Month)
	}
	if opt.AllStaged {
		ledgerRows = -1
	}
	// a staging view of our own: the ledger as it was, the staged files themselves (read only)
	pcfg.Paths.Staging = filepath.Join(scratch, "staging")
	if err := scratchStaging(cfg.Paths.Staging, pcfg.Paths.Staging, ledgerRows); err != nil {
		return rp, err
	}
	book := filepath.Join(scratch, "book")
	if err := os.MkdirAll(book, 0o755); err != nil {
		return rp, err
	}
	if err := copyFileSync(filepath.Join(cfg.Paths.Staging, InvoiceBookFile), filepath.Join(book, InvoiceBookFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rp, fmt.Errorf("copy the invoice number book: %w", err)
	}

	r, err := NewRun(ctx, &pcfg, p, log)
	if err != nil {
		return rp, err
	}
	defer r.Close()
	if err := os.MkdirAll(r.WorkDir, 0o755); err != nil {
		return rp, err
	}
	// the nightly job's build stages, with the book copy, narrowed to the range when partial
	var stages []Stage
	for _, s := range BuildStages(&pcfg) {
		if exp, ok := s.(ExportStage); ok {
			exp.BookDir = book
			s = exp
		}
		stages = append(stages, s)
		if _, ok := s.(StagingStage); ok && rp.Partial {
			stages = append(stages, rangeStage{from, to})
		}
	}
	stages = append(stages, ManifestStage{})
	if err := RunStages(ctx, r, stages); err != nil {
		return rp, err
	}
	if err := os.RemoveAll(rp.Dir); err != nil {
		return rp, err
	}
	if err := os.Rename(r.WorkDir, rp.Dir); err != nil {
		return rp, fmt.Errorf("rerun: %w", err)
	}
	if opt.Verify {
		if _, err := os.Stat(published); err != nil {
			rp.Differences = []Difference{{File: "", Change: "not_published", Row: published}}
		} else {
			rp.Verified, rp.Published = true, published
			if rp.Differences, err = VerifyPeriod(published, rp.Dir); err != nil {
				return rp, err
			}
		}
		if err := WriteDifferences(filepath.Join(out, "verify-"+p.Month+".csv"), rp.Differences); err != nil {
			return rp, err
		}
	}
	rp.Seconds = time.Since(t0).Seconds()
	return rp, nil
}

// VerifyPeriod lists every difference between a published period folder and a rerun of it:
// checksums first, then row by row for CSVs; manifest.json is compared without its run section;
// delta.csv (which describes a version, not the bill) is left out.
func VerifyPeriod(published, rerun string) ([]Difference, error) {
	d, err := CompareTrees(published, rerun)
	if err != nil {
		return nil, err
	}
	m, err := CompareManifests(filepath.Join(published, "manifest.json"), filepath.Join(rerun, "manifest.json"))
	if err != nil {
		return nil, err
	}
	return append(d, m...), nil
}

// publishedRunID is the run that made a published folder (its manifest's run.id), or "".
func publishedRunID(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return ""
	}
	var m struct {
		Run ManifestRun `json:"run"`
	}
	if json.Unmarshal(b, &m) != nil {
		return ""
	}
	return m.Run.ID
}

// useSnapshot points a config at a snapshot's reference data and posted invoices and takes its
// billing settings.
func useSnapshot(c *Config, dir string) error {
	mb, err := os.ReadFile(filepath.Join(dir, snapshotMetaName))
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", dir, err)
	}
	var meta snapshotMeta
	if err := json.Unmarshal(mb, &meta); err != nil {
		return fmt.Errorf("snapshot %s: %w", dir, err)
	}
	c.Paths.Reference = filepath.Join(dir, snapshotRefDir)
	c.Dir = filepath.Join(dir, snapshotRootDir)
	c.Paths.Posted = filepath.Join(c.Dir, filepath.FromSlash(meta.Posted))
	cf := filepath.Join(dir, snapshotConfigFile)
	b, err := os.ReadFile(cf)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var sc Config
	if _, err := toml.Decode(string(b), &sc); err != nil {
		return Inputf(cf, 0, 0, "%v", err)
	}
	sc.Defaults()
	loc, err := time.LoadLocation(sc.Billing.Timezone)
	if err != nil {
		return Inputf(cf, 0, 0, "billing.timezone: %v", err)
	}
	c.Billing, c.Invoices, c.Tickets, c.Location = sc.Billing, sc.Invoices, sc.Tickets, loc
	c.File = cf
	return nil
}

// scratchStaging makes a staging folder that shows the real one's staged files with a ledger cut
// to its first ledgerRows rows (all when ledgerRows < 0). The staged files are linked, not copied.
func scratchStaging(real, dst string, ledgerRows int) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, d := range []string{cdrsDir, rejectsDir, dupsDir, notBilledDir} {
		src := filepath.Join(real, d)
		if _, err := os.Stat(src); err != nil {
			continue
		}
		if err := os.Symlink(src, filepath.Join(dst, d)); err != nil {
			return fmt.Errorf("rerun staging: %w", err)
		}
	}
	ledger, err := ReadLedger(real)
	if err != nil {
		return err
	}
	if len(ledger) == 0 {
		return nil
	}
	if ledgerRows >= 0 && ledgerRows < len(ledger) {
		ledger = ledger[:ledgerRows]
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(ledgerHeader)
	for _, e := range ledger {
		w.Write(e.cells())
	}
	w.Flush()
	return os.WriteFile(filepath.Join(dst, ledgerName), buf.Bytes(), 0o644)
}

// rangeStage narrows staged_cdrs to the rerun's dates inside the month.
type rangeStage struct{ from, to time.Time }

func (rangeStage) String() string { return "range" }

func (s rangeStage) Run(ctx context.Context, r *Run) error {
	q := fmt.Sprintf(`ALTER VIEW staged_cdrs RENAME TO staged_cdrs_period;
		CREATE VIEW staged_cdrs AS SELECT * FROM staged_cdrs_period
		WHERE usage_date BETWEEN DATE '%s' AND DATE '%s'`, s.from.Format(time.DateOnly), s.to.Format(time.DateOnly))
	if _, err := r.DB.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("restrict staged_cdrs to the range: %w", err)
	}
	return nil
}
