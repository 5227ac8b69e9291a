package pipeline

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"cdrbill/pipeline/ingest"
)

// dedupCall is a generic-format row: a call of ACME to dest on 2025-10-<day> at 12:00 UTC (that
// day in New York too).
func dedupCall(id string, day int, dest string) string {
	return fmt.Sprintf("%s,ACME,outbound,3055550101,%s,2025-10-%02dT12:00:00Z,60,voice,\n", id, dest, day)
}

// dedupIngest ingests the source's files in order as IngestStage does, with the index's budget
// set to budget, and checks after every file (ingestOne trims the index) that the index holds at
// most budget calls. It returns the number of day loads.
func dedupIngest(t *testing.T, r *Run, budget int64) int {
	t.Helper()
	ctx := context.Background()
	idx := ledgerDedupIndex(t, r)
	idx.budget = budget
	src := &r.Cfg.Sources[0]
	parser, _ := ingest.Lookup(src.Format)
	files, err := sourceFiles(src.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		rel := relFile(r.Cfg.Paths.Inbox, src, path)
		if _, err := ingestOne(ctx, r, src, parser, path, rel, idx); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		if idx.len() > budget {
			t.Errorf("after %s: the index holds %d calls, budget %d", rel, idx.len(), budget)
		}
		var held int64
		for _, d := range idx.days {
			held += int64(len(d.ids))
		}
		if held != idx.len() {
			t.Errorf("after %s: len() %d, the days hold %d", rel, idx.len(), held)
		}
	}
	return idx.loads
}

// TestDedupIndexBudget: with a budget of about two days, files that come back to a dropped day
// still have their duplicates found, naming the first occurrence (file, line, cdr_id), whether
// it was staged by an earlier run (in the ledger at start) or by an earlier file of this run; a
// duplicate inside one file is found too. The result is the same as with no budget.
func TestDedupIndexBudget(t *testing.T) {
	// earlier run: one call a day on days 1..3
	earlier := map[string]string{
		"r1/a.csv": ingHeader + dedupCall("a1", 1, "3055550201") + dedupCall("a2", 2, "3055550202") + dedupCall("a3", 3, "3055550203"),
	}
	// this run, in path order
	this := map[string]string{
		"r2/b1.csv": ingHeader + dedupCall("x", 1, "3055550201") + // 2: dup of a.csv:2 (earlier run)
			dedupCall("x", 1, "3055550301") + // 3: new
			dedupCall("x", 1, "3055550301"), // 4: dup of b1.csv:3 (same file)
		"r2/b2.csv": ingHeader + dedupCall("x", 2, "3055550302") + // 2: new
			dedupCall("x", 2, "3055550202"), // 3: dup of a.csv:3
		"r2/b3.csv": ingHeader + dedupCall("x", 3, "3055550303") + // 2: new
			dedupCall("x", 3, "3055550313") + // 3: new
			dedupCall("x", 3, "3055550323"), // 4: new
		"r2/b4.csv": ingHeader + dedupCall("x", 1, "3055550401") + // 2: new
			dedupCall("x", 1, "3055550301") + // 3: dup of b1.csv:3 (this run, day 1 dropped)
			dedupCall("x", 1, "3055550201") + // 4: dup of a.csv:2 (earlier run, day 1 dropped)
			dedupCall("x", 1, "3055550401"), // 5: dup of b4.csv:2
		"r2/b5.csv": ingHeader + dedupCall("x", 2, "3055550302") + // 2: dup of b2.csv:2
			dedupCall("x", 3, "3055550313") + // 3: dup of b3.csv:3
			dedupCall("x", 2, "3055550502"), // 4: new
		"r2/b6.csv": ingHeader + dedupCall("x", 4, "3055550604") + // 2: new
			dedupCall("x", 4, "3055550614") + // 3: new
			dedupCall("x", 5, "3055550605") + // 4: new, on a day to load: day 4, over budget, is kept
			dedupCall("x", 4, "3055550604"), // 5: dup of b6.csv:2 (not yet committed)
	}
	want := []string{
		"carrier/r2/b1.csv|2|carrier/r1/a.csv|2",
		"carrier/r2/b1.csv|4|carrier/r2/b1.csv|3",
		"carrier/r2/b2.csv|3|carrier/r1/a.csv|3",
		"carrier/r2/b4.csv|3|carrier/r2/b1.csv|3",
		"carrier/r2/b4.csv|4|carrier/r1/a.csv|2",
		"carrier/r2/b4.csv|5|carrier/r2/b4.csv|2",
		"carrier/r2/b5.csv|2|carrier/r2/b2.csv|2",
		"carrier/r2/b5.csv|3|carrier/r2/b3.csv|3",
		"carrier/r2/b6.csv|5|carrier/r2/b6.csv|2",
	}
	for _, tc := range []struct {
		name      string
		budget    int64
		moreLoads bool // days are loaded again
	}{
		{"no budget", math.MaxInt64, false},
		{"two days", 3, true},
		{"one call", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			inbox := filepath.Join(dir, "inbox", "carrier")
			for name, body := range earlier {
				ingWriteFile(t, filepath.Join(inbox, name), body)
			}
			if err := (IngestStage{}).Run(context.Background(), ingestTestRun(t, dir)); err != nil {
				t.Fatal(err)
			}
			for name, body := range this {
				ingWriteFile(t, filepath.Join(inbox, name), body)
			}
			r := ingestTestRun(t, dir)
			loads := dedupIngest(t, r, tc.budget)
			// distinct days met by this run's files: 1 to 5
			if tc.moreLoads != (loads > 5) {
				t.Errorf("%d day loads", loads)
			}
			staging := filepath.Join(dir, "staging")
			dups := ingQueryStrings(t, r, `SELECT concat_ws('|', source_file, source_line, duplicate_of_file, duplicate_of_line)
				FROM read_parquet('`+filepath.Join(staging, dupsDir, "*.parquet")+`') ORDER BY source_file, source_line`)
			if !slices.Equal(dups, want) {
				t.Errorf("duplicates:\n%s\nwant\n%s", strings.Join(dups, "\n"), strings.Join(want, "\n"))
			}
			// each carries the cdr_id of the row it names
			if n := ingQueryInt(t, r, `SELECT count(*) FROM read_parquet('`+filepath.Join(staging, dupsDir, "*.parquet")+`') d
				JOIN read_parquet('`+filepath.Join(staging, cdrsDir, "*", "*.parquet")+`') c
				ON c.source_file = d.duplicate_of_file AND c.source_line = d.duplicate_of_line AND c.cdr_id = d.cdr_id`); n != int64(len(want)) {
				t.Errorf("%d duplicates carry the cdr_id of the row they name, want %d", n, len(want))
			}
			// 3 earlier + 10 new, each call staged once
			if n := ingQueryInt(t, r, `SELECT count(*) FROM read_parquet('`+filepath.Join(staging, cdrsDir, "*", "*.parquet")+`')`); n != 13 {
				t.Errorf("%d staged rows, want 13", n)
			}
			if n := ingQueryInt(t, r, `SELECT count(DISTINCT cdr_id) FROM read_parquet('`+filepath.Join(staging, cdrsDir, "*", "*.parquet")+`')`); n != 13 {
				t.Errorf("%d distinct staged cdr_ids, want 13", n)
			}
		})
	}
}

// dedupID is a test call id.
func dedupID(i int) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:], uint64(i)+1)
	return id
}

// TestDedupIndexTrim: trim drops whole days, least recently met first (the earlier day on a
// tie), until the index is within budget; during a file it spares the days that file met.
func TestDedupIndexTrim(t *testing.T) {
	type day struct {
		day   int32
		calls int
		used  uint64
	}
	days := []day{{10, 3, 1}, {11, 2, 3}, {12, 4, 2}, {13, 1, 3}, {14, 2, 4}} // 12 calls; file 4 is in flight
	for _, tc := range []struct {
		name   string
		budget int64
		spare  bool
		keep   []int32
	}{
		{"within budget", 12, false, []int32{10, 11, 12, 13, 14}},
		{"one day", 9, false, []int32{11, 12, 13, 14}},
		{"lru order", 5, false, []int32{11, 13, 14}},
		{"tie: earlier day first", 3, false, []int32{13, 14}},
		{"everything", 0, false, nil},
		{"spare the file's days", 0, true, []int32{14}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := &dedupIndex{days: map[int32]*dedupDay{}, budget: tc.budget, file: 4}
			next := 0
			for _, d := range days {
				dd := &dedupDay{ids: map[[16]byte]dupRef{}, used: d.used}
				for range d.calls {
					dd.ids[dedupID(next)] = dupRef(next)
					next++
				}
				x.days[d.day] = dd
				x.n += int64(d.calls)
			}
			x.trim(tc.spare)
			var kept []int32
			var n int64
			for d, dd := range x.days {
				kept = append(kept, d)
				n += int64(len(dd.ids))
			}
			slices.Sort(kept)
			if !slices.Equal(kept, tc.keep) {
				t.Errorf("kept days %v, want %v", kept, tc.keep)
			}
			if x.len() != n {
				t.Errorf("len() %d, the days hold %d", x.len(), n)
			}
		})
	}
}

// ledgerDedupIndex is the duplicate index of r's ledger, as IngestStage makes it.
func ledgerDedupIndex(t *testing.T, r *Run) *dedupIndex {
	t.Helper()
	ledger, err := ReadLedger(r.Cfg.Paths.Staging)
	if err != nil {
		t.Fatal(err)
	}
	x, err := newDedupIndex(r, ledger)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// emptyDedupIndex is a duplicate index over a run with nothing staged, ready for a first file.
func emptyDedupIndex(t *testing.T) (context.Context, *dedupIndex) {
	t.Helper()
	x := ledgerDedupIndex(t, ingestTestRun(t, t.TempDir()))
	x.startFile()
	return context.Background(), x
}

// TestDedupIndexAbortDropsDays: abort makes the index forget the calls the file added by
// dropping the days it staged calls on; a day it only looked a call up on stays. A dropped day is
// loaded again from the files of the ledger only: not from a staged file the ledger does not list.
func TestDedupIndexAbortDropsDays(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// an earlier run staged one call on October 7
	ingWriteFile(t, filepath.Join(dir, "inbox", "carrier", "a.csv"), ingHeader+dedupCall("a1", 7, "3055550201"))
	if err := (IngestStage{}).Run(ctx, ingestTestRun(t, dir)); err != nil {
		t.Fatal(err)
	}
	staged, _ := filepath.Glob(filepath.Join(dir, "staging", cdrsDir, "*", "*.parquet"))
	if len(staged) != 1 {
		t.Fatalf("staged files %v, want one", staged)
	}
	oct := func(d int) int32 { return civilDay(time.Date(2025, 10, d, 0, 0, 0, 0, time.UTC), time.UTC) }
	// the same call in a file the ledger does not list (a crashed run's), in October 5's folder
	body, err := os.ReadFile(staged[0])
	if err != nil {
		t.Fatal(err)
	}
	ingWriteFile(t, filepath.Join(dir, "staging", cdrsDir, partitionPfx+dayString(oct(5)), strings.Repeat("0", 64)+".parquet"), string(body))

	r := ingestTestRun(t, dir)
	x := ledgerDedupIndex(t, r)
	var a1 [16]byte
	if _, err := hex.Decode(a1[:], []byte(ingQueryStrings(t, r, "SELECT cdr_id FROM read_parquet('"+staged[0]+"')")[0])); err != nil {
		t.Fatal(err)
	}
	lookup := func(day int32, id [16]byte) bool {
		t.Helper()
		_, dup, err := x.lookup(ctx, day, id, false)
		if err != nil {
			t.Fatal(err)
		}
		return dup
	}

	x.startFile()
	fi := &fileIngest{idx: x, aw: newPQWriter(), cdrs: map[int32]*pqFile[cdrRow]{}}
	if !lookup(oct(7), a1) {
		t.Fatal("the earlier run's call is not found")
	}
	for i, day := range []int32{oct(5), oct(6), oct(6)} {
		if lookup(day, dedupID(i)) {
			t.Fatalf("new call %d found", i)
		}
		x.add(day, dedupID(i), dupRef(i))
		fi.cdrs[day] = &pqFile[cdrRow]{}
	}
	if lookup(oct(5), a1) {
		t.Error("a call of a file not in the ledger is found")
	}
	if x.len() != 4 {
		t.Fatalf("len %d, want 4", x.len())
	}
	fi.abort()
	if _, ok := x.days[oct(7)]; len(x.days) != 1 || !ok || x.len() != 1 {
		t.Errorf("after abort: days %v, len %d; want only October 7's call", x.days, x.len())
	}

	x.startFile()
	for i, day := range []int32{oct(5), oct(6), oct(6)} {
		if lookup(day, dedupID(i)) {
			t.Errorf("after abort, call %d of %s is still known", i, dayString(day))
		}
	}
	if lookup(oct(5), a1) {
		t.Error("after abort, a call of a file not in the ledger is found")
	}
	if !lookup(oct(7), a1) {
		t.Error("the earlier run's call is forgotten")
	}
}

// TestDedupIndexKeyedNeighbours: a call with its own key is also found on the day before or
// after (FreeSWITCH legs across midnight), a call without one only on its day.
func TestDedupIndexKeyedNeighbours(t *testing.T) {
	ctx, x := emptyDedupIndex(t)
	if _, _, err := x.lookup(ctx, 100, dedupID(1), true); err != nil {
		t.Fatal(err)
	}
	x.add(100, dedupID(1), 42)
	for _, tc := range []struct {
		day   int32
		keyed bool
		dup   bool
	}{
		{100, false, true}, {100, true, true}, {101, true, true}, {99, true, true},
		{101, false, false}, {102, true, false},
	} {
		ref, dup, err := x.lookup(ctx, tc.day, dedupID(1), tc.keyed)
		if err != nil || dup != tc.dup || dup && ref != 42 {
			t.Errorf("day %d keyed %v: ref %d dup %v %v, want dup %v", tc.day, tc.keyed, ref, dup, err, tc.dup)
		}
	}
}

// TestDedupIndexLoadFirstOccurrence: were a cdr_id staged twice in a day's partition, loading
// the day keeps the occurrence first in the ledger (then the lower line), whatever the order the
// files are read in; files not in the ledger are not read.
func TestDedupIndexLoadFirstOccurrence(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := ingestTestRun(t, dir)
	part := filepath.Join(r.Cfg.Paths.Staging, cdrsDir, partitionPfx+"2025-10-05")
	if err := os.MkdirAll(part, 0o755); err != nil {
		t.Fatal(err)
	}
	id1, id2, id3, id4 := strings.Repeat("1", 32), strings.Repeat("2", 32), strings.Repeat("3", 32), strings.Repeat("4", 32)
	// "bbbb" is first in the ledger but read after "aaaa" (files are read in name order)
	files := map[string]string{
		"bbbb": fmt.Sprintf("('%s', 'first.csv', 9, 'bbbb'), ('%s', 'first.csv', 5, 'bbbb'), ('%s', 'first.csv', 3, 'bbbb'), ('%s', 'first.csv', 1, 'bbbb'), ('%s', 'first.csv', 7, 'bbbb')",
			id1, id2, id2, id4, id4),
		"aaaa": fmt.Sprintf("('%s', 'second.csv', 2, 'aaaa'), ('%s', 'second.csv', 1, 'aaaa')", id1, id3),
		"cccc": fmt.Sprintf("('%s', 'uncommitted.csv', 1, 'cccc')", id3),
	}
	for sha, values := range files {
		q := fmt.Sprintf("COPY (SELECT * FROM (VALUES %s) v(cdr_id, source_file, source_line, file_sha256)) TO '%s' (FORMAT parquet)",
			values, filepath.Join(part, sha+".parquet"))
		if _, err := r.DB.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	x, err := newDedupIndex(r, []LedgerEntry{{SHA256: "bbbb"}, {SHA256: "aaaa"}})
	if err != nil {
		t.Fatal(err)
	}
	x.startFile()
	day := civilDay(mustTime(t, "2025-10-05T12:00:00Z"), r.Cfg.Location)
	for _, tc := range []struct {
		id, file string
		line     int64
	}{{id1, "first.csv", 9}, {id2, "first.csv", 3}, {id3, "second.csv", 1}, {id4, "first.csv", 1}} {
		var id [16]byte
		copy(id[:], mustHex(t, tc.id))
		ref, dup, err := x.lookup(ctx, day, id, false)
		if err != nil || !dup {
			t.Fatalf("%s: dup %v, %v", tc.id, dup, err)
		}
		if f := x.files[ref.file()].file; f != tc.file || ref.line() != tc.line {
			t.Errorf("%s: first occurrence %s:%d, want %s:%d", tc.id, f, ref.line(), tc.file, tc.line)
		}
	}
	if x.len() != 4 {
		t.Errorf("len %d, want 4", x.len())
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDedupBudget: the index's budget is half the Go memory limit at dedupEntryBytes a call,
// from the config or from GOMEMLIMIT when that is set; none when the limit is off.
func TestDedupBudget(t *testing.T) {
	for _, tc := range []struct {
		limit, env string
		want       int64
	}{
		{"768MiB", "", 768 << 20 / 2 / dedupEntryBytes},
		{"1GB", "", 1_000_000_000 / 2 / dedupEntryBytes},
		{"", "", 1_000_000_000 / 2 / dedupEntryBytes}, // the default, 1GB
		{"off", "", math.MaxInt64},
		{"0", "", math.MaxInt64},
		{"1GB", "100MiB", 100 << 20 / 2 / dedupEntryBytes}, // the environment wins, as in ApplyLimits
	} {
		t.Run(tc.limit+"/"+tc.env, func(t *testing.T) {
			if tc.env != "" {
				n, err := ParseByteSize(tc.env)
				if err != nil {
					t.Fatal(err)
				}
				t.Setenv("GOMEMLIMIT", tc.env)
				old := debug.SetMemoryLimit(n) // what the runtime reads from GOMEMLIMIT at start
				defer debug.SetMemoryLimit(old)
			} else {
				t.Setenv("GOMEMLIMIT", "")
			}
			cfg := &Config{}
			cfg.DuckDB.GoMemoryLimit = tc.limit
			got, err := dedupBudget(cfg)
			if err != nil || got != tc.want {
				t.Errorf("budget %d, %v; want %d", got, err, tc.want)
			}
		})
	}
	cfg := &Config{}
	cfg.DuckDB.GoMemoryLimit = "lots"
	t.Setenv("GOMEMLIMIT", "")
	if _, err := dedupBudget(cfg); err == nil || !strings.Contains(err.Error(), "duckdb.go_memory_limit") {
		t.Errorf("bad limit: %v", err)
	}
}

// TestDedupIndexRedelivery: synthetic nightly files, then each delivered again (one more blank
// line, so a new file) in reverse day order, all in one run whose budget holds about two days:
// every row of a copy is a duplicate of the same line of the original, though most days were
// dropped and loaded again from files this run committed.
func TestDedupIndexRedelivery(t *testing.T) {
	const rows = 20_000 // about 800 calls a weekday
	dir := t.TempDir()
	if err := Synthesize(dir, rows, 5); err != nil {
		t.Fatal(err)
	}
	files := SynthFiles(dir, rows)
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// zz/ sorts after the originals; 99-i reverses the days
		ingWriteFile(t, filepath.Join(filepath.Dir(f), "zz", fmt.Sprintf("%02d-%s", 99-i, filepath.Base(f))), string(b)+"\n")
	}
	r := ingestTestRun(t, dir)
	src := &r.Cfg.Sources[0]
	src.Name, src.Path = SynthSource, filepath.Join(dir, "inbox", SynthSource)
	const budget = 1700
	loads := dedupIngest(t, r, budget)
	if loads <= 31 {
		t.Errorf("%d day loads: no day was dropped and loaded again", loads)
	}
	staging := filepath.Join(dir, "staging")
	if n := ingQueryInt(t, r, `SELECT count(*) FROM read_parquet('`+filepath.Join(staging, cdrsDir, "*", "*.parquet")+`')`); n != rows {
		t.Errorf("%d staged, want %d", n, rows)
	}
	q := `SELECT count(*) FROM read_parquet('` + filepath.Join(staging, dupsDir, "*.parquet") + `') d
		JOIN read_parquet('` + filepath.Join(staging, cdrsDir, "*", "*.parquet") + `') c
		ON c.source_file = d.duplicate_of_file AND c.source_line = d.duplicate_of_line AND c.cdr_id = d.cdr_id
		WHERE d.source_line = c.source_line AND regexp_replace(d.source_file, '^gen/zz/[0-9]{2}-', 'gen/') = c.source_file`
	if n := ingQueryInt(t, r, q); n != rows {
		t.Errorf("%d duplicates name the same line of the original, want %d", n, rows)
	}
}
