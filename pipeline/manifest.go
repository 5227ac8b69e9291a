package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/google/renameio/v2"
)

// Manifest describes one published version of a period: what went in, what came out, and the
// run that made it. Everything but Run is a function of the inputs, so two runs on the same
// inputs write the same manifest apart from Run.
type Manifest struct {
	Period    string       `json:"period"`
	Reference []FileDigest `json:"reference"`
	Inputs    []InputFile  `json:"inputs"`
	// LateInputs are files with late usage of closed periods billed in this period.
	LateInputs []LateInput       `json:"late_inputs,omitempty"`
	Counts     map[string]int64  `json:"counts"`
	Totals     []CustomerTotal   `json:"totals"`
	Outputs    []FileDigest      `json:"outputs"`
	Versions   map[string]string `json:"versions"`
	Run        ManifestRun       `json:"run"`
}

// FileDigest is a file and its SHA-256.
type FileDigest struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Rows   *int64 `json:"rows,omitempty"`
}

// InputFile is an ingested CDR file that has usage in the period, with its ledger counts: every
// row read is staged, rejected, a duplicate or not billed.
type InputFile struct {
	Source        string `json:"source"`
	File          string `json:"file"`
	SHA256        string `json:"sha256"`
	RowsRead      int64  `json:"rows_read"`
	RowsStaged    int64  `json:"rows_staged"`
	RowsRejected  int64  `json:"rows_rejected"`
	RowsDuplicate int64  `json:"rows_duplicate"`
	RowsNotBilled int64  `json:"rows_not_billed"`
}

// CustomerTotal is what one customer is billed for the period.
type CustomerTotal struct {
	CompanyIdentifier string `json:"company_identifier"`
	Subtotal          string `json:"subtotal"`
	Tax               string `json:"tax"`
	Total             string `json:"total"`
}

// ManifestRun is the only part of the manifest that changes from run to run.
type ManifestRun struct {
	ID       string `json:"id"`
	Started  string `json:"started"`
	Finished string `json:"finished"`
}

// CdrbillVersion is set by jobs from the build's version.
var CdrbillVersion = "dev"

// ManifestStage writes manifest.json into the work folder.
type ManifestStage struct{}

func (ManifestStage) String() string { return "manifest" }

func (ManifestStage) Run(ctx context.Context, r *Run) error {
	m := Manifest{Period: r.Period.Month, Counts: map[string]int64{}, Versions: map[string]string{"cdrbill": CdrbillVersion}}
	for _, name := range ReferenceFiles {
		d, err := digestFile(filepath.Join(r.Cfg.Paths.Reference, name))
		if err != nil {
			return err
		}
		d.File = name
		m.Reference = append(m.Reference, d)
	}
	inputs, err := r.periodInputs(ctx)
	if err != nil {
		return err
	}
	m.Inputs = inputs
	m.LateInputs = r.LateInputs
	var duck string
	if err := r.DB.QueryRowContext(ctx, "SELECT version()").Scan(&duck); err != nil {
		return err
	}
	m.Versions["duckdb"] = duck
	counts := map[string]string{
		"cdrs_staged":   "SELECT count(*) FROM staged_cdrs",
		"rows_rejected": "SELECT count(*) FROM ingest_rejects",
		"cdrs_rated":    "SELECT count(*) FROM rated_usage",
		"cdrs_in_error": "SELECT count(*) FROM rating_errors",
	}
	for name, q := range counts {
		var n int64
		if err := r.DB.QueryRowContext(ctx, q).Scan(&n); err != nil {
			return fmt.Errorf("manifest count %s: %w", name, err)
		}
		m.Counts[name] = n
	}
	for _, f := range m.Inputs {
		m.Counts["file_rows_read"] += f.RowsRead
		m.Counts["file_rows_staged"] += f.RowsStaged
		m.Counts["file_rows_rejected"] += f.RowsRejected
		m.Counts["file_rows_duplicate"] += f.RowsDuplicate
		m.Counts["file_rows_not_billed"] += f.RowsNotBilled
	}
	if m.Totals, err = r.customerTotals(ctx); err != nil {
		return err
	}
	if m.Outputs, err = digestTree(r.WorkDir); err != nil {
		return err
	}
	m.Run = ManifestRun{ID: r.ID, Started: r.Started.Format(time.RFC3339), Finished: time.Now().UTC().Format(time.RFC3339)}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return renameio.WriteFile(r.OutPath("manifest.json"), append(b, '\n'), 0o644)
}

// periodInputs lists the ingested files with usage in the period, from the ledger.
func (r *Run) periodInputs(ctx context.Context) ([]InputFile, error) {
	rows, err := r.DB.QueryContext(ctx, `SELECT source, source_file, sha256, rows_read, rows_staged, rows_rejected,
			rows_duplicate, rows_not_billed
		FROM ingest_ledger
		WHERE coalesce(first_usage_date, CAST(ingested_at AS DATE)) <= getvariable('period_to')
		  AND coalesce(last_usage_date, CAST(ingested_at AS DATE)) >= getvariable('period_from')
		ORDER BY source_file, sha256`)
	if err != nil {
		return nil, fmt.Errorf("manifest inputs: %w", err)
	}
	defer rows.Close()
	var out []InputFile
	for rows.Next() {
		var f InputFile
		if err := rows.Scan(&f.Source, &f.File, &f.SHA256, &f.RowsRead, &f.RowsStaged, &f.RowsRejected,
			&f.RowsDuplicate, &f.RowsNotBilled); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// customerTotals sums usage_summary and tax_lines per customer.
func (r *Run) customerTotals(ctx context.Context) ([]CustomerTotal, error) {
	rows, err := r.DB.QueryContext(ctx, `
		WITH u AS (SELECT company_identifier, sum(amount) AS subtotal FROM usage_summary GROUP BY ALL),
		     t AS (SELECT company_identifier, sum(tax_amount) AS tax FROM tax_lines GROUP BY ALL)
		SELECT company_identifier, CAST(coalesce(subtotal, 0) AS DECIMAL(18,2))::VARCHAR,
		       CAST(coalesce(tax, 0) AS DECIMAL(18,2))::VARCHAR,
		       CAST(coalesce(subtotal, 0) + coalesce(tax, 0) AS DECIMAL(18,2))::VARCHAR
		FROM u FULL JOIN t USING (company_identifier) ORDER BY company_identifier`)
	if err != nil {
		return nil, fmt.Errorf("manifest totals: %w", err)
	}
	defer rows.Close()
	var out []CustomerTotal
	for rows.Next() {
		var t CustomerTotal
		if err := rows.Scan(&t.CompanyIdentifier, &t.Subtotal, &t.Tax, &t.Total); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func digestFile(path string) (FileDigest, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileDigest{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return FileDigest{}, fmt.Errorf("read %s: %w", path, err)
	}
	return FileDigest{File: path, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// digestTree lists the files under dir (paths relative to it, sorted), except manifest.json and
// delta.csv, which describe the version rather than bill anything.
func digestTree(dir string) ([]FileDigest, error) {
	var out []FileDigest
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == "manifest.json" || rel == "delta.csv" {
			return nil
		}
		fd, err := digestFile(path)
		if err != nil {
			return err
		}
		fd.File = filepath.ToSlash(rel)
		out = append(out, fd)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out, err
}
