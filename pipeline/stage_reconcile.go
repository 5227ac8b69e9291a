package pipeline

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
)

// ReconcileStage compares what the run rated (usage_summary, tax_lines) with what ConnectWise
// posted (paths.posted, or Posted when set: `cdrbill reconcile --posted FILE`). It writes
// reconciliation.csv, reconciliation_taxes.csv when the posted data has invoice lines, and
// reconciliation.xlsx; every customer that is not ok needs review. With no posted invoice for the
// period it is skipped (ErrSkip) and writes nothing.
type ReconcileStage struct {
	// Posted overrides r.Cfg.Paths.Posted: a file or a folder.
	Posted string
}

func (ReconcileStage) String() string { return "reconcile" }

// ReconciliationColumns are reconciliation.csv's columns (CONTRACT.md), in order.
var ReconciliationColumns = []string{"company_identifier", "period", "rated_subtotal", "posted_subtotal",
	"rated_tax", "posted_tax", "rated_total", "posted_total", "variance_amount", "variance_percent",
	"status", "invoice_numbers"}

// ReconciliationTaxColumns are reconciliation_taxes.csv's columns: one row per customer and tax
// catalog item.
var ReconciliationTaxColumns = []string{"company_identifier", "period", "catalog_identifier",
	"rated_tax", "posted_tax", "variance_amount", "variance_percent", "status", "invoice_numbers"}

func (s ReconcileStage) Run(ctx context.Context, r *Run) error {
	path := s.Posted
	if path == "" {
		path = r.Cfg.Paths.Posted
	}
	posted, err := ReadPosted(path)
	if err != nil {
		return err
	}
	if len(posted.Invoices) == 0 && len(posted.Lines) == 0 {
		return fmt.Errorf("%w: no posted invoices in %s", ErrSkip, path)
	}
	base := r.Cfg.Dir
	if err := LoadPosted(ctx, r, posted, base); err != nil {
		return err
	}
	if _, err := r.DB.ExecContext(ctx, "SET VARIABLE variance_threshold_percent = CAST(? AS DECIMAL(18, 6))",
		strconv.FormatFloat(r.Cfg.Billing.VarianceThresholdPercent, 'f', -1, 64)); err != nil {
		return fmt.Errorf("set variable variance_threshold_percent: %w", err)
	}
	if err := ExecModel(ctx, r.DB, "reconcile_posted_matched.sql"); err != nil {
		return err
	}
	var matched, outside int64
	if err := r.DB.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM posted_matched),
        (SELECT count(*) FROM posted_invoices) - (SELECT count(*) FROM posted_matched)`).Scan(&matched, &outside); err != nil {
		return fmt.Errorf("count posted invoices: %w", err)
	}
	if outside > 0 {
		r.Log.Info("posted invoices dated outside the period's window", "count", outside, "period", r.Period.Month)
	}
	if matched == 0 {
		return fmt.Errorf("%w: none of the %d posted invoices in %s is dated in period %s's window", ErrSkip, outside, path, r.Period.Month)
	}
	if err := lineChecks(ctx, r); err != nil {
		return err
	}
	if err := ExecModel(ctx, r.DB, "reconcile_customers.sql"); err != nil {
		return err
	}
	cols := joinCols(ReconciliationColumns)
	n, err := WriteQueryCSV(ctx, r.DB, r.OutPath("reconciliation.csv"),
		"SELECT "+cols+" FROM reconciliation ORDER BY company_identifier, status, company_id NULLS LAST, invoice_numbers")
	if err != nil {
		return err
	}
	r.Count("reconciliation_rows", n)
	r.Count("posted_invoices_matched", matched)
	sheets := []xlsxSheet{{Name: "reconciliation", Table: "reconciliation", Columns: ReconciliationColumns,
		Order: "company_identifier, status, company_id NULLS LAST, invoice_numbers"}}

	var lines int64
	if err := r.DB.QueryRowContext(ctx, "SELECT count(*) FROM posted_invoice_lines").Scan(&lines); err != nil {
		return fmt.Errorf("count posted lines: %w", err)
	}
	if lines > 0 {
		if err := ExecModel(ctx, r.DB, "reconcile_taxes.sql"); err != nil {
			return err
		}
		n, err := WriteQueryCSV(ctx, r.DB, r.OutPath("reconciliation_taxes.csv"),
			"SELECT "+joinCols(ReconciliationTaxColumns)+" FROM reconciliation_taxes ORDER BY company_identifier, catalog_identifier, status")
		if err != nil {
			return err
		}
		r.Count("reconciliation_tax_rows", n)
		sheets = append(sheets, xlsxSheet{Name: "reconciliation_taxes", Table: "reconciliation_taxes",
			Columns: ReconciliationTaxColumns, Order: "company_identifier, catalog_identifier, status"})
	}
	if err := WriteReconciliationXLSX(ctx, r.DB, r.OutPath("reconciliation.xlsx"), sheets); err != nil {
		return err
	}

	var notOK int64
	if err := r.DB.QueryRowContext(ctx, "SELECT count(*) FROM reconciliation WHERE status <> 'ok'").Scan(&notOK); err != nil {
		return fmt.Errorf("count variances: %w", err)
	}
	r.NeedsReview("reconciliation_variance", notOK)
	if lines > 0 {
		var taxNotOK int64
		if err := r.DB.QueryRowContext(ctx, "SELECT count(*) FROM reconciliation_taxes WHERE status <> 'ok'").Scan(&taxNotOK); err != nil {
			return fmt.Errorf("count tax variances: %w", err)
		}
		r.NeedsReview("reconciliation_tax_variance", taxNotOK)
	}
	return nil
}

// lineChecks refuses posted invoice lines that can be tied to no customer and date: they reference
// no posted invoice and carry no company/identifier and date of their own.
func lineChecks(ctx context.Context, r *Run) error {
	var file sql.NullString
	var line sql.NullInt64
	var number sql.NullString
	err := r.DB.QueryRowContext(ctx, `
        SELECT l.file, l.line, l.invoice_number FROM posted_invoice_lines l
        WHERE NOT EXISTS (SELECT 1 FROM posted_invoices p WHERE p.invoice_number = l.invoice_number)
          AND (l.company_identifier IS NULL OR l.invoice_date IS NULL)
        ORDER BY l.file, l.line LIMIT 1`).Scan(&file, &line, &number)
	if err == sql.ErrNoRows {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check posted lines: %w", err)
	}
	return Inputf(file.String, int(line.Int64), 0,
		"line of invoice %s: no posted invoice has that number, and the line has no company/identifier and date of its own", number.String)
}

func joinCols(cols []string) string {
	s := ""
	for i, c := range cols {
		if i > 0 {
			s += ", "
		}
		s += c
	}
	return s
}

// ReconcileSummary counts the reconciliation table's customers by status (for preflight step 9
// and the run's log). It needs ReconcileStage to have run.
func ReconcileSummary(ctx context.Context, db *sql.DB) (map[string]int64, error) {
	rows, err := db.QueryContext(ctx, "SELECT status, count(*) FROM reconciliation GROUP BY status ORDER BY status")
	if err != nil {
		return nil, fmt.Errorf("reconciliation summary: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{"ok": 0, "flagged": 0, "missing_posted": 0, "unexpected_posted": 0}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}
