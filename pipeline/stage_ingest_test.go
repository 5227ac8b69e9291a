package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ingestTestRun is a test run whose inbox has one generic source, "carrier" (zone New York).
func ingestTestRun(t testing.TB, dir string) *Run {
	t.Helper()
	r := newTestRun(t)
	r.Cfg.Paths.Inbox = filepath.Join(dir, "inbox")
	r.Cfg.Paths.Staging = filepath.Join(dir, "staging")
	ny, _ := time.LoadLocation("America/New_York")
	r.Cfg.Sources = []SourceConfig{{Name: "carrier", Format: "generic", Path: filepath.Join(dir, "inbox", "carrier"),
		Timezone: "America/New_York", Country: "US", Location: ny}}
	return r
}

func ingWriteFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

const ingHeader = "call_id,account,direction,origin,destination,start,duration,usage_type,bytes\n"

func ingQueryInt(t *testing.T, r *Run, q string) int64 {
	t.Helper()
	var n int64
	if err := r.DB.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func ingQueryStrings(t *testing.T, r *Run, q string) []string {
	t.Helper()
	rows, err := r.DB.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func ingCheckCounts(t *testing.T, r *Run, want map[string]int64) {
	t.Helper()
	for k, v := range want {
		if r.Counts[k] != v {
			t.Errorf("count %s = %d, want %d", k, r.Counts[k], v)
		}
	}
	c := r.Counts
	if c["rows_read"] != c["rows_staged"]+c["rows_rejected"]+c["rows_duplicate"]+c["rows_not_billed"] {
		t.Errorf("invariant broken: %v", c)
	}
}

func TestIngestStage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox", "carrier")
	ingWriteFile(t, filepath.Join(inbox, "a.csv"), ingHeader+
		"a1,ACME,outbound,3055550101,3055550123,2025-10-01T12:00:00Z,60,voice,\n"+ // line 2 staged
		"a2,ACME,outbound,3055550101,3055550124,2025-10-01T13:00:00Z,120,voice,\n"+ // line 3 staged
		"a3,ACME,outbound,3055550101,+1 305 555 0123,2025-10-01T12:00:00Z,60,voice,\n"+ // line 4 duplicate of line 2
		"a4,ACME,outbound,3055550101,3055550125,2025-10-01T14:00:00Z,-1,voice,\n"+ // line 5 rejected
		"a5,ACME,outbound,3055550101,3055550126,2025-11-01T03:30:00Z,30,voice,\n"+ // line 6 staged, 2025-10-31 in New York
		"a6,ACME,outbound,3055550101,3055550127,2025-11-01T05:00:00Z,30,voice,\n") // line 7 staged, 2025-11-01
	ingWriteFile(t, filepath.Join(inbox, "b.csv"), ingHeader+
		"b1,ACME,outbound,3055550101,(305) 555-0124,2025-10-01 09:00:00,120,voice,\n"+ // duplicate of a.csv:3 (EDT)
		"b2,GLOBEX,inbound,3055550130,3055550199,2025-10-02T10:00:00-04:00,45,voice,\n"+
		"b3,GLOBEX,,,,2025-10-03T00:00:00Z,,data,2048\n")
	ingWriteFile(t, filepath.Join(inbox, "bad.csv"), "account,destination,duration\nACME,3055550123,60\n")
	ingWriteFile(t, filepath.Join(inbox, ".hidden.csv"), ingHeader)
	ingWriteFile(t, filepath.Join(inbox, "upload.csv.part"), ingHeader)

	r := ingestTestRun(t, dir)
	if err := (IngestStage{}).Run(ctx, r); err != nil {
		t.Fatal(err)
	}
	ingCheckCounts(t, r, map[string]int64{"files_ingested": 2, "files_unreadable": 1, "rows_read": 9, "rows_staged": 6,
		"rows_rejected": 1, "rows_duplicate": 2, "rows_not_billed": 0})
	if got := ingReview(r); got != "unreadable_file=1" {
		t.Errorf("review: %s", got)
	}
	if err := OpenStaging(ctx, r); err != nil {
		t.Fatal(err)
	}
	got := ingQueryStrings(t, r, `SELECT concat_ws('|', source_file, source_line, account, direction, destination,
		destination_raw, strftime(start_utc, '%Y-%m-%d %H:%M:%S'), usage_date, usage_type, duration, bytes)
		FROM staged_cdrs ORDER BY source_file, source_line`)
	want := []string{
		"carrier/a.csv|2|ACME|outbound|+13055550123|3055550123|2025-10-01 12:00:00|2025-10-01|voice|60|0",
		"carrier/a.csv|3|ACME|outbound|+13055550124|3055550124|2025-10-01 13:00:00|2025-10-01|voice|120|0",
		"carrier/a.csv|6|ACME|outbound|+13055550126|3055550126|2025-11-01 03:30:00|2025-10-31|voice|30|0",
		"carrier/b.csv|3|GLOBEX|inbound|+13055550199|3055550199|2025-10-02 14:00:00|2025-10-02|voice|45|0",
		"carrier/b.csv|4|GLOBEX|outbound|||2025-10-03 00:00:00|2025-10-02|data|0|2048",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("staged_cdrs:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rej := ingQueryStrings(t, r, `SELECT concat_ws('|', source_file, source_line, column_name, reason) FROM ingest_rejects ORDER BY ALL`)
	if len(rej) != 2 || !strings.HasPrefix(rej[0], "carrier/a.csv|5|duration|negative") ||
		!strings.HasPrefix(rej[1], "carrier/bad.csv|0||unreadable file: generic: line 1: header has no \"start\"") {
		t.Errorf("ingest_rejects: %q", rej)
	}
	// duplicates name the row they duplicate
	dups := ingQueryStrings(t, r, `SELECT concat_ws('|', source_file, source_line, duplicate_of_file, duplicate_of_line)
		FROM read_parquet('`+filepath.Join(dir, "staging", "duplicates", "*.parquet")+`') ORDER BY ALL`)
	if strings.Join(dups, ",") != "carrier/a.csv|4|carrier/a.csv|2,carrier/b.csv|2|carrier/a.csv|3" {
		t.Errorf("duplicates: %q", dups)
	}
	// and carry its cdr_id
	if n := ingQueryInt(t, r, `SELECT count(*) FROM read_parquet('`+filepath.Join(dir, "staging", "duplicates", "*.parquet")+`') d
		JOIN read_parquet('`+filepath.Join(dir, "staging", "cdrs", "*", "*.parquet")+`') c
		ON c.source_file = d.duplicate_of_file AND c.source_line = d.duplicate_of_line AND c.cdr_id = d.cdr_id`); n != 2 {
		t.Errorf("%d duplicates carry the cdr_id of the row they duplicate, want 2", n)
	}

	// Second run: the same files plus a copy of a.csv under another name (same content) and a new
	// file repeating one call. Nothing already ingested is staged again.
	ingCopyFile(t, filepath.Join(inbox, "a.csv"), filepath.Join(inbox, "sub", "a-copy.csv"))
	ingWriteFile(t, filepath.Join(inbox, "c.csv"), ingHeader+"x,GLOBEX,inbound,3055550130,3055550199,2025-10-02T14:00:00Z,45,voice,\n")
	r2 := ingestTestRun(t, dir)
	if err := (IngestStage{}).Run(ctx, r2); err != nil {
		t.Fatal(err)
	}
	ingCheckCounts(t, r2, map[string]int64{"files_ingested": 1, "files_already_ingested": 3, "files_unreadable": 1,
		"rows_read": 1, "rows_staged": 0, "rows_duplicate": 1, "rows_rejected": 0})
	if err := OpenStaging(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if n := ingQueryInt(t, r2, "SELECT count(*) FROM staged_cdrs"); n != 5 {
		t.Errorf("after re-ingest: %d staged rows, want 5", n)
	}
	if n := ingQueryInt(t, r2, "SELECT count(*) FROM ingest_ledger"); n != 3 {
		t.Errorf("ledger rows %d, want 3", n)
	}
	if got := ingQueryStrings(t, r2, `SELECT concat_ws('|', source_file, rows_read, rows_staged, rows_rejected, rows_duplicate,
		first_usage_date, last_usage_date) FROM ingest_ledger ORDER BY source_file`); strings.Join(got, ",") !=
		"carrier/a.csv|6|4|1|1|2025-10-01|2025-11-01,carrier/b.csv|3|2|0|1|2025-10-01|2025-10-02,carrier/c.csv|1|0|0|1|2025-10-02|2025-10-02" {
		t.Errorf("ledger: %q", got)
	}
	if n := ingQueryInt(t, r2, "SELECT sum(rows_read - rows_staged - rows_rejected - rows_duplicate - rows_not_billed) FROM ingest_ledger"); n != 0 {
		t.Errorf("ledger invariant off by %d", n)
	}
	// the inbox is untouched
	if _, err := os.Stat(filepath.Join(inbox, "bad.csv")); err != nil {
		t.Error(err)
	}
}

func ingCopyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	ingWriteFile(t, to, string(b))
}

func ingReview(r *Run) string {
	var s []string
	for _, it := range r.Review {
		s = append(s, fmt.Sprintf("%s=%d", it.Kind, it.Count))
	}
	return strings.Join(s, " ")
}

func TestOpenStagingEmpty(t *testing.T) {
	ctx := context.Background()
	r := ingestTestRun(t, t.TempDir())
	if err := OpenStaging(ctx, r); err != nil {
		t.Fatal(err)
	}
	cols := ingQueryStrings(t, r, `SELECT column_name || ' ' || data_type FROM information_schema.columns
		WHERE table_name = 'staged_cdrs' ORDER BY ordinal_position`)
	want := "cdr_id VARCHAR,source VARCHAR,account VARCHAR,direction VARCHAR,origin VARCHAR,destination VARCHAR," +
		"origin_raw VARCHAR,destination_raw VARCHAR,start_utc TIMESTAMP,usage_date DATE,usage_type VARCHAR," +
		"duration BIGINT,bytes BIGINT,source_file VARCHAR,source_line BIGINT,file_sha256 VARCHAR"
	if strings.Join(cols, ",") != want {
		t.Errorf("staged_cdrs columns:\n%s\nwant\n%s", strings.Join(cols, ","), want)
	}
	cols = ingQueryStrings(t, r, `SELECT column_name || ' ' || data_type FROM information_schema.columns
		WHERE table_name = 'ingest_rejects' ORDER BY ordinal_position`)
	if got := strings.Join(cols, ","); got != "source VARCHAR,source_file VARCHAR,source_line BIGINT,column_name VARCHAR,reason VARCHAR,raw VARCHAR" {
		t.Errorf("ingest_rejects columns: %s", got)
	}
	if n := ingQueryInt(t, r, "SELECT count(*) FROM staged_cdrs") + ingQueryInt(t, r, "SELECT count(*) FROM ingest_rejects"); n != 0 {
		t.Errorf("empty staging has %d rows", n)
	}
}

// TestIngestStageMixed ingests the parsers' quirk files through the stage: per-file counts are
// the hand-counted outcomes of each file (see pipeline/ingest/formats_test.go).
func TestIngestStageMixed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := ingestTestRun(t, dir)
	chi, _ := time.LoadLocation("America/Chicago")
	ny := r.Cfg.Sources[0].Location
	in := func(s string) string { return filepath.Join(dir, "inbox", s) }
	r.Cfg.Sources = []SourceConfig{
		{Name: "pbx1", Format: "asterisk", Path: in("pbx1"), Country: "US", Location: chi, Account: "DEFAULT"},
		{Name: "fs1", Format: "freeswitch", Path: in("fs1"), Country: "US", Location: ny, Account: "DEFAULT"},
		{Name: "cucm1", Format: "cucm", Path: in("cucm1"), Country: "US", Location: ny, Account: "ACME"},
	}
	ingCopyFile(t, "ingest/testdata/asterisk_quirks.csv", in("pbx1/Master.csv"))
	ingCopyFile(t, "ingest/testdata/asterisk_custom.csv", in("pbx1/custom/Master.csv"))
	ingCopyFile(t, "ingest/testdata/freeswitch_quirks.csv", in("fs1/Master.csv"))
	ingCopyFile(t, "ingest/testdata/cucm_quirks.csv", in("cucm1/cdr_StandAloneCluster_01_202510011200_1"))
	if err := (IngestStage{}).Run(ctx, r); err != nil {
		t.Fatal(err)
	}
	ingCheckCounts(t, r, map[string]int64{"files_ingested": 3, "files_unreadable": 1, "rows_read": 27, "rows_staged": 9,
		"rows_rejected": 11, "rows_duplicate": 2, "rows_not_billed": 5})
	files := ingQueryStrings(t, r, `SELECT concat_ws('|', source_file, status, rows_read, rows_staged, rows_rejected, rows_duplicate, rows_not_billed)
		FROM ingest_files ORDER BY source_file`)
	want := []string{
		"cucm1/cdr_StandAloneCluster_01_202510011200_1|ingested|8|3|3|0|2",
		"fs1/Master.csv|ingested|9|4|2|2|1",
		"pbx1/Master.csv|ingested|10|2|6|0|2",
		"pbx1/custom/Master.csv|unreadable|0|0|0|0|0",
	}
	if strings.Join(files, "\n") != strings.Join(want, "\n") {
		t.Errorf("ingest_files:\n%s\nwant\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}
	if err := OpenStaging(ctx, r); err != nil {
		t.Fatal(err)
	}
	// FreeSWITCH: the B legs (lines 2 and 3) are duplicates of their A legs (lines 1 and 4)
	dups := ingQueryStrings(t, r, `SELECT concat_ws('|', source_file, source_line, duplicate_of_file, duplicate_of_line)
		FROM read_parquet('`+filepath.Join(dir, "staging", "duplicates", "*.parquet")+`') ORDER BY ALL`)
	if strings.Join(dups, ",") != "fs1/Master.csv|2|fs1/Master.csv|1,fs1/Master.csv|3|fs1/Master.csv|4" {
		t.Errorf("duplicates: %q", dups)
	}
	nb := ingQueryStrings(t, r, `SELECT concat_ws('|', source_file, source_line, not_billed)
		FROM read_parquet('`+filepath.Join(dir, "staging", "not_billed", "*.parquet")+`') ORDER BY ALL`)
	if len(nb) != 5 || nb[0] != "cucm1/cdr_StandAloneCluster_01_202510011200_1|4|never connected (dateTimeConnect 0)" {
		t.Errorf("not billed: %q", nb)
	}
	if n := ingQueryInt(t, r, `SELECT count(DISTINCT cdr_id) FROM read_parquet('`+filepath.Join(dir, "staging", "not_billed", "*.parquet")+`')
		WHERE regexp_full_match(cdr_id, '[0-9a-f]{32}')`); n != 5 {
		t.Errorf("%d distinct well-formed cdr_ids among the 5 not billed rows", n)
	}
	// 9 staged, one of them (fs1 line 9) on 2025-11-02: 8 in the period
	if n := ingQueryInt(t, r, "SELECT count(*) FROM staged_cdrs"); n != 8 {
		t.Errorf("staged_cdrs: %d rows, want 8", n)
	}
	if n := ingQueryInt(t, r, "SELECT count(*) FROM ingest_rejects"); n != 12 {
		t.Errorf("ingest_rejects: %d rows, want 11 rows + 1 unreadable file", n)
	}
	if got := ingReview(r); got != "unreadable_file=1" {
		t.Errorf("review: %s", got)
	}
}

func TestSampleSource(t *testing.T) {
	dir := t.TempDir()
	r := ingestTestRun(t, dir)
	src := &r.Cfg.Sources[0]
	ingWriteFile(t, filepath.Join(src.Path, "a.csv"), ingHeader+
		"a1,ACME,outbound,3055550101,3055550123,2025-10-01T12:00:00Z,60,voice,\n"+
		"a2,ACME,outbound,3055550101,3055550124,2025-10-01T13:00:00Z,x,voice,\n"+
		"a3,ACME,outbound,3055550101,3055550125,2025-10-01T14:00:00Z,60,voice,\n")
	s, err := SampleSource(src, r.Cfg.Paths.Inbox, r.Cfg.Location, 2)
	if err != nil || s.Err != nil {
		t.Fatal(err, s.Err)
	}
	if s.File != "carrier/a.csv" || len(s.Records) != 1 || len(s.Rejects) != 1 || s.Rejects[0].Column != "duration" {
		t.Errorf("sample: %+v", s)
	}
}

// TestIngestLedgerIsTheTruth: Parquet files without a ledger row (a run interrupted between the
// renames and the ledger append) are never read, and the file is ingested again in full.
func TestIngestLedgerIsTheTruth(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ingWriteFile(t, filepath.Join(dir, "inbox", "carrier", "a.csv"), ingHeader+
		"a1,ACME,outbound,3055550101,3055550123,2025-10-01T12:00:00Z,60,voice,\n"+
		"a2,ACME,outbound,3055550101,3055550124,2025-10-01T13:00:00Z,120,voice,\n")
	r := ingestTestRun(t, dir)
	if err := (IngestStage{}).Run(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "staging", "ledger.csv")); err != nil {
		t.Fatal(err)
	}
	r2 := ingestTestRun(t, dir)
	if err := OpenStaging(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if n := ingQueryInt(t, r2, "SELECT count(*) FROM staged_cdrs"); n != 0 {
		t.Errorf("files outside the ledger are visible: %d rows", n)
	}
	if err := (IngestStage{}).Run(ctx, r2); err != nil {
		t.Fatal(err)
	}
	ingCheckCounts(t, r2, map[string]int64{"files_ingested": 1, "rows_read": 2, "rows_staged": 2, "rows_duplicate": 0})
	if err := OpenStaging(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if n := ingQueryInt(t, r2, "SELECT count(DISTINCT cdr_id) * 10 + count(*) FROM staged_cdrs"); n != 22 {
		t.Errorf("after re-ingest: distinct*10+rows = %d, want 22", n)
	}
}

// TestIngestWriterFailure: an error of the Parquet writer's goroutine (a batch in the middle of a
// file, or finishing the file) or a cancelled context stops the file: the stage fails with the
// same error as a synchronous write would give, no temporary or staged file of it is left, the
// ledger is untouched, and the next run ingests the file in full.
func TestIngestWriterFailure(t *testing.T) {
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox", "carrier")
	ingWriteFile(t, filepath.Join(inbox, "a.csv"), ingHeader+
		"a1,ACME,outbound,3055550101,3055550123,2025-10-01T12:00:00Z,60,voice,\n")
	r := ingestTestRun(t, dir)
	if err := (IngestStage{}).Run(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	staging := filepath.Join(dir, "staging")
	before := stagingFiles(t, staging)
	ledger, err := os.ReadFile(filepath.Join(staging, ledgerName))
	if err != nil {
		t.Fatal(err)
	}
	const rows = 100_000 // about 3 300 rows a day: several batches per day's file
	ingGenericRows(t, filepath.Join(inbox, "usage.csv"), rows)
	errFault := fmt.Errorf("fault injected")
	for _, tc := range []struct {
		name, job string
		after     int // jobs of that kind that succeed first
		want      string
	}{
		{"batch", "batch", 10, "ingest carrier/usage.csv: fault injected"},
		{"first batch", "batch", 0, "ingest carrier/usage.csv: fault injected"},
		{"finish", "finish", 5, "ingest carrier/usage.csv: write staging: fault injected"},
		{"cancel", "batch", 10, "ingest carrier/usage.csv: context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var n atomic.Int64
			pqFault = func(job string) error {
				if job != tc.job || n.Add(1) <= int64(tc.after) {
					return nil
				}
				if tc.name == "cancel" {
					cancel()
					time.Sleep(10 * time.Millisecond) // the parse goes on until its next batch
					return nil
				}
				return errFault
			}
			defer func() { pqFault = nil }()
			err := (IngestStage{}).Run(ctx, ingestTestRun(t, dir))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if tc.name == "cancel" && !errors.Is(err, context.Canceled) {
				t.Errorf("%v is not context.Canceled", err)
			}
			if tc.name != "cancel" && !errors.Is(err, errFault) {
				t.Errorf("%v does not wrap the writer's error", err)
			}
			if after := stagingFiles(t, staging); !slices.Equal(after, before) {
				t.Errorf("staging files after the failure:\n%s\nwant:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
			}
			if b, _ := os.ReadFile(filepath.Join(staging, ledgerName)); string(b) != string(ledger) {
				t.Errorf("ledger changed:\n%s", b)
			}
		})
	}
	// A partition folder that cannot be created (a file in its place): the writer's goroutine
	// opens the files, its error is the stage's as it was when emit opened them.
	blocker := filepath.Join(staging, cdrsDir, partitionPfx+"2025-10-20")
	os.Remove(blocker) // the empty folder the failures above left
	ingWriteFile(t, blocker, "not a folder")
	before = stagingFiles(t, staging)
	err = (IngestStage{}).Run(context.Background(), ingestTestRun(t, dir))
	if err == nil || !strings.HasPrefix(err.Error(), "ingest carrier/usage.csv: open "+blocker) || !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("blocked partition: error %v", err)
	}
	if after := stagingFiles(t, staging); !slices.Equal(after, before) {
		t.Errorf("staging files after the failure:\n%s\nwant:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}

	r = ingestTestRun(t, dir)
	if err := (IngestStage{}).Run(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	ingCheckCounts(t, r, map[string]int64{"files_ingested": 1, "files_already_ingested": 1, "rows_read": rows,
		"rows_duplicate": rows / 100})
}

// stagingFiles lists every file under the staging folder (temporary ones included), sorted.
func stagingFiles(t *testing.T, staging string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(staging, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(staging, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
