package pipeline

import (
	"context"
	"database/sql"
	"fmt"
	"os"

	"github.com/duckdb/duckdb-go/v2"

	models "cdrbill/sql"
)

// OpenDB opens the in-memory DuckDB every stage of a run shares: offline (no extension is ever
// downloaded or auto-loaded), UTC, with memory, threads and spill folder from the config, and the
// shared macros loaded.
func OpenDB(ctx context.Context, s DuckDBSettings) (*sql.DB, error) {
	if err := os.MkdirAll(s.TempDirectory, 0o755); err != nil {
		return nil, fmt.Errorf("duckdb temp_directory: %w", err)
	}
	connector, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	db := sql.OpenDB(connector)
	// One connection: the run's tables and variables live on it, and DuckDB parallelises inside
	// each query anyway.
	db.SetMaxOpenConns(1)
	settings := []string{
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		"SET TimeZone = 'UTC'",
		fmt.Sprintf("SET memory_limit = '%s'", s.MemoryLimit),
		fmt.Sprintf("SET threads = %d", s.Threads),
		fmt.Sprintf("SET temp_directory = '%s'", s.TempDirectory),
		"SET preserve_insertion_order = false",
		models.MustModel("macros.sql"),
	}
	for _, q := range settings {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			return nil, fmt.Errorf("duckdb setup %q: %w", firstLine(q), err)
		}
	}
	return db, nil
}

// ExecModel runs one SQL model file on the run's database.
func ExecModel(ctx context.Context, db *sql.DB, name string) error {
	q, err := models.Model(name)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("sql/%s: %w", name, err)
	}
	return nil
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}

// DuckDBVersion is the linked engine's version.
func DuckDBVersion(ctx context.Context) (string, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return "", err
	}
	defer db.Close()
	var v string
	err = db.QueryRowContext(ctx, "SELECT version()").Scan(&v)
	return v, err
}
