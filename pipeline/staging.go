package pipeline

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/snappy"

	models "cdrbill/sql"
)

// The staging folder (paths.staging), write-once:
//
//	ledger.csv                                  one row per ingested file (appended, fsynced)
//	cdrs/usage_date=YYYY-MM-DD/<sha256>.parquet the file's staged CDRs of that usage date
//	duplicates/<sha256>.parquet                 the file's rows already staged, with the row they duplicate
//	rejects/<sha256>.parquet                    the file's rejected rows, with line, column, reason, raw
//	not_billed/<sha256>.parquet                 the file's well-formed rows that are not billable, and why
//
// <sha256> is the SHA-256 of the raw file's content. Every Parquet file is written under a
// temporary name in its folder and renamed into place; the ledger row is appended last, so a file
// is ingested exactly when its ledger row exists (Parquet files of a sha256 without a ledger row are
// leftovers of an interrupted run: never read, and overwritten when the file is ingested again).

const (
	ledgerName    = "ledger.csv"
	cdrsDir       = "cdrs"
	dupsDir       = "duplicates"
	rejectsDir    = "rejects"
	notBilledDir  = "not_billed"
	partitionPfx  = "usage_date="
	rowGroupLimit = 32 << 10
)

// cdrRow is a staged CDR as stored in Parquet (also the shape of not_billed rows, which fill
// not_billed; it is empty in cdrs/).
type cdrRow struct {
	CDRID          string `parquet:"cdr_id"`
	Source         string `parquet:"source"`
	Account        string `parquet:"account"`
	Direction      string `parquet:"direction"`
	Origin         string `parquet:"origin"`
	Destination    string `parquet:"destination"`
	OriginRaw      string `parquet:"origin_raw"`
	DestinationRaw string `parquet:"destination_raw"`
	StartUTC       int64  `parquet:"start_utc,timestamp(microsecond:local)"`
	UsageDate      int32  `parquet:"usage_date,date"`
	UsageType      string `parquet:"usage_type"`
	Duration       int64  `parquet:"duration"`
	Bytes          int64  `parquet:"bytes"`
	SourceFile     string `parquet:"source_file"`
	SourceLine     int64  `parquet:"source_line"`
	FileSHA256     string `parquet:"file_sha256"`
	CallID         string `parquet:"call_id"`
	NotBilled      string `parquet:"not_billed"`
}

// dupRow is a row whose call was already staged: where it is, and the staged row it duplicates.
type dupRow struct {
	CDRID         string `parquet:"cdr_id"`
	Source        string `parquet:"source"`
	SourceFile    string `parquet:"source_file"`
	SourceLine    int64  `parquet:"source_line"`
	FileSHA256    string `parquet:"file_sha256"`
	UsageDate     int32  `parquet:"usage_date,date"`
	DupOfFile     string `parquet:"duplicate_of_file"`
	DupOfLine     int64  `parquet:"duplicate_of_line"`
	DupOfSHA256   string `parquet:"duplicate_of_sha256"`
	StartUTC      int64  `parquet:"start_utc,timestamp(microsecond:local)"`
	Account       string `parquet:"account"`
	Destination   string `parquet:"destination"`
	DurationOrLen int64  `parquet:"duration"`
}

// rejectRow is a row that could not be read.
type rejectRow struct {
	Source     string `parquet:"source"`
	SourceFile string `parquet:"source_file"`
	SourceLine int64  `parquet:"source_line"`
	ColumnName string `parquet:"column_name"`
	Reason     string `parquet:"reason"`
	Raw        string `parquet:"raw"`
	FileSHA256 string `parquet:"file_sha256"`
}

// pqFile writes one Parquet file under a temporary name; commit renames it into place. Rows are
// collected in batches of pqBatchRows; a full batch is handed to the file's pqWriter, whose
// goroutine alone touches the Parquet writer until finish.
type pqFile[T any] struct {
	path string
	f    *os.File
	bw   *bufio.Writer
	w    *parquet.GenericWriter[T]
	buf  []T
	n    int64
	ctx  context.Context
	aw   *pqWriter
	free chan []T // batches the writer is done with, for reuse
	// ids are the cdr_ids of buf's rows (writeID), set into the rows in hex by setID when the
	// batch is encoded: the hex strings are made on the writer's goroutine, one allocation a batch.
	ids   [][16]byte
	setID func(*T, string)
}

func setCDRID(r *cdrRow, id string) { r.CDRID = id }
func setDupID(r *dupRow, id string) { r.CDRID = id }

// fillIDs sets the hex form of ids[i] into rows[i].
func fillIDs[T any](rows []T, ids [][16]byte, set func(*T, string)) {
	if set == nil {
		return
	}
	if len(ids) != len(rows) {
		panic(fmt.Sprintf("staging: %d rows with %d ids (a row written with write instead of writeID)", len(rows), len(ids)))
	}
	b := make([]byte, 32*len(ids))
	for i := range ids {
		hex.Encode(b[32*i:], ids[i][:])
	}
	all := string(b)
	for i := range rows {
		set(&rows[i], all[32*i:32*i+32])
	}
}

// pqBatchRows is the number of rows handed to parquet-go at a time.
const pqBatchRows = 1024

// createPQ creates a file finished on the calling goroutine: only the zero-row schema files
// (writeEmptyPQ); files with rows are written by a pqWriter (createAsyncPQ).
func createPQ[T any](path string) (*pqFile[T], error) {
	p := &pqFile[T]{path: path, buf: make([]T, 0, pqBatchRows)}
	if err := p.open(); err != nil {
		return nil, err
	}
	return p, nil
}

// open creates the temporary file (and its folder) and the Parquet writer.
func (p *pqFile[T]) open() error {
	dir := filepath.Dir(p.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(p.path)+".*.tmp")
	if err != nil {
		return err
	}
	p.f = f
	p.bw = bufio.NewWriterSize(f, 256<<10)
	p.w = parquet.NewGenericWriter[T](p.bw, parquet.Compression(&fastSnappy{}), parquet.MaxRowsPerRowGroup(rowGroupLimit),
		parquet.CreatedBy("cdrbill", "", ""))
	return nil
}

// createAsyncPQ is createPQ with the work done by aw's goroutine: its first job creates the
// temporary file (an error comes back as that job's error), then encodes. free is where batches
// go back for reuse, shared by files of the same row type (nil: the file's own).
func createAsyncPQ[T any](ctx context.Context, aw *pqWriter, free chan []T, setID func(*T, string), path string) *pqFile[T] {
	if free == nil {
		free = newBatchFree[T]()
	}
	p := &pqFile[T]{path: path, buf: make([]T, 0, pqBatchRows), ctx: ctx, aw: aw, free: free, setID: setID}
	if setID != nil {
		p.ids = make([][16]byte, 0, pqBatchRows)
	}
	return p
}

// opened opens the file on its first job.
func (p *pqFile[T]) opened() error {
	if p.f != nil {
		return nil
	}
	return p.open()
}

// newBatchFree is a free list of batches, large enough for every batch that can be queued.
func newBatchFree[T any]() chan []T { return make(chan []T, pqWriterQueue+2) }

// writeID writes a row whose cdr_id (left empty in row) is id.
func (p *pqFile[T]) writeID(row T, id [16]byte) error {
	p.ids = append(p.ids, id)
	return p.write(row)
}

func (p *pqFile[T]) write(row T) error {
	p.buf = append(p.buf, row)
	p.n++
	if len(p.buf) == cap(p.buf) {
		return p.sendBatch()
	}
	return nil
}

// sendBatch hands the full batch to the writer's goroutine and starts a new one.
func (p *pqFile[T]) sendBatch() error {
	batch, ids := p.buf, p.ids
	select {
	case p.buf = <-p.free:
	default:
		p.buf = make([]T, 0, pqBatchRows)
	}
	if p.setID != nil {
		p.ids = make([][16]byte, 0, pqBatchRows)
	}
	return p.aw.send(p.ctx, func() error {
		if err := runFault("batch"); err != nil {
			return err
		}
		if err := p.opened(); err != nil {
			return err
		}
		fillIDs(batch, ids, p.setID)
		_, err := p.w.Write(batch)
		clear(batch)
		select {
		case p.free <- batch[:0]:
		default:
		}
		return err
	})
}

func (p *pqFile[T]) flush() error {
	if len(p.buf) == 0 {
		return nil
	}
	fillIDs(p.buf, p.ids, p.setID)
	_, err := p.w.Write(p.buf)
	clear(p.buf)
	p.buf, p.ids = p.buf[:0], p.ids[:0]
	return err
}

// finish writes the footer and syncs the temporary file.
func (p *pqFile[T]) finish() error {
	if err := p.flush(); err != nil {
		return err
	}
	if err := p.w.Close(); err != nil {
		return err
	}
	if err := p.bw.Flush(); err != nil {
		return err
	}
	if err := p.f.Sync(); err != nil {
		return err
	}
	return p.f.Close()
}

// finishAsync queues finish (the last rows, the footer, the sync) on the writer's goroutine,
// after the file's batches; its error comes back from the writer as "write staging: ...".
func (p *pqFile[T]) finishAsync() error {
	return p.aw.send(p.ctx, func() error {
		if err := p.opened(); err != nil {
			return err
		}
		err := runFault("finish")
		if err == nil {
			err = p.finish()
		}
		if err != nil {
			return fmt.Errorf("write staging: %w", err)
		}
		return nil
	})
}

func (p *pqFile[T]) commit() error { return os.Rename(p.f.Name(), p.path) }

func (p *pqFile[T]) abort() {
	if p.f == nil {
		return // never opened
	}
	p.f.Close()
	os.Remove(p.f.Name())
}

// fastSnappy is parquet-go's SNAPPY codec with klauspost's default snappy encoder instead of its
// "better" one (which parquet-go's codec uses through klauspost/compress/snappy): the same format,
// any snappy reader decodes it, at about half the encoding CPU for slightly larger pages.
type fastSnappy struct{ snappy.Codec }

func (*fastSnappy) Encode(dst, src []byte) ([]byte, error) { return s2.EncodeSnappy(dst, src), nil }

// writeEmptyPQ writes a Parquet file with T's columns and no rows (the schema of a view when
// nothing is staged yet).
func writeEmptyPQ[T any](path string) error {
	p, err := createPQ[T](path)
	if err != nil {
		return err
	}
	if err := p.finish(); err != nil {
		p.abort()
		return err
	}
	return p.commit()
}

// LedgerEntry is one ingested file.
type LedgerEntry struct {
	SHA256         string
	Source         string
	File           string // relative to the inbox, / separated
	RowsRead       int64
	RowsStaged     int64
	RowsRejected   int64
	RowsDuplicate  int64
	RowsNotBilled  int64
	FirstUsageDate string // YYYY-MM-DD of the earliest readable row; "" when none
	LastUsageDate  string
	IngestedAt     time.Time // UTC
	RunID          string
}

var ledgerHeader = []string{"sha256", "source", "file", "rows_read", "rows_staged", "rows_rejected", "rows_duplicate",
	"rows_not_billed", "first_usage_date", "last_usage_date", "ingested_at", "run_id"}

func (e LedgerEntry) cells() []string {
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	return []string{e.SHA256, e.Source, e.File, i(e.RowsRead), i(e.RowsStaged), i(e.RowsRejected), i(e.RowsDuplicate),
		i(e.RowsNotBilled), e.FirstUsageDate, e.LastUsageDate, e.IngestedAt.UTC().Format(time.RFC3339), e.RunID}
}

// ReadLedger returns the ingested files, in ledger order; none when the ledger does not exist.
func ReadLedger(staging string) ([]LedgerEntry, error) {
	path := filepath.Join(staging, ledgerName)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := csv.NewReader(bufio.NewReader(f))
	cr.FieldsPerRecord = len(ledgerHeader)
	var out []LedgerEntry
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if line == 1 {
			if strings.Join(rec, ",") != strings.Join(ledgerHeader, ",") {
				return nil, fmt.Errorf("%s:1: unexpected header %v", path, rec)
			}
			continue
		}
		var e LedgerEntry
		var n [5]int64
		for k := range n {
			if n[k], err = strconv.ParseInt(rec[3+k], 10, 64); err != nil {
				return nil, fmt.Errorf("%s:%d: %s: %w", path, line, ledgerHeader[3+k], err)
			}
		}
		e.SHA256, e.Source, e.File = rec[0], rec[1], rec[2]
		e.RowsRead, e.RowsStaged, e.RowsRejected, e.RowsDuplicate, e.RowsNotBilled = n[0], n[1], n[2], n[3], n[4]
		e.FirstUsageDate, e.LastUsageDate = rec[8], rec[9]
		if e.IngestedAt, err = time.Parse(time.RFC3339, rec[10]); err != nil {
			return nil, fmt.Errorf("%s:%d: ingested_at: %w", path, line, err)
		}
		e.RunID = rec[11]
		out = append(out, e)
	}
}

// appendLedger adds one row to the ledger and syncs it to disk.
func appendLedger(staging string, e LedgerEntry) error {
	path := filepath.Join(staging, ledgerName)
	if err := os.MkdirAll(staging, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w := csv.NewWriter(f)
	if st.Size() == 0 {
		w.Write(ledgerHeader)
	}
	w.Write(e.cells())
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("append %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// OpenStaging makes the staged data of the run's period visible to SQL. It creates:
//   - table ingest_ledger: the ledger (every ingested file);
//   - table ingest_files: the files this run ingested or could not read (empty unless the ingest
//     stage ran);
//   - view staged_cdrs: the staged CDRs whose usage_date is in the period;
//   - view ingest_rejects: rejected rows of the period's files, plus every file this run could not
//     read. A rejected row has no trustworthy date of its own, so it belongs to the period of its
//     file: the file's first usage date (earliest readable row, billing zone), or, when the file
//     has no readable row, the day it was ingested (billing zone). An unreadable file is listed by
//     every run that finds it in the inbox, whatever the period (source_line 0, column ”).
//
// It works on an empty or missing staging folder (zero rows, the same columns).
func OpenStaging(ctx context.Context, r *Run) error {
	staging := r.Cfg.Paths.Staging
	ledger, err := ReadLedger(staging)
	if err != nil {
		return err
	}
	if err := ensureIngestFiles(ctx, r); err != nil {
		return err
	}
	if err := loadLedgerTable(ctx, r, ledger); err != nil {
		return err
	}
	from, to := r.Period.From.Format(time.DateOnly), r.Period.To.Format(time.DateOnly)
	inLedger := map[string]bool{}
	for _, e := range ledger {
		inLedger[e.SHA256] = true
	}
	// staged CDRs: partitions of the period, files of the ledger
	schemaDir := filepath.Join(r.Cfg.DuckDB.TempDirectory, "staging-schema-"+safeID(r.ID))
	cdrSchema, rejSchema := filepath.Join(schemaDir, "cdrs.parquet"), filepath.Join(schemaDir, "rejects.parquet")
	if err := writeEmptyPQ[cdrRow](cdrSchema); err != nil {
		return fmt.Errorf("staging schema: %w", err)
	}
	if err := writeEmptyPQ[rejectRow](rejSchema); err != nil {
		return fmt.Errorf("staging schema: %w", err)
	}
	var cdrFiles []string
	for d := r.Period.From; !d.After(r.Period.To); d = d.AddDate(0, 0, 1) {
		dir := filepath.Join(staging, cdrsDir, partitionPfx+d.Format(time.DateOnly))
		names, err := ledgerFilesIn(dir, inLedger)
		if err != nil {
			return err
		}
		cdrFiles = append(cdrFiles, names...)
	}
	// The schema file goes last: DuckDB estimates a file list's rows from its first file, and an
	// estimate of 0 makes it build join hash tables on the millions of calls instead of the small
	// reference side (5 s instead of 0.3 s per join at 10 M calls).
	cdrFiles = append(cdrFiles, cdrSchema)
	rejFiles := []string{rejSchema}
	loc := r.Cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	for _, e := range ledger {
		if e.RowsRejected == 0 {
			continue
		}
		day := e.FirstUsageDate
		if day == "" {
			day = e.IngestedAt.In(loc).Format(time.DateOnly)
		}
		if day >= from && day <= to {
			rejFiles = append(rejFiles, filepath.Join(staging, rejectsDir, e.SHA256+".parquet"))
		}
	}
	q, err := models.Model("staging_views.sql")
	if err != nil {
		return err
	}
	q = strings.ReplaceAll(q, "'{{staged_cdr_files}}'", sqlList(cdrFiles))
	q = strings.ReplaceAll(q, "'{{reject_files}}'", sqlList(rejFiles))
	if _, err := r.DB.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("sql/staging_views.sql: %w", err)
	}
	return nil
}

// ledgerFilesIn lists <sha>.parquet files of a folder whose sha is in the ledger, sorted.
func ledgerFilesIn(dir string, inLedger map[string]bool) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		if sha, ok := strings.CutSuffix(name, ".parquet"); ok && inLedger[sha] {
			out = append(out, filepath.Join(dir, name))
		}
	}
	sort.Strings(out)
	return out, nil
}

func sqlList(paths []string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = sqlString(p)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// sqlString is a SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func safeID(s string) string {
	if s == "" {
		return "run"
	}
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			return c
		}
		return '_'
	}, s)
}

// ensureIngestFiles creates the run's table of files seen by ingest, if the stage did not.
func ensureIngestFiles(ctx context.Context, r *Run) error {
	return ExecModel(ctx, r.DB, "staging_ingest_files.sql")
}

func loadLedgerTable(ctx context.Context, r *Run, ledger []LedgerEntry) error {
	const cols = `sha256 VARCHAR, source VARCHAR, source_file VARCHAR, rows_read BIGINT, rows_staged BIGINT,
		rows_rejected BIGINT, rows_duplicate BIGINT, rows_not_billed BIGINT, first_usage_date DATE, last_usage_date DATE,
		ingested_at TIMESTAMP, run_id VARCHAR`
	q := "CREATE OR REPLACE TABLE ingest_ledger (" + cols + ")"
	if len(ledger) > 0 {
		path := filepath.Join(r.Cfg.Paths.Staging, ledgerName)
		q = `CREATE OR REPLACE TABLE ingest_ledger AS
			SELECT sha256, source, file AS source_file, rows_read, rows_staged, rows_rejected, rows_duplicate, rows_not_billed,
			       first_usage_date, last_usage_date, ingested_at::TIMESTAMP AS ingested_at, run_id
			FROM read_csv(` + sqlString(path) + `, header = true, auto_detect = false,
			     columns = {'sha256': 'VARCHAR', 'source': 'VARCHAR', 'file': 'VARCHAR', 'rows_read': 'BIGINT',
			       'rows_staged': 'BIGINT', 'rows_rejected': 'BIGINT', 'rows_duplicate': 'BIGINT', 'rows_not_billed': 'BIGINT',
			       'first_usage_date': 'DATE', 'last_usage_date': 'DATE', 'ingested_at': 'TIMESTAMPTZ', 'run_id': 'VARCHAR'})`
	}
	if _, err := r.DB.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("load ingest_ledger: %w", err)
	}
	return nil
}
