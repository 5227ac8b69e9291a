package pipeline

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
)

// copyQueryCSV writes a query's result with DuckDB's own CSV writer (COPY ... TO), producing the
// bytes WriteQueryCSV's Go path would: every value is formatted in SQL as FormatValue does, text
// goes through safe_text (SafeText) and each field through csv_field (Go's encoding/csv quoting),
// the fields are joined into one line, and DuckDB writes the lines unquoted. The header is the
// query's column names, CSV-encoded by Go. The file is written under a temporary name in the target
// folder, synced and renamed into place.
//
// With ranges (conditions on the query's columns that split its rows, in output order), the query
// runs once per range and the ranges are appended to the file in turn (WriteSortedQueryCSV).
//
// ok is false, with nothing written, when the query has a column type this path does not format
// (lists, floating point, intervals, ...) or cannot be described; the caller then takes the Go
// path, which also reports the query's errors.
func copyQueryCSV(ctx context.Context, db *sql.DB, path, query string, ranges []string) (n int64, ok bool, err error) {
	q := strings.TrimSpace(query)
	q = strings.TrimSpace(strings.TrimSuffix(q, ";"))
	cols, err := describeQuery(ctx, db, q)
	if err != nil || len(cols) == 0 {
		return 0, false, nil
	}
	names := make([]string, len(cols))
	exprs := make([]string, len(cols))
	aliases := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
		aliases[i] = fmt.Sprintf("c%d", i+1)
		e, ok := csvFieldExpr(aliases[i], c.typ)
		if !ok {
			return 0, false, nil
		}
		exprs[i] = e
	}
	var hb bytes.Buffer
	hw := csv.NewWriter(&hb)
	if err := hw.Write(names); err != nil {
		return 0, false, nil
	}
	hw.Flush()
	header := strings.TrimSuffix(hb.String(), "\n")
	if strings.ContainsAny(header, "\r\n") {
		return 0, false, nil // a column name with a line break: leave it to the Go path
	}

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, true, err
	}
	pf, err := renameio.NewPendingFile(path, renameio.WithPermissions(0o644))
	if err != nil {
		return 0, true, fmt.Errorf("create %s: %w", path, err)
	}
	defer pf.Cleanup() // no-op once replaced
	// copyTo writes the rows of q that meet cond (all when "") to dst.
	copyTo := func(cond, dst string, withHeader bool) (int64, bool, error) {
		from := q
		if cond != "" {
			from = "SELECT * FROM (\n" + q + "\n) WHERE " + cond
		}
		// concat_ws builds each line in one go (a chain of || makes a string per step: 4x slower);
		// it skips NULLs, and no field expression is NULL.
		stmt := "COPY (SELECT concat_ws(',', " + strings.Join(exprs, ", ") + ") AS " + quoteIdent(header) +
			"\nFROM (\n" + from + "\n) AS q(" + strings.Join(aliases, ", ") + ")) TO " + sqlString(dst) +
			fmt.Sprintf(" (FORMAT csv, HEADER %t, QUOTE '', ESCAPE '', DELIMITER ',', USE_TMP_FILE false)", withHeader)
		res, ordered, err := execOrdered(ctx, db, stmt)
		if err != nil {
			return 0, true, fmt.Errorf("query for %s: %w", filepath.Base(path), err)
		}
		if !ordered {
			return 0, false, nil
		}
		rows, err := res.RowsAffected()
		return rows, true, err
	}
	if len(ranges) == 0 {
		ranges = []string{""}
	}
	part := pf.Name() + ".part"
	defer os.Remove(part)
	for i, cond := range ranges {
		dst := pf.Name()
		if i > 0 {
			dst = part
		}
		rows, ok, err := copyTo(cond, dst, i == 0)
		if !ok || err != nil {
			return 0, ok, err // pf.Cleanup removes the temporary file
		}
		n += rows
		if i > 0 {
			if err := appendFile(pf.File, part); err != nil {
				return 0, true, fmt.Errorf("write %s: %w", filepath.Base(path), err)
			}
		}
	}
	// DuckDB wrote through its own handle: sync what it wrote, then publish.
	if err := syncPath(pf.Name()); err != nil {
		return 0, true, err
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return 0, true, err
	}
	return n, true, nil
}

// appendFile copies the file at path to the end of dst.
func appendFile(dst *os.File, path string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	if _, err := dst.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	return err
}

// keyRanges splits the values of a text column into ranges by first character, in order: before
// '1', '1' up to '2', ..., 'e' up to 'f', from 'f' on. A hex key (cdr_id) falls one sixteenth in
// each; any other value still falls in exactly one range.
func keyRanges(key string) []string {
	const bounds = "123456789abcdef"
	k := quoteIdent(key)
	out := make([]string, 0, len(bounds)+1)
	for i := 0; i <= len(bounds); i++ {
		var c []string
		if i > 0 {
			c = append(c, k+" >= '"+bounds[i-1:i]+"'")
		}
		if i < len(bounds) {
			c = append(c, k+" < '"+bounds[i:i+1]+"'")
		}
		out = append(out, strings.Join(c, " AND "))
	}
	return out
}

// execOrdered runs a COPY statement with preserve_insertion_order on (the run sets it off), then
// restores the connection's setting; the pool must be one connection (OpenDB), the setting is per
// connection. It first checks DuckDB's plan: only an order-preserving (batch) COPY keeps the rows
// of the query's ORDER BY in order through the formatting projection; any other plan (a join
// slipped in, say) is not run and ordered is false.
func execOrdered(ctx context.Context, db *sql.DB, stmt string) (res sql.Result, ordered bool, err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, false, err
	}
	defer conn.Close()
	var prev bool
	if err := conn.QueryRowContext(ctx, "SELECT current_setting('preserve_insertion_order')").Scan(&prev); err != nil {
		return nil, false, err
	}
	if !prev {
		if _, err := conn.ExecContext(ctx, "SET preserve_insertion_order = true"); err != nil {
			return nil, false, err
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SET preserve_insertion_order = false")
	}
	plan, err := explain(ctx, conn, stmt)
	if err != nil {
		return nil, false, err
	}
	if !strings.Contains(plan, "BATCH_COPY_TO_FILE") {
		return nil, false, nil
	}
	res, err = conn.ExecContext(ctx, stmt)
	return res, true, err
}

// explain is DuckDB's physical plan of a statement, as text.
func explain(ctx context.Context, conn *sql.Conn, stmt string) (string, error) {
	rows, err := conn.QueryContext(ctx, "EXPLAIN "+stmt)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var kind, plan string
		if err := rows.Scan(&kind, &plan); err != nil {
			return "", err
		}
		b.WriteString(plan)
	}
	return b.String(), rows.Err()
}

type queryColumn struct{ name, typ string }

// describeQuery returns a query's column names and DuckDB types without running it.
func describeQuery(ctx context.Context, db *sql.DB, q string) ([]queryColumn, error) {
	rows, err := db.QueryContext(ctx, "DESCRIBE (\n"+q+"\n)")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	n, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []queryColumn
	for rows.Next() {
		vals := make([]any, len(n))
		ptrs := make([]any, len(n))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		name, _ := vals[0].(string)
		typ, _ := vals[1].(string)
		out = append(out, queryColumn{name, typ})
	}
	return out, rows.Err()
}

// csvFieldExpr is the SQL that renders column c of DuckDB type typ as one CSV field, exactly as
// FormatValue + SafeText + encoding/csv do; false for a type it does not handle.
func csvFieldExpr(c, typ string) (string, bool) {
	switch {
	case typ == "VARCHAR":
		return "csv_text(" + c + ")", true
	case strings.HasPrefix(typ, "DECIMAL("), typ == "BIGINT", typ == "INTEGER", typ == "SMALLINT", typ == "TINYINT",
		typ == "HUGEINT", typ == "UBIGINT", typ == "UINTEGER", typ == "USMALLINT", typ == "UTINYINT", typ == "BOOLEAN":
		// digits with an optional sign and decimals (DECIMAL at its scale), true/false: never
		// quoted, and SafeText leaves plain numbers as they are
		return "coalesce(CAST(" + c + " AS VARCHAR), '')", true
	case typ == "DATE":
		return "coalesce(strftime(" + c + ", '%Y-%m-%d'), '')", true
	case typ == "TIMESTAMP":
		return "coalesce(strftime(" + c + ", '%Y-%m-%dT%H:%M:%SZ'), '')", true
	case typ == "TIMESTAMP WITH TIME ZONE":
		return "coalesce(strftime(timezone('UTC', " + c + "), '%Y-%m-%dT%H:%M:%SZ'), '')", true
	}
	return "", false
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func syncPath(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
