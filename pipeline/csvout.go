package pipeline

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/google/renameio/v2"
	"github.com/shopspring/decimal"
)

// plainNumber is a cell a spreadsheet reads as a number, never as a formula: it may start with a
// sign (an E.164 number, a negative amount) and stays as it is.
var plainNumber = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?$`)

// SafeText neutralises a text cell that a spreadsheet would run as a formula (one starting with
// =, +, -, @, tab or carriage return) by prefixing an apostrophe, as OWASP recommends. Plain
// numbers pass unchanged.
func SafeText(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		if !plainNumber.MatchString(s) {
			return "'" + s
		}
	}
	return s
}

// CSVFile writes a CSV file atomically: rows go to a temporary file in the same folder, which
// replaces the target only on Close. Cells are spreadsheet-safe text.
type CSVFile struct {
	pf  *renameio.PendingFile
	buf *bufio.Writer
	w   *csv.Writer
}

// CreateCSV starts a file with its header.
func CreateCSV(path string, header []string) (*CSVFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	pf, err := renameio.NewPendingFile(path, renameio.WithPermissions(0o644))
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	buf := bufio.NewWriterSize(pf, 1<<20)
	f := &CSVFile{pf: pf, buf: buf, w: csv.NewWriter(buf)}
	return f, f.w.Write(header)
}

// Write adds one row; text cells are made spreadsheet-safe.
func (f *CSVFile) Write(cells []string) error {
	for i, c := range cells {
		cells[i] = SafeText(c)
	}
	return f.w.Write(cells)
}

// Close publishes the file. Abort discards it instead.
func (f *CSVFile) Close() error {
	f.w.Flush()
	if err := f.w.Error(); err != nil {
		f.pf.Cleanup()
		return err
	}
	if err := f.buf.Flush(); err != nil {
		f.pf.Cleanup()
		return err
	}
	return f.pf.CloseAtomicallyReplace()
}

// Abort discards the pending file.
func (f *CSVFile) Abort() { f.pf.Cleanup() }

// WriteQueryCSV writes the result of a query as a CSV file with the query's column names as
// header. Values are formatted by type: DECIMAL at its own scale, DATE as YYYY-MM-DD, TIMESTAMP as
// YYYY-MM-DDTHH:MM:SSZ, lists joined with ';', NULL as empty. It returns the rows written.
//
// A query without args whose columns are all text, integers, DECIMAL, BOOLEAN, DATE or TIMESTAMP
// is written by DuckDB itself (copyQueryCSV: formatting, SafeText and quoting done in SQL, same
// bytes, several times faster on big files); any other query is scanned row by row in Go.
func WriteQueryCSV(ctx context.Context, db *sql.DB, path, query string, args ...any) (int64, error) {
	if len(args) == 0 {
		if n, ok, err := copyQueryCSV(ctx, db, path, query, nil); ok {
			return n, err
		}
	}
	return scanQueryCSV(ctx, db, path, query, args...)
}

// WriteSortedQueryCSV is WriteQueryCSV for a big query whose ORDER BY starts with the text column
// key: DuckDB's path runs it once per range of key (keyRanges), each range sorted on its own, and
// appends the ranges in order. The bytes are those of one sort, but no sort holds more than a range,
// so a file of ten million rows is not sorted through temp_directory.
func WriteSortedQueryCSV(ctx context.Context, db *sql.DB, path, query, key string) (int64, error) {
	if n, ok, err := copyQueryCSV(ctx, db, path, query, keyRanges(key)); ok {
		return n, err
	}
	return scanQueryCSV(ctx, db, path, query)
}

// scanQueryCSV is WriteQueryCSV's Go path: every row scanned through database/sql, formatted by
// FormatValue and written by CreateCSV.
func scanQueryCSV(ctx context.Context, db *sql.DB, path, query string, args ...any) (int64, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("query for %s: %w", filepath.Base(path), err)
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return 0, err
	}
	header := make([]string, len(types))
	for i, t := range types {
		header[i] = t.Name()
	}
	f, err := CreateCSV(path, header)
	if err != nil {
		return 0, err
	}
	vals := make([]any, len(types))
	ptrs := make([]any, len(types))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	cells := make([]string, len(types))
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			f.Abort()
			return n, err
		}
		for i, v := range vals {
			cells[i] = FormatValue(v, types[i].DatabaseTypeName())
		}
		if err := f.Write(cells); err != nil {
			f.Abort()
			return n, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		f.Abort()
		return n, fmt.Errorf("query for %s: %w", filepath.Base(path), err)
	}
	return n, f.Close()
}

// FormatValue renders one DuckDB value the way every output file writes it.
func FormatValue(v any, dbType string) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case duckdb.Decimal:
		return decimal.NewFromBigInt(x.Value, -int32(x.Scale)).StringFixed(int32(x.Scale))
	case *big.Int:
		return x.String()
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case int16:
		return strconv.FormatInt(int64(x), 10)
	case int8:
		return strconv.FormatInt(int64(x), 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case uint32:
		return strconv.FormatUint(uint64(x), 10)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		if dbType == "DATE" {
			return x.UTC().Format(time.DateOnly)
		}
		return x.UTC().Format("2006-01-02T15:04:05Z")
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = FormatValue(e, "")
		}
		return strings.Join(parts, ";")
	case float64, float32:
		// Never money: DOUBLE columns must not reach an output. Show it loudly if one does.
		return fmt.Sprintf("FLOAT!%v", x)
	}
	return fmt.Sprint(v)
}
