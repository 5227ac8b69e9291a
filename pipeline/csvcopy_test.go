package pipeline

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// textCases is the shared table of text cells: SafeText (Go) and safe_text (SQL) must agree on
// each, and so must encoding/csv and csv_field.
var textCases = []struct{ in, safe string }{
	{"", ""},
	{"plain", "plain"},
	{"=1+2", "'=1+2"},
	{"=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"},
	{"+13055550123", "+13055550123"}, // E.164: a plain number
	{"+1 305 555 0123", "'+1 305 555 0123"},
	{"-12.50", "-12.50"},
	{"-12.", "'-12."},
	{"-1e5", "'-1e5"},
	{"-", "'-"},
	{"+", "'+"},
	{"@SUM(A1)", "'@SUM(A1)"},
	{"\tcmd", "'\tcmd"},
	{"\rcmd", "'\rcmd"},
	{"\ncmd", "\ncmd"},
	{" =1", " =1"},
	{"'=1", "'=1"},
	{"a=1", "a=1"},
	{"12.5.6", "12.5.6"},
	{"+12.5.6", "'+12.5.6"},
	{"+12\n", "'+12\n"},
	{"-0", "-0"},
	{"+٣", "'+٣"}, // Arabic-Indic digit: not [0-9]
	{"=é", "'=é"},
	{"é=", "é="},
	{"=\u0301", "'=\u0301"}, // '=' then a combining accent
	{"a,b", "a,b"},
	{"say \"hi\"", "say \"hi\""},
	{"\"", "\""},
	{"line1\nline2", "line1\nline2"},
	{"cr\r\nlf", "cr\r\nlf"},
	{`\.`, `\.`},
	{" lead", " lead"},
	{"\u00a0nbsp", "\u00a0nbsp"},
	{"\u3000ideographic", "\u3000ideographic"},
	{"\u200bzero-width", "\u200bzero-width"}, // not a space for unicode.IsSpace
	{"trail ", "trail "},
	{"日本語,カンマ", "日本語,カンマ"},
	// csv_text's fast path: a letter or digit first, or + and digits only
	{"A", "A"},
	{"1,5", "1,5"},
	{"ab\"c", "ab\"c"},
	{"abc\r", "abc\r"},
	{"x\ny", "x\ny"},
	{"+1", "+1"},
	{"+12a", "'+12a"},
	{"+12,3", "'+12,3"},
	{"9 lives, 1 cat", "9 lives, 1 cat"},
}

func TestSafeTextTable(t *testing.T) {
	for _, c := range textCases {
		if got := SafeText(c.in); got != c.safe {
			t.Errorf("SafeText(%q) = %q, want %q", c.in, got, c.safe)
		}
	}
}

// TestSafeTextMacro: safe_text, csv_field and csv_text (sql/macros.sql) against SafeText and
// encoding/csv.
func TestSafeTextMacro(t *testing.T) {
	r := newTestRun(t)
	ctx := context.Background()
	for _, c := range textCases {
		var safe, field, text string
		if err := r.DB.QueryRowContext(ctx, "SELECT safe_text(?::VARCHAR), csv_field(safe_text(?::VARCHAR)), csv_text(?::VARCHAR)", c.in, c.in, c.in).Scan(&safe, &field, &text); err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if safe != SafeText(c.in) {
			t.Errorf("safe_text(%q) = %q, SafeText %q", c.in, safe, SafeText(c.in))
		}
		if want := goCSVField(t, SafeText(c.in)); field != want {
			t.Errorf("csv_field(safe_text(%q)) = %q, encoding/csv %q", c.in, field, want)
		}
		if text != field {
			t.Errorf("csv_text(%q) = %q, csv_field(safe_text()) %q", c.in, text, field)
		}
	}
	var null, empty, emptyText any
	if err := r.DB.QueryRowContext(ctx, "SELECT safe_text(NULL::VARCHAR), csv_field(NULL::VARCHAR), csv_text(NULL::VARCHAR)").Scan(&null, &empty, &emptyText); err != nil {
		t.Fatal(err)
	}
	if null != nil || empty != "" || emptyText != "" {
		t.Errorf("NULL: safe_text %v, csv_field %q, csv_text %q; want NULL and empty", null, empty, emptyText)
	}
}

// goCSVField is one field as encoding/csv writes it (two fields, so an empty one is not special).
func goCSVField(t *testing.T, s string) string {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.Write([]string{s, "x"}); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	return strings.TrimSuffix(b.String(), ",x\n")
}

// TestWriteQueryCSVCopyMatchesScan: DuckDB's COPY path and the Go scan path write the same bytes,
// for every type the COPY path handles, NULLs, hostile text, an empty result, and a big result
// whose order must survive DuckDB's parallel writer.
func TestWriteQueryCSVCopyMatchesScan(t *testing.T) {
	r := newTestRun(t)
	ctx := context.Background()
	mustExec(t, r, "CREATE TABLE hostile (k INTEGER, s VARCHAR)")
	for i, c := range textCases {
		mustExec(t, r, "INSERT INTO hostile VALUES (?, ?)", i, c.in)
	}
	mustExec(t, r, "INSERT INTO hostile VALUES (1000, NULL)")
	queries := map[string]string{
		"types": `SELECT k AS "id", s AS "text, ""quoted""", s AS "text, ""quoted""",
			CAST(k - 20 AS DECIMAL(18, 6)) * 0.013 AS dec6, CAST(k AS DECIMAL(18, 0)) AS dec0,
			CAST(k - 20 AS DECIMAL(9, 2)) * 0.01 AS cents,
			CAST(-5 + k AS DECIMAL(18, 2)) * 0.001 AS small,
			CAST(k AS HUGEINT) * 100000000000000000000 AS huge, CAST(k AS BIGINT) - 10 AS big, CAST(k AS SMALLINT) AS sm,
			CAST(k AS UBIGINT) AS ub, k % 2 = 0 AS flag,
			DATE '2025-10-01' + k AS d, TIMESTAMP '2025-10-31 23:59:59.999' + INTERVAL (k) HOUR AS ts,
			TIMESTAMPTZ '2025-10-01 00:00:00+00' + INTERVAL (k) MINUTE AS tstz,
			CASE WHEN k % 3 = 0 THEN NULL ELSE k END AS maybe
		FROM hostile ORDER BY k`,
		"empty":   `SELECT k, s FROM hostile WHERE k < 0 ORDER BY k`,
		"with":    "-- a model file's header\nWITH x AS (SELECT * FROM hostile)\nSELECT s FROM x ORDER BY k -- trailing comment\n",
		"semi":    `SELECT s AS only FROM hostile ORDER BY k;`,
		"ordered": `SELECT md5(i::VARCHAR) AS id, i, CAST(i AS DECIMAL(18, 2)) * -0.37 AS amount FROM range(300000) t(i) ORDER BY id`,
	}
	dir := t.TempDir()
	for name, q := range queries {
		t.Run(name, func(t *testing.T) {
			copyPath := filepath.Join(dir, name+".copy.csv")
			b := copyMatchesScan(t, ctx, r.DB, copyPath, q, nil)
			if len(b) == 0 {
				t.Errorf("empty file (want at least the header)")
			}
			if st, err := os.Stat(copyPath); err != nil || st.Mode().Perm()&0o044 == 0 {
				t.Errorf("copy file mode: %v %v", st.Mode(), err)
			}
		})
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// firstDiff shows the first line where two files differ.
func firstDiff(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return fmt.Sprintf("line %d: copy %q, scan %q (%d and %d lines)", i+1, la[i], lb[i], len(la), len(lb))
		}
	}
	return fmt.Sprintf("copy %d lines, scan %d lines", len(la), len(lb))
}

// TestWriteQueryCSVFallback: columns the COPY path does not format (DOUBLE, lists) go the Go way.
func TestWriteQueryCSVFallback(t *testing.T) {
	r := newTestRun(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "f.csv")
	for q, want := range map[string]string{
		"SELECT [1, 2] AS l, 'x' AS s":  "l,s\n1;2,x\n",
		"SELECT 1.5::DOUBLE AS d":       "d\nFLOAT!1.5\n",
		"SELECT ? AS p":                 "", // args: scanned in Go
		"SELECT INTERVAL 1 DAY AS i, 1": "",
	} {
		var args []any
		if strings.Contains(q, "?") {
			args = []any{"=1"}
			want = "p\n'=1\n"
		}
		if _, ok, err := copyQueryCSV(ctx, r.DB, path, q, nil); ok || err != nil {
			t.Errorf("%s: copy path took it (ok %v, %v)", q, ok, err)
		}
		if _, err := WriteQueryCSV(ctx, r.DB, path, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		got, _ := os.ReadFile(path)
		if want != "" && string(got) != want {
			t.Errorf("%s: wrote %q, want %q", q, got, want)
		}
	}
	// a query that does not bind: the Go path reports the error
	if _, err := WriteQueryCSV(ctx, r.DB, path, "SELECT nope FROM nowhere"); err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("bad query: %v", err)
	}
}

// TestCopyQueryCSVRefusesUnorderedPlan: a formatting projection DuckDB plans as a join (a long IN
// list) loses the ORDER BY's order in COPY; the COPY path must see it in the plan and decline.
func TestCopyQueryCSVRefusesUnorderedPlan(t *testing.T) {
	r := newTestRun(t)
	ctx := context.Background()
	mustExec(t, r, `CREATE OR REPLACE MACRO safe_text(s) AS
		CASE WHEN ascii(s) IN (61, 43, 45, 64, 9, 13) THEN '''' || s ELSE s END`)
	q := `SELECT md5(i::VARCHAR) AS id FROM range(100000) t(i) ORDER BY id`
	_, ok, err := copyQueryCSV(ctx, r.DB, filepath.Join(t.TempDir(), "x.csv"), q, nil)
	if ok || err != nil {
		t.Errorf("copy path ran an unordered plan: ok %v, %v", ok, err)
	}
}

// copyMatchesScan writes q to path with copyQueryCSV (in ranges when given) and next to it with
// scanQueryCSV, fails unless both give the same rows and bytes, and returns the bytes.
func copyMatchesScan(t *testing.T, ctx context.Context, db *sql.DB, path, q string, ranges []string) []byte {
	t.Helper()
	n1, ok, err := copyQueryCSV(ctx, db, path, q, ranges)
	if err != nil || !ok {
		t.Fatalf("copy path: ok %v, %v", ok, err)
	}
	scanPath := strings.TrimSuffix(path, ".csv") + ".scan.csv"
	n2, err := scanQueryCSV(ctx, db, scanPath, q)
	if err != nil {
		t.Fatal(err)
	}
	if n1 != n2 {
		t.Errorf("rows: copy %d, scan %d", n1, n2)
	}
	a, _ := os.ReadFile(path)
	b, _ := os.ReadFile(scanPath)
	if !bytes.Equal(a, b) {
		t.Errorf("copy and scan differ: %s", firstDiff(a, b))
	}
	return b
}

// TestWriteSortedQueryCSV: written range by range, the file has the bytes of one sort, for hex
// keys, keys that are not hex, repeated keys and no rows; every key falls in exactly one range.
func TestWriteSortedQueryCSV(t *testing.T) {
	r := newTestRun(t)
	ctx := context.Background()
	mustExec(t, r, `CREATE TABLE keyed AS
		SELECT md5(i::VARCHAR) AS id, i FROM range(5000) t(i)
		UNION ALL SELECT k, 9000 + n FROM (VALUES ('', 1), ('0', 2), ('1', 3), ('9zz', 4), (':', 5), ('A', 6),
			('a', 7), ('f', 8), ('ffff', 9), ('g', 10), ('~', 11), ('é', 12), ('a', 13), ('0', 14)) v(k, n)`)
	queries := map[string]string{
		"keys":  `SELECT id AS cdr_id, i, CAST(i AS DECIMAL(18, 2)) * 0.01 AS amount FROM keyed ORDER BY cdr_id, i`,
		"empty": `SELECT id AS cdr_id, i FROM keyed WHERE i < 0 ORDER BY cdr_id, i`,
	}
	dir := t.TempDir()
	for name, q := range queries {
		t.Run(name, func(t *testing.T) {
			// WriteSortedQueryCSV's DuckDB path against the Go writer's whole sort
			copyMatchesScan(t, ctx, r.DB, filepath.Join(dir, name+".sorted.csv"), q, keyRanges("cdr_id"))
		})
	}
	ranges := keyRanges("cdr_id")
	if len(ranges) != 16 {
		t.Fatalf("%d ranges, want 16", len(ranges))
	}
	var sum []string
	for _, c := range ranges {
		sum = append(sum, "CASE WHEN "+c+" THEN 1 ELSE 0 END")
	}
	var bad int
	if err := r.DB.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT id AS cdr_id FROM keyed) WHERE "+
		strings.Join(sum, " + ")+" <> 1").Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Errorf("%d keys not in exactly one range", bad)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}
