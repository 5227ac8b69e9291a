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

	"github.com/google/renameio/v2"
)

// copyQueryCSV writes a query's result with DuckDB's own CSV writer (COPY ... TO), producing the
// bytes WriteQueryCSV's Go path would: every value is formatted in SQL as FormatValue does, text
// goes through safe_text (SafeText) and each field through csv_field (Go's encoding/csv quoting),
// the fields are joined into one line, and DuckDB writes the lines unquoted. The header is the
// query's column names, CSV-encoded by Go. The file is written under a temporary name in the target
// folder, synced and renamed into place.
//
// ok is false, with nothing written, when the query has a column type this path does not format
// (lists, floating point, intervals, ...) or cannot be described; the caller then takes the Go
// path, which also reports the query's errors.
func copyQueryCSV(ctx context.Context, db *sql.DB, path, query string) (n int64, ok bool, err error) {
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
	// concat_ws builds each line in one go (a chain of || makes a string per step: 4x slower);
	// it skips NULLs, and no field expression is NULL.
	stmt := "COPY (SELECT concat_ws(',', " + strings.Join(exprs, ", ") + ") AS " + quoteIdent(header) +
		"\nFROM (\n" + q + "\n) AS q(" + strings.Join(aliases, ", ") + ")) TO " + sqlString(pf.Name()) +
		" (FORMAT csv, HEADER true, QUOTE '', ESCAPE '', DELIMITER ',', USE_TMP_FILE false)"
	res, ordered, err := execOrdered(ctx, db, stmt)
	if err != nil {
		return 0, true, fmt.Errorf("query for %s: %w", filepath.Base(path), err)
	}
	if !ordered {
		return 0, false, nil // pf.Cleanup removes the temporary file
	}
	if n, err = res.RowsAffected(); err != nil {
		return 0, true, err
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
