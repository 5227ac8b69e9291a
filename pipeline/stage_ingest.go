package pipeline

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cdrbill/pipeline/ingest"
)

// IngestStage reads every new file of every configured source into write-once Parquet staging
// (see staging.go for the layout). A file is new when the SHA-256 of its content is not in the
// ledger; the inbox is only read, never modified. Every non-blank data row of a file ends in
// exactly one of: staged, rejected, duplicate, not billed (rows_read = rows_staged +
// rows_rejected + rows_duplicate + rows_not_billed, per file and in total). A file that cannot
// be read at all is left out of the ledger (so the next run tries again), listed in
// ingest_files as unreadable and flagged for review.
type IngestStage struct{}

func (IngestStage) String() string { return "ingest" }

// unreadable marks an error that makes one input file unreadable (the run goes on); any other
// error (staging not writable, database) fails the stage.
type unreadable struct{ err error }

func (u *unreadable) Error() string { return u.err.Error() }
func (u *unreadable) Unwrap() error { return u.err }

func (IngestStage) Run(ctx context.Context, r *Run) error {
	if err := ensureIngestFiles(ctx, r); err != nil {
		return err
	}
	staging := r.Cfg.Paths.Staging
	if err := os.MkdirAll(staging, 0o755); err != nil {
		return fmt.Errorf("staging: %w", err)
	}
	ledger, err := ReadLedger(staging)
	if err != nil {
		return err
	}
	idx, err := newDedupIndex(r, ledger)
	if err != nil {
		return err
	}
	var rejected, unreadableFiles int64
	for i := range r.Cfg.Sources {
		src := &r.Cfg.Sources[i]
		parser, ok := ingest.Lookup(src.Format)
		if !ok {
			return Inputf(r.Cfg.File, 0, 0, "source %s: unknown format %q", src.Name, src.Format)
		}
		files, err := sourceFiles(src.Path)
		if errors.Is(err, fs.ErrNotExist) {
			r.Log.Warn("source folder missing", "source", src.Name, "path", src.Path)
			r.NeedsReview("source_folder_missing", 1)
			continue
		}
		if err != nil {
			return fmt.Errorf("source %s: %w", src.Name, err)
		}
		for _, path := range files {
			if err := ctx.Err(); err != nil {
				return err
			}
			rel := relFile(r.Cfg.Paths.Inbox, src, path)
			res, err := ingestOne(ctx, r, src, parser, path, rel, idx)
			var u *unreadable
			switch {
			case errors.As(err, &u):
				unreadableFiles++
				r.Log.Warn("unreadable file left in the inbox", "source", src.Name, "file", rel, "error", u.err.Error())
				if err := insertIngestFile(ctx, r, res, "unreadable", u.err.Error()); err != nil {
					return err
				}
				continue
			case err != nil:
				return fmt.Errorf("ingest %s: %w", rel, err)
			case res == nil: // already in the ledger
				r.Count("files_already_ingested", 1)
				continue
			}
			r.Count("files_ingested", 1)
			r.Count("rows_read", res.RowsRead)
			r.Count("rows_staged", res.RowsStaged)
			r.Count("rows_rejected", res.RowsRejected)
			r.Count("rows_duplicate", res.RowsDuplicate)
			r.Count("rows_not_billed", res.RowsNotBilled)
			rejected += res.RowsRejected
			r.Log.Info("ingested", "source", src.Name, "file", rel, "read", res.RowsRead, "staged", res.RowsStaged,
				"rejected", res.RowsRejected, "duplicate", res.RowsDuplicate, "not_billed", res.RowsNotBilled)
			if err := insertIngestFile(ctx, r, res, "ingested", ""); err != nil {
				return err
			}
		}
	}
	r.Count("files_unreadable", unreadableFiles)
	r.NeedsReview("unreadable_file", unreadableFiles)
	r.Log.Debug("duplicate index", "budget_calls", idx.budget, "held_calls", idx.len(), "day_loads", idx.loads)
	// The duplicate index (between files up to half of go_memory_limit, dedupBudget) and the Parquet writers'
	// buffers are garbage now; hand the memory back to the system before DuckDB's
	// stages grow, instead of holding it (RSS) for the rest of the run.
	idx = nil
	debug.FreeOSMemory()
	return nil
}

func insertIngestFile(ctx context.Context, r *Run, e *LedgerEntry, status, detail string) error {
	_, err := r.DB.ExecContext(ctx, `INSERT INTO ingest_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.SHA256, e.Source, e.File, status, e.RowsRead, e.RowsStaged, e.RowsRejected, e.RowsDuplicate, e.RowsNotBilled, detail)
	if err != nil {
		return fmt.Errorf("ingest_files: %w", err)
	}
	return nil
}

// sourceFiles lists the files under a source folder, sorted, skipping hidden files and folders
// and names that mark a transfer in progress (.tmp, .part, .partial, .crdownload, ~).
func sourceFiles(root string) ([]string, error) {
	if _, err := os.Stat(root); err != nil {
		return nil, err
	}
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if path != root && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() && d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		low := strings.ToLower(name)
		for _, sfx := range []string{".tmp", ".part", ".partial", ".crdownload", "~"} {
			if strings.HasSuffix(low, sfx) {
				return nil
			}
		}
		out = append(out, path)
		return nil
	})
	return out, err
}

// relFile is a file's name in staging: relative to the inbox, / separated; for a source folder
// outside the inbox, the source name then the path relative to the source folder.
func relFile(inbox string, src *SourceConfig, path string) string {
	if rel, err := filepath.Rel(inbox, path); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	if rel, err := filepath.Rel(src.Path, path); err == nil {
		return src.Name + "/" + filepath.ToSlash(rel)
	}
	return filepath.ToSlash(path)
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeErr marks an error of ours (staging writes) coming back through a parser's callbacks.
type writeErr struct{ err error }

func (w *writeErr) Error() string { return w.err.Error() }
func (w *writeErr) Unwrap() error { return w.err }

// fileIngest is one file being staged.
type fileIngest struct {
	r        *Run
	src      *SourceConfig
	entry    LedgerEntry
	fileRef  int32
	billing  *time.Location
	norm     *ingest.Normalizer
	idx      *dedupIndex
	ctx      context.Context
	aw       *pqWriter // encodes and writes the Parquet files (its own goroutine)
	cdrs     map[int32]*pqFile[cdrRow]
	cdrFree  chan []cdrRow // batches of cdrs and not_billed files, for reuse
	dups     *pqFile[dupRow]
	rejects  *pqFile[rejectRow]
	notBill  *pqFile[cdrRow]
	minDay   int32
	maxDay   int32
	haveDays bool
	idBuf    []byte
}

var (
	normalizersMu sync.Mutex
	normalizers   = map[string]*ingest.Normalizer{}
)

// normalizerFor shares one number normaliser (and its cache) per default country.
func normalizerFor(country string) *ingest.Normalizer {
	normalizersMu.Lock()
	defer normalizersMu.Unlock()
	n, ok := normalizers[country]
	if !ok {
		n = ingest.NewNormalizer(country)
		normalizers[country] = n
	}
	return n
}

// ingestOne stages one file. It returns nil, nil when the file is already in the ledger.
func ingestOne(ctx context.Context, r *Run, src *SourceConfig, parser ingest.Parser, path, rel string, idx *dedupIndex) (*LedgerEntry, error) {
	entry := &LedgerEntry{Source: src.Name, File: rel}
	sha, err := hashFile(path)
	if err != nil {
		return entry, &unreadable{err}
	}
	entry.SHA256 = sha
	if idx.inLedger[sha] {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return entry, &unreadable{err}
	}
	defer f.Close()
	billing := r.Cfg.Location
	if billing == nil {
		billing = time.UTC
	}
	loc := src.Location
	if loc == nil {
		loc = billing
	}
	fi := &fileIngest{r: r, src: src, entry: *entry, billing: billing, norm: normalizerFor(src.Country), idx: idx, ctx: ctx,
		cdrs: map[int32]*pqFile[cdrRow]{}, aw: newPQWriter(), cdrFree: newBatchFree[cdrRow]()}
	defer fi.aw.stop()
	fi.fileRef = idx.ref(sha, rel)
	idx.startFile()
	// After the file, committed or not (abort forgot what it added), trim the index to its budget.
	defer idx.trim(false)
	h := sha256.New()
	tee := io.TeeReader(f, h)
	opt := ingest.Options{Source: src.Name, Location: loc, Country: src.Country, Account: src.Account}
	perr := parser.Parse(tee, opt, fi.emit, fi.reject)
	if perr == nil {
		_, perr = io.Copy(h, f) // whatever the parser left unread, for the checksum
	}
	if perr == nil && hex.EncodeToString(h.Sum(nil)) != sha {
		perr = &unreadable{errors.New("file changed while it was read (still being written?); will retry next run")}
	}
	if perr != nil {
		fi.abort()
		var we *writeErr
		if errors.As(perr, &we) {
			return entry, we.err
		}
		var u *unreadable
		if errors.As(perr, &u) {
			return entry, u
		}
		return entry, &unreadable{fmt.Errorf("%s: %w", src.Format, perr)}
	}
	e := fi.entry
	if e.RowsRead != e.RowsStaged+e.RowsRejected+e.RowsDuplicate+e.RowsNotBilled {
		fi.abort()
		return entry, fmt.Errorf("row accounting broken for %s: read %d != staged %d + rejected %d + duplicate %d + not billed %d",
			rel, e.RowsRead, e.RowsStaged, e.RowsRejected, e.RowsDuplicate, e.RowsNotBilled)
	}
	if err := fi.commit(); err != nil {
		return entry, err
	}
	e.SHA256 = sha
	e.IngestedAt = time.Now().UTC()
	e.RunID = r.ID
	if fi.haveDays {
		e.FirstUsageDate = dayString(fi.minDay)
		e.LastUsageDate = dayString(fi.maxDay)
	}
	crashPoint("ingest-ledger")
	if err := appendLedger(r.Cfg.Paths.Staging, e); err != nil {
		fi.forgetDays() // its staged files are not in the ledger: nobody reads them
		return entry, err
	}
	idx.committed(sha)
	return &e, nil
}

func (fi *fileIngest) fail(err error) error { return &writeErr{err} }

func (fi *fileIngest) emit(rec ingest.Record) error {
	fi.entry.RowsRead++
	origin, dest := fi.norm.Normalize(rec.Origin), fi.norm.Normalize(rec.Destination)
	day := civilDay(rec.Start, fi.billing)
	if !fi.haveDays || day < fi.minDay {
		fi.minDay = day
	}
	if !fi.haveDays || day > fi.maxDay {
		fi.maxDay = day
	}
	fi.haveDays = true
	row := cdrRow{Source: fi.src.Name, Account: rec.Account, Direction: rec.Direction, Origin: origin, Destination: dest,
		OriginRaw: rec.Origin, DestinationRaw: rec.Destination, StartUTC: rec.Start.UnixMicro(), UsageDate: day,
		UsageType: rec.UsageType, Duration: rec.Duration, Bytes: rec.Bytes, SourceFile: fi.entry.File,
		SourceLine: rec.Line, FileSHA256: fi.entry.SHA256, CallID: rec.CallID}
	id := fi.cdrID(rec, origin, dest)
	// row.CDRID (the id in hex) is filled in by the writer's goroutine (pqFile.writeID)
	// a call already staged is a duplicate, billable or not (a FreeSWITCH B leg of a staged A leg)
	ref, dup, err := fi.idx.lookup(fi.ctx, day, id, rec.Key != "")
	if err != nil {
		return fi.fail(err)
	}
	if dup {
		fi.entry.RowsDuplicate++
		if fi.dups == nil {
			fi.dups = createAsyncPQ[dupRow](fi.ctx, fi.aw, nil, setDupID, filepath.Join(fi.r.Cfg.Paths.Staging, dupsDir, fi.entry.SHA256+".parquet"))
		}
		of := fi.idx.files[ref.file()]
		d := dupRow{Source: row.Source, SourceFile: row.SourceFile, SourceLine: row.SourceLine,
			FileSHA256: row.FileSHA256, UsageDate: day, DupOfFile: of.file, DupOfLine: ref.line(), DupOfSHA256: of.sha,
			StartUTC: row.StartUTC, Account: row.Account, Destination: row.Destination, DurationOrLen: row.Duration}
		if err := fi.dups.writeID(d, id); err != nil {
			return fi.fail(err)
		}
		return nil
	}
	if rec.NotBilled == "" && rec.Direction != "outbound" && rec.Direction != "inbound" {
		rec.NotBilled = "no direction"
	}
	if rec.NotBilled != "" {
		fi.entry.RowsNotBilled++
		row.NotBilled = rec.NotBilled
		if fi.notBill == nil {
			fi.notBill = createAsyncPQ[cdrRow](fi.ctx, fi.aw, fi.cdrFree, setCDRID, filepath.Join(fi.r.Cfg.Paths.Staging, notBilledDir, fi.entry.SHA256+".parquet"))
		}
		if err := fi.notBill.writeID(row, id); err != nil {
			return fi.fail(err)
		}
		return nil
	}
	ref, err = newDupRef(fi.fileRef, rec.Line)
	if err != nil {
		return fi.fail(err)
	}
	fi.idx.add(day, id, ref)
	w := fi.cdrs[day]
	if w == nil {
		w = createAsyncPQ[cdrRow](fi.ctx, fi.aw, fi.cdrFree, setCDRID, filepath.Join(fi.r.Cfg.Paths.Staging, cdrsDir, partitionPfx+dayString(day), fi.entry.SHA256+".parquet"))
		fi.cdrs[day] = w
	}
	fi.entry.RowsStaged++
	if err := w.writeID(row, id); err != nil {
		return fi.fail(err)
	}
	return nil
}

func (fi *fileIngest) reject(rj ingest.Reject) error {
	fi.entry.RowsRead++
	fi.entry.RowsRejected++
	if fi.rejects == nil {
		fi.rejects = createAsyncPQ[rejectRow](fi.ctx, fi.aw, nil, nil, filepath.Join(fi.r.Cfg.Paths.Staging, rejectsDir, fi.entry.SHA256+".parquet"))
	}
	if err := fi.rejects.write(rejectRow{Source: fi.src.Name, SourceFile: fi.entry.File, SourceLine: rj.Line,
		ColumnName: rj.Column, Reason: rj.Reason, Raw: rj.Raw, FileSHA256: fi.entry.SHA256}); err != nil {
		return fi.fail(err)
	}
	return nil
}

// cdrID is the call's identity: SHA-256 (first 16 bytes) of account, origin and destination
// (normalised), start (UTC, whole seconds), duration, usage type and bytes; or of the format's
// call key when it gives one (FreeSWITCH). The file is not part of it, so the same call in two
// files, or a file ingested twice, is one call.
func (fi *fileIngest) cdrID(rec ingest.Record, origin, dest string) [16]byte {
	b := fi.idBuf[:0]
	if rec.Key != "" {
		b = append(b, "key\x1f"...)
		b = append(b, rec.Key...)
	} else {
		b = append(b, rec.Account...)
		b = append(b, 0x1f)
		b = append(b, origin...)
		b = append(b, 0x1f)
		b = append(b, dest...)
		b = append(b, 0x1f)
		b = strconv.AppendInt(b, rec.Start.Unix(), 10)
		b = append(b, 0x1f)
		b = strconv.AppendInt(b, rec.Duration, 10)
		b = append(b, 0x1f)
		b = append(b, rec.UsageType...)
		b = append(b, 0x1f)
		b = strconv.AppendInt(b, rec.Bytes, 10)
	}
	fi.idBuf = b
	sum := sha256.Sum256(b)
	var id [16]byte
	copy(id[:], sum[:16])
	return id
}

func (fi *fileIngest) all(fn func(pqHandle) error) error {
	var list []pqHandle
	for _, d := range sortedDays(fi.cdrs) {
		list = append(list, fi.cdrs[d])
	}
	if fi.dups != nil {
		list = append(list, fi.dups)
	}
	if fi.rejects != nil {
		list = append(list, fi.rejects)
	}
	if fi.notBill != nil {
		list = append(list, fi.notBill)
	}
	for _, p := range list {
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

type pqHandle interface {
	finishAsync() error
	commit() error
	abort()
}

// commit finishes every output (on the writer's goroutine, after the batches queued before) and
// renames them into place. An error of a batch comes back as it would from emit; an error of
// finishing or renaming as "write staging: ...".
func (fi *fileIngest) commit() error {
	err := fi.all(func(p pqHandle) error {
		return p.finishAsync()
	})
	if werr := fi.aw.wait(); err == nil {
		err = werr
	}
	if err == nil {
		err = fi.all(func(p pqHandle) error {
			if err := p.commit(); err != nil {
				return fmt.Errorf("write staging: %w", err)
			}
			return nil
		})
	}
	if err != nil {
		fi.abort()
		return err
	}
	return nil
}

// abort stops the writer, drops the file's temporary outputs and makes the index forget the
// calls it added: it drops the days the file staged calls on (loaded again, from the committed
// files only, when met).
func (fi *fileIngest) abort() {
	fi.aw.stop()
	fi.all(func(p pqHandle) error {
		p.abort()
		return nil
	})
	fi.forgetDays()
}

// forgetDays drops from the index the days the file staged calls on, so that its calls are
// forgotten (the days are loaded again, from the committed files only, when met).
func (fi *fileIngest) forgetDays() {
	for day := range fi.cdrs {
		fi.idx.drop(day)
	}
}

func sortedDays(m map[int32]*pqFile[cdrRow]) []int32 {
	out := make([]int32, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// civilDay is the date of t in loc, as days since 1970-01-01.
func civilDay(t time.Time, loc *time.Location) int32 {
	y, m, d := t.In(loc).Date()
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func dayString(d int32) string {
	return time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)
}

// dedupIndex knows the staged calls (cdr_id) of some usage dates, each date whole: a date's
// staged calls are loaded from its partition the first time a file meets that date (a duplicate
// has the same start, hence the same usage date; keyed calls are also looked for on the
// neighbouring dates, see lookup), then the run's new calls of that date are added. The index is bounded: past budget calls it drops whole dates, least recently met first,
// between files (trim, after a file is committed) or when a file meets a date it must load (then
// sparing the dates that file met: its new calls are not committed yet). A dropped date is loaded
// again, from the committed files of the ledger (those of this run included), when a later file
// meets it; so the answer never depends on the budget, only the loading work does.
type dedupIndex struct {
	r        *Run
	inLedger map[string]bool
	order    map[string]int // sha256 -> position in the ledger (this run's files appended)
	days     map[int32]*dedupDay
	n        int64     // calls held, all dates
	budget   int64     // most calls held between files (a date a file needs is loaded regardless)
	file     uint64    // files started (startFile)
	loads    int       // days loaded (again, when dropped before)
	last     *dedupDay // the date of the previous lookup, or nil
	lastDay  int32
	files    []fileName
	fileIdx  map[string]int32 // by sha256
}

// dedupDay is one usage date's staged calls.
type dedupDay struct {
	ids  map[[16]byte]dupRef
	used uint64 // dedupIndex.file when a file last met the date
}

// dupRef is where a staged call is: the file (index into dedupIndex.files) in the top 24 bits,
// the line in the low 40, so that an index entry is 24 bytes (16-byte id + 8) instead of 32: at
// 10 M calls that is about 100 MB less.
type dupRef uint64

const (
	dupRefLineBits = 40
	dupRefMaxFile  = 1<<(64-dupRefLineBits) - 1
	dupRefMaxLine  = 1<<dupRefLineBits - 1
)

func newDupRef(file int32, line int64) (dupRef, error) {
	if file < 0 || int64(file) > dupRefMaxFile || line < 0 || line > dupRefMaxLine {
		return 0, fmt.Errorf("duplicate index: file #%d line %d out of range (at most %d files and %d lines per file)",
			file, line, dupRefMaxFile+1, int64(dupRefMaxLine))
	}
	return dupRef(uint64(file)<<dupRefLineBits | uint64(line)), nil
}

func (d dupRef) file() int32 { return int32(uint64(d) >> dupRefLineBits) }
func (d dupRef) line() int64 { return int64(uint64(d) & dupRefMaxLine) }

type fileName struct{ sha, file string }

// Budget of the duplicate index: dedupShare of the Go memory limit (duckdb.go_memory_limit, or
// GOMEMLIMIT when set, as ApplyLimits applies it), at dedupEntryBytes per call. A Go map of
// [16]byte to uint64 measures 28 to 56 bytes per entry (Go 1.26 swiss tables: 24-byte slots,
// between 7/16 and 7/8 full as the table doubles); the worst case is taken. The rest of the Go
// heap is the parsers, the Parquet writers' batches and the file being ingested's new calls.
const (
	dedupShare      = 0.5
	dedupEntryBytes = 56
)

// dedupBudget is the number of calls the index may hold between files (math.MaxInt64 when the
// Go memory limit is off).
func dedupBudget(cfg *Config) (int64, error) {
	limit, _, err := goMemoryLimit(cfg)
	if err != nil {
		return 0, err
	}
	if limit <= 0 || limit == math.MaxInt64 {
		return math.MaxInt64, nil
	}
	return max(1, int64(float64(limit)*dedupShare)/dedupEntryBytes), nil
}

func newDedupIndex(r *Run, ledger []LedgerEntry) (*dedupIndex, error) {
	budget, err := dedupBudget(r.Cfg)
	if err != nil {
		return nil, err
	}
	x := &dedupIndex{r: r, inLedger: map[string]bool{}, order: map[string]int{}, days: map[int32]*dedupDay{},
		budget: budget, fileIdx: map[string]int32{}}
	for _, e := range ledger {
		x.committed(e.SHA256)
	}
	return x, nil
}

// committed records a file as in the ledger: its staged calls are loadable from now on.
func (x *dedupIndex) committed(sha string) {
	if !x.inLedger[sha] {
		x.inLedger[sha] = true
		x.order[sha] = len(x.order)
	}
}

func (x *dedupIndex) ref(sha, file string) int32 {
	if i, ok := x.fileIdx[sha]; ok {
		return i
	}
	x.files = append(x.files, fileName{sha, file})
	i := int32(len(x.files) - 1)
	x.fileIdx[sha] = i
	return i
}

// len is the number of calls the index holds.
func (x *dedupIndex) len() int64 { return x.n }

// startFile starts the lookups of a new file (the dates it meets are spared by trim until the
// next file starts).
func (x *dedupIndex) startFile() {
	x.file++
	x.last = nil
}

// add records a new staged call of day: the same file looked it up there and did not find it.
func (x *dedupIndex) add(day int32, id [16]byte, ref dupRef) {
	x.days[day].ids[id] = ref
	x.n++
}

// lookup tells whether the call id of day is staged (and where), loading the day when it is not
// held. A call with its own key (keyed: FreeSWITCH legs, whose answer times may fall on each
// side of midnight) is also looked for on the day before and after, when they are held.
func (x *dedupIndex) lookup(ctx context.Context, day int32, id [16]byte, keyed bool) (dupRef, bool, error) {
	d := x.last
	if d == nil || x.lastDay != day {
		d = x.days[day]
		if d == nil {
			x.trim(true)
			var err error
			if d, err = x.load(ctx, day); err != nil {
				return 0, false, err
			}
			x.days[day] = d
			x.n += int64(len(d.ids))
			x.loads++
		}
		d.used = x.file
		x.last, x.lastDay = d, day
	}
	if ref, ok := d.ids[id]; ok {
		return ref, true, nil
	}
	if keyed {
		for _, other := range []int32{day - 1, day + 1} {
			if o := x.days[other]; o != nil {
				if ref, ok := o.ids[id]; ok {
					return ref, true, nil
				}
			}
		}
	}
	return 0, false, nil
}

// drop forgets a day's calls (it is loaded again, from the ledger's files, when met).
func (x *dedupIndex) drop(day int32) {
	if d := x.days[day]; d != nil {
		x.n -= int64(len(d.ids))
		delete(x.days, day)
	}
	x.last = nil
}

// trim drops whole days, least recently met first (then the earliest), until the index holds at
// most budget calls. During a file (spare), the days that file met are kept: its new calls are
// only in the index until the file is committed.
func (x *dedupIndex) trim(spare bool) {
	if x.n <= x.budget {
		return
	}
	var cand []int32
	for day, d := range x.days {
		if !spare || d.used != x.file {
			cand = append(cand, day)
		}
	}
	slices.SortFunc(cand, func(a, b int32) int {
		if c := cmp.Compare(x.days[a].used, x.days[b].used); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, day := range cand {
		if x.n <= x.budget {
			break
		}
		x.drop(day)
	}
}

// load reads a day's staged calls from the committed files (those in the ledger) of its
// partition. A cdr_id is staged once; were it in two files, the one first in the ledger (then
// the lower line) is the first occurrence.
func (x *dedupIndex) load(ctx context.Context, day int32) (*dedupDay, error) {
	d := &dedupDay{ids: map[[16]byte]dupRef{}}
	dir := filepath.Join(x.r.Cfg.Paths.Staging, cdrsDir, partitionPfx+dayString(day))
	files, err := ledgerFilesIn(dir, x.inLedger)
	if err != nil {
		return nil, err // names the folder
	}
	if len(files) == 0 {
		return d, nil
	}
	rows, err := x.r.DB.QueryContext(ctx, "SELECT cdr_id, source_file, source_line, file_sha256 FROM read_parquet("+sqlList(files)+")")
	if err != nil {
		return nil, fmt.Errorf("load staged ids of %s: %w", dayString(day), err)
	}
	defer rows.Close()
	for rows.Next() {
		var idHex, file, sha string
		var line int64
		if err := rows.Scan(&idHex, &file, &line, &sha); err != nil {
			return nil, fmt.Errorf("load staged ids of %s: %w", dayString(day), err)
		}
		var id [16]byte
		if n, err := hex.Decode(id[:], []byte(idHex)); err != nil || n != 16 {
			return nil, fmt.Errorf("staged cdr_id %q in %s is not 32 hex digits", idHex, dir)
		}
		ref, err := newDupRef(x.ref(sha, file), line)
		if err != nil {
			return nil, err
		}
		if old, ok := d.ids[id]; ok && !x.before(ref, old) {
			continue
		}
		d.ids[id] = ref
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load staged ids of %s: %w", dayString(day), err)
	}
	return d, nil
}

// before tells whether a comes before b: its file earlier in the ledger, or the same file and a
// lower line.
func (x *dedupIndex) before(a, b dupRef) bool {
	oa, ob := x.order[x.files[a.file()].sha], x.order[x.files[b.file()].sha]
	if oa != ob {
		return oa < ob
	}
	return a.line() < b.line()
}

// StagingStage makes the period's staged data visible to SQL (OpenStaging) so the stages after
// ingest can read staged_cdrs and ingest_rejects. Run it after IngestStage.
type StagingStage struct{}

func (StagingStage) String() string { return "staging" }

func (StagingStage) Run(ctx context.Context, r *Run) error { return OpenStaging(ctx, r) }

// SourceSample is what a source's first file looks like once parsed (preflight step 3).
type SourceSample struct {
	Source  string
	File    string // relative to the inbox; "" when the source folder has no file
	Records []ingest.Record
	Rejects []ingest.Reject
	Err     error // the file could not be read at all
}

var errSampleFull = errors.New("sample full")

// SampleSource parses the first rows of a source's first file (sorted by path) until n rows were
// read (records and rejects together), without touching staging. It does not fail on bad data:
// a file that cannot be read is reported in Err. The error returned is for a missing folder.
func SampleSource(src *SourceConfig, inbox string, billing *time.Location, n int) (SourceSample, error) {
	s := SourceSample{Source: src.Name}
	parser, ok := ingest.Lookup(src.Format)
	if !ok {
		return s, fmt.Errorf("source %s: unknown format %q", src.Name, src.Format)
	}
	files, err := sourceFiles(src.Path)
	if err != nil {
		return s, fmt.Errorf("source %s: %w", src.Name, err)
	}
	if len(files) == 0 {
		return s, nil
	}
	s.File = relFile(inbox, src, files[0])
	f, err := os.Open(files[0])
	if err != nil {
		s.Err = err
		return s, nil
	}
	defer f.Close()
	loc := src.Location
	if loc == nil {
		loc = billing
	}
	opt := ingest.Options{Source: src.Name, Location: loc, Country: src.Country, Account: src.Account}
	count := func() error {
		if len(s.Records)+len(s.Rejects) >= n {
			return errSampleFull
		}
		return nil
	}
	err = parser.Parse(f, opt, func(r ingest.Record) error {
		s.Records = append(s.Records, r)
		return count()
	}, func(r ingest.Reject) error {
		s.Rejects = append(s.Rejects, r)
		return count()
	})
	if err != nil && !errors.Is(err, errSampleFull) {
		s.Err = err
	}
	return s, nil
}
