package pipeline

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	models "cdrbill/sql"
)

// DescriptionPlaceholders are the placeholders billing.description_template may use (see
// sql/invoice_lines.sql and the README's "Invoice lines").
var DescriptionPlaceholders = []string{"description", "product", "catalog_identifier", "from", "to",
	"period", "quantity", "unit", "calls", "origin", "destination", "start"}

// Default ticket board and priority for errors/tickets.csv.
const (
	DefaultTicketBoard    = "Billing"
	DefaultTicketPriority = "Priority 3 - Normal Response"
)

// xeroMaxInvoices is Xero's limit of invoices per import file.
const xeroMaxInvoices = 500

// ExportStage builds invoice_lines from usage_summary and tax_lines (summary or detail mode per
// customer), numbers the invoices from the invoice book, and writes connectwise_additions.csv,
// connectwise_invoices.csv, quickbooks_invoices.csv, xero_invoices.csv, errors/export_errors.csv
// and errors/tickets.csv. It runs after the tax stage.
type ExportStage struct {
	// FlagErrors exports a customer with unrated CDRs anyway (its ticket and export_errors row say
	// so). The default (false) holds the customer back from every export file until its CDRs rate.
	FlagErrors bool
	// TicketBoard and TicketPriority fill the board/name and priority/name columns of tickets.csv
	// (defaults DefaultTicketBoard and DefaultTicketPriority).
	TicketBoard, TicketPriority string
	// DetailTemplate is the description of a detail-mode line (one rated CDR); empty means
	// billing.description_template. Same placeholders; {from} = {to} = the call's usage date.
	DetailTemplate string
	// BookDir holds the invoice number book; empty means paths.staging. An auditor's rerun into
	// another folder should point it at a copy so it hands out no real numbers.
	BookDir string
}

func (ExportStage) String() string { return "export" }

var placeholderRE = regexp.MustCompile(`\{[^{}]*\}`)

// CheckDescriptionTemplate reports a placeholder the template does not know.
func CheckDescriptionTemplate(tpl string) error {
	if strings.TrimSpace(tpl) == "" {
		return fmt.Errorf("billing.description_template: must not be empty")
	}
	for _, m := range placeholderRE.FindAllString(tpl, -1) {
		known := false
		for _, p := range DescriptionPlaceholders {
			known = known || m == "{"+p+"}"
		}
		if !known {
			return fmt.Errorf("billing.description_template: unknown placeholder %s (known: {%s})",
				m, strings.Join(DescriptionPlaceholders, "} {"))
		}
	}
	return nil
}

// describeSQL is the SQL value of each placeholder, in terms of describeMacro's arguments.
var describeSQL = map[string]string{
	"description":        "description",
	"product":            "product",
	"catalog_identifier": "catalog",
	"from":               "CAST(d_from AS VARCHAR)",
	"to":                 "CAST(d_to AS VARCHAR)",
	"period":             "getvariable('period')",
	"quantity":           "quantity_text",
	"unit":               "CASE WHEN usage_type = 'data' THEN 'MB' ELSE 'min' END",
	"calls":              "format('{:,}', CAST(calls AS BIGINT))",
	"origin":             "origin",
	"destination":        "destination",
	"start":              "strftime(start, '%Y-%m-%dT%H:%M:%SZ')",
}

// describeMacro is a DuckDB macro that fills a (checked) description template: one concat of the
// template's text, as SQL string literals, and the placeholders' values (NULL reads as empty).
func describeMacro(name, tpl string) string {
	var parts []string
	lit := func(s string) {
		if s != "" {
			parts = append(parts, "'"+strings.ReplaceAll(s, "'", "''")+"'")
		}
	}
	last := 0
	for _, m := range placeholderRE.FindAllStringIndex(tpl, -1) {
		lit(tpl[last:m[0]])
		if expr, ok := describeSQL[tpl[m[0]+1:m[1]-1]]; ok {
			parts = append(parts, expr)
		} else {
			lit(tpl[m[0]:m[1]])
		}
		last = m[1]
	}
	lit(tpl[last:])
	parts = append(parts, "''")
	return fmt.Sprintf("CREATE OR REPLACE MACRO %s(description, product, catalog, d_from, d_to, usage_type, "+
		"quantity_text, calls, origin, destination, start) AS concat(%s)", name, strings.Join(parts, ", "))
}

func (s ExportStage) Run(ctx context.Context, r *Run) error {
	cfg := r.Cfg
	if cfg.Billing.FallbackSKU == "" {
		return Inputf(cfg.File, 0, 0, "billing.fallback_sku: must be set (the catalog identifier for unmapped products)")
	}
	if err := CheckDescriptionTemplate(cfg.Billing.DescriptionTemplate); err != nil {
		return Inputf(cfg.File, 0, 0, "%v", err)
	}
	detailTpl := s.DetailTemplate
	if detailTpl == "" {
		detailTpl = cfg.Billing.DescriptionTemplate
	} else if err := CheckDescriptionTemplate(detailTpl); err != nil {
		return Inputf(cfg.File, 0, 0, "detail template: %v", err)
	}
	board, priority := s.TicketBoard, s.TicketPriority
	if board == "" {
		board = DefaultTicketBoard
	}
	if priority == "" {
		priority = DefaultTicketPriority
	}
	invoiceDate := r.Period.To
	vars := []struct {
		name, cast string
		val        any
	}{
		{"hold_on_errors", "::BOOLEAN", !s.FlagErrors},
		{"invoice_date", "::DATE", invoiceDate.Format("2006-01-02")},
		{"due_date", "::DATE", invoiceDate.AddDate(0, 0, cfg.Invoices.TermsDays).Format("2006-01-02")},
		{"terms_days", "::INTEGER", cfg.Invoices.TermsDays},
		{"ticket_board", "", board},
		{"ticket_priority", "", priority},
	}
	for _, v := range vars {
		if _, err := r.DB.ExecContext(ctx, fmt.Sprintf("SET VARIABLE %s = ?%s", v.name, v.cast), v.val); err != nil {
			return fmt.Errorf("set variable %s: %w", v.name, err)
		}
	}
	for _, m := range []string{describeMacro("invoice_describe_summary", cfg.Billing.DescriptionTemplate),
		describeMacro("invoice_describe_detail", detailTpl)} {
		if _, err := r.DB.ExecContext(ctx, m); err != nil {
			return fmt.Errorf("description template: %w", err)
		}
	}
	for _, m := range []string{"invoice_export_errors.sql", "invoice_lines.sql"} {
		if err := ExecModel(ctx, r.DB, m); err != nil {
			return err
		}
	}
	if err := checkInvoiceLines(ctx, r); err != nil {
		return err
	}
	if err := ExecModel(ctx, r.DB, "invoice_missing_gl.sql"); err != nil {
		return err
	}
	bookDir := s.BookDir
	if bookDir == "" {
		bookDir = cfg.Paths.Staging
	}
	if err := assignInvoiceNumbers(ctx, r, bookDir); err != nil {
		return err
	}

	files := []struct{ name, model string }{
		{"connectwise_additions.csv", "invoice_connectwise_additions_csv.sql"},
		{"connectwise_invoices.csv", "invoice_connectwise_invoices_csv.sql"},
		{"quickbooks_invoices.csv", "invoice_quickbooks_csv.sql"},
		{"errors/export_errors.csv", "invoice_export_errors_csv.sql"},
		{"errors/tickets.csv", "invoice_tickets_csv.sql"},
	}
	for _, f := range files {
		if err := writeModelCSV(ctx, r, f.name, f.model); err != nil {
			return err
		}
	}
	if err := writeXero(ctx, r); err != nil {
		return err
	}

	// Every kind of problem needs a person's attention (exit status 3).
	rows, err := r.DB.QueryContext(ctx, "SELECT kind, sum(count)::BIGINT FROM export_errors GROUP BY kind ORDER BY kind")
	if err != nil {
		return fmt.Errorf("count export errors: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var n int64
		if err := rows.Scan(&kind, &n); err != nil {
			return err
		}
		r.NeedsReview(kind, n)
		r.Count("export_errors_"+kind, n)
	}
	return rows.Err()
}

func writeModelCSV(ctx context.Context, r *Run, name, model string, args ...any) error {
	q, err := models.Model(model)
	if err != nil {
		return err
	}
	n, err := WriteQueryCSV(ctx, r.DB, r.OutPath(name), q, args...)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	r.Count(strings.TrimSuffix(strings.TrimPrefix(name, "errors/"), ".csv")+"_rows", n)
	return nil
}

// writeXero writes xero_invoices.csv, split into xero_invoices_2.csv, _3 ... when there are more
// invoices than one Xero import takes.
func writeXero(ctx context.Context, r *Run) error {
	var invoices int64
	if err := r.DB.QueryRowContext(ctx, "SELECT count(*) FROM invoice_numbers").Scan(&invoices); err != nil {
		return fmt.Errorf("count invoices: %w", err)
	}
	for part := int64(0); part == 0 || part*xeroMaxInvoices < invoices; part++ {
		name := "xero_invoices.csv"
		if part > 0 {
			name = fmt.Sprintf("xero_invoices_%d.csv", part+1)
		}
		if err := writeModelCSV(ctx, r, name, "invoice_xero_csv.sql",
			part*xeroMaxInvoices+1, (part+1)*xeroMaxInvoices); err != nil {
			return err
		}
	}
	return nil
}

// checkInvoiceLines verifies the invariants before anything is written: quantity × unit price =
// amount on every line, and per customer the lines add up to usage_summary plus tax_lines.
func checkInvoiceLines(ctx context.Context, r *Run) error {
	var bad int64
	var example string
	err := r.DB.QueryRowContext(ctx, `
		SELECT count(*), coalesce(min(company_identifier || ' line ' || line_no), '')
		FROM invoice_lines WHERE CAST(quantity * unit_price AS DECIMAL(38, 4)) <> amount`).Scan(&bad, &example)
	if err != nil {
		return fmt.Errorf("check invoice lines: %w", err)
	}
	if bad > 0 {
		return fmt.Errorf("check invoice lines: %d lines where quantity × unit price ≠ amount (first: %s)", bad, example)
	}
	err = r.DB.QueryRowContext(ctx, `
		WITH expected AS (
		    SELECT company_id, sum(amount) AS total FROM (
		        SELECT company_id, amount FROM usage_summary
		        UNION ALL SELECT company_id, tax_amount FROM tax_lines) GROUP BY company_id),
		got AS (SELECT company_id, sum(amount) AS total FROM invoice_lines GROUP BY company_id)
		SELECT count(*), coalesce(min(CAST(company_id AS VARCHAR) || ': lines ' || CAST(g.total AS VARCHAR)
		                              || ', expected ' || CAST(e.total AS VARCHAR)), '')
		FROM expected e FULL JOIN got g USING (company_id)
		WHERE coalesce(e.total, 0) <> coalesce(g.total, 0)`).Scan(&bad, &example)
	if err != nil {
		return fmt.Errorf("check invoice totals: %w", err)
	}
	if bad > 0 {
		return fmt.Errorf("check invoice totals: %d customers whose lines do not add up to usage + tax (first: company %s)", bad, example)
	}
	return nil
}

// assignInvoiceNumbers gives every customer with lines that are not held back its invoice number
// for the period, and publishes them as table invoice_numbers (company_id, invoice_number).
func assignInvoiceNumbers(ctx context.Context, r *Run, bookDir string) error {
	book, err := OpenInvoiceBook(bookDir, r.Cfg.Invoices.NumberPrefix)
	if err != nil {
		return err
	}
	defer book.Close()
	rows, err := r.DB.QueryContext(ctx, `
		SELECT company_id, min(company_identifier) FROM invoice_lines WHERE NOT held
		GROUP BY company_id ORDER BY min(company_identifier), company_id`)
	if err != nil {
		return fmt.Errorf("invoice numbers: %w", err)
	}
	type num struct {
		id  int64
		num string
	}
	var nums []num
	for rows.Next() {
		var id int64
		var ident string
		if err := rows.Scan(&id, &ident); err != nil {
			rows.Close()
			return err
		}
		n, err := book.Number(id, ident, r.Period.Month, r.ID)
		if err != nil {
			rows.Close()
			return err
		}
		nums = append(nums, num{id, n})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if err := book.Save(); err != nil {
		return err
	}
	if _, err := r.DB.ExecContext(ctx, "CREATE OR REPLACE TABLE invoice_numbers (company_id BIGINT, invoice_number VARCHAR)"); err != nil {
		return fmt.Errorf("invoice numbers: %w", err)
	}
	// one appender load, not a statement per customer (5 000 single-row INSERTs took 2.9 s of CPU)
	loaded := make([][]any, len(nums))
	for i, n := range nums {
		loaded[i] = []any{strconv.FormatInt(n.id, 10), n.num}
	}
	if err := appendRows(ctx, r.DB, "invoice_numbers", []string{"company_id", "invoice_number"}, loaded); err != nil {
		return fmt.Errorf("invoice numbers: %w", err)
	}
	r.Count("invoices", int64(len(nums)))
	return nil
}
