package pipeline

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/shopspring/decimal"
)

// The export files' column contracts (CONTRACT.md "Outputs"; QuickBooks and Xero: their import
// templates as the export stage writes them). Preflight step 7 checks each published file's
// header against these.
var (
	UsageDetailColumns = []string{"cdr_id", "account", "company_identifier", "usage_date", "start", "direction", "origin",
		"destination", "matched_prefix", "product", "catalog_identifier", "duration", "billed_quantity", "amount",
		"source_file", "source_line"}
	UsageSummaryColumns = []string{"company_id", "company_identifier", "product", "catalog_identifier", "description",
		"calls", "billed_quantity", "amount", "usage_period"}
	TaxLinesColumns = []string{"company_identifier", "jurisdiction", "tax_code", "tax_name", "level", "taxable_base",
		"tax_amount", "catalog_identifier", "note"}
	ConnectWiseAdditionsColumns = []string{"agreement/id", "company/id", "company/identifier", "product/identifier",
		"quantity", "unitPrice", "billCustomer", "taxableFlag", "effectiveDate", "cancelledDate", "invoiceDescription"}
	ConnectWiseInvoicesColumns = []string{"invoiceNumber", "type", "company/id", "company/identifier", "date",
		"catalogItem/identifier", "description", "quantity", "price", "extPrice", "taxableFlag"}
	QuickBooksColumns = []string{"Invoice no", "Customer", "Invoice date", "Due date", "Item (Product/Service)",
		"Item Description", "Item Quantity", "Item Rate", "Item Amount", "Item tax code", "Terms", "Memo", "Service Date"}
	XeroColumns = []string{"*ContactName", "*InvoiceNumber", "*InvoiceDate", "*DueDate", "*Description", "*Quantity",
		"*UnitAmount", "*AccountCode", "*TaxType"}
	ExportErrorColumns = []string{"kind", "account", "key", "detail", "source_file", "source_line", "count"}
	TicketColumns      = []string{"summary", "company/id", "company/identifier", "board/name", "priority/name",
		"initialDescription", "account", "kinds", "count", "source_file", "source_lines"}
)

// csvTable is a CSV file read whole.
type csvTable struct {
	name   string
	header []string
	rows   [][]string
	col    map[string]int
}

func (t *csvTable) get(row []string, name string) string {
	if i, ok := t.col[name]; ok && i < len(row) {
		return row[i]
	}
	return ""
}

// readCSVFile reads a CSV file with a header (nil, nil when it does not exist).
func readCSVFile(path string) (*csvTable, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		return nil, err
	}
	t := &csvTable{name: filepath.Base(path), col: map[string]int{}}
	if len(recs) > 0 {
		t.header, t.rows = recs[0], recs[1:]
	}
	for i, h := range t.header {
		t.col[h] = i
	}
	return t, nil
}

// readExportCSV reads a published file and checks its header starts with the contract's columns
// (extra columns may follow, CONTRACT.md: "new columns at the end"). The QuickBooks and Xero
// templates are matched by name, in any order (their importers map columns by name).
func readExportCSV(dir, name string, want []string) (*csvTable, error) {
	ordered := !strings.HasPrefix(name, "quickbooks") && !strings.HasPrefix(name, "xero")
	t, err := readCSVFile(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if t == nil {
		return nil, fmt.Errorf("%s: not written", name)
	}
	t.name = name
	for _, w := range want {
		if _, ok := t.col[w]; !ok {
			return nil, fmt.Errorf("%s: column %q missing (header: %s)", name, w, strings.Join(t.header, ","))
		}
	}
	if ordered && (len(t.header) < len(want) || !slices.Equal(t.header[:len(want)], want)) {
		return nil, fmt.Errorf("%s: columns out of the contract's order (header: %s)", name, strings.Join(t.header, ","))
	}
	return t, nil
}

// exportProblem is the first offending row of a file.
type exportProblem struct {
	file string
	line int
	msg  string
}

func (p exportProblem) String() string { return fmt.Sprintf("%s:%d: %s", p.file, p.line, p.msg) }

// exportCheck is the result of validating the published files.
type exportCheck struct {
	files    []string // "name: N rows, M columns"
	lines    int      // invoice lines checked for quantity × price = amount
	problems []exportProblem
	totals   map[string]map[string]decimal.Decimal // file -> company -> total
	expected map[string]decimal.Decimal            // company -> usage_summary + tax_lines
	excluded map[string][]string                   // file -> companies not expected there, and why
}

func dec(s string) (decimal.Decimal, error) {
	if s == "" {
		return decimal.Zero, nil
	}
	return decimal.NewFromString(s)
}

// ValidateExports checks the period files in dir: every file written with its contract's columns,
// quantity × price = amount on every invoice line, and per customer the same total in
// connectwise_additions.csv, connectwise_invoices.csv, quickbooks_invoices.csv and
// xero_invoices*.csv as usage_summary.csv plus tax_lines.csv (customers held back, or without an
// agreement for the additions, are listed in export_errors.csv and expected absent).
func validateExports(dir string, wantManifest bool) (*exportCheck, error) {
	c := &exportCheck{totals: map[string]map[string]decimal.Decimal{}, expected: map[string]decimal.Decimal{}, excluded: map[string][]string{}}
	bad := func(file string, line int, format string, args ...any) {
		c.problems = append(c.problems, exportProblem{file, line, fmt.Sprintf(format, args...)})
	}
	specs := []struct {
		name string
		cols []string
	}{
		{"usage_detail.csv", UsageDetailColumns},
		{"usage_summary.csv", UsageSummaryColumns},
		{"tax_lines.csv", TaxLinesColumns},
		{"connectwise_additions.csv", ConnectWiseAdditionsColumns},
		{"connectwise_invoices.csv", ConnectWiseInvoicesColumns},
		{"quickbooks_invoices.csv", QuickBooksColumns},
		{"xero_invoices.csv", XeroColumns},
	}
	tables := map[string]*csvTable{}
	for _, s := range specs {
		t, err := readExportCSV(dir, s.name, s.cols)
		if err != nil {
			bad(s.name, 1, "%v", strings.TrimPrefix(err.Error(), s.name+": "))
			continue
		}
		tables[s.name] = t
		c.files = append(c.files, fmt.Sprintf("%s %d rows", s.name, len(t.rows)))
	}
	// further Xero files (more than 500 invoices)
	for k := 2; ; k++ {
		name := fmt.Sprintf("xero_invoices_%d.csv", k)
		t, err := readExportCSV(dir, name, XeroColumns)
		if err != nil {
			break
		}
		if x := tables["xero_invoices.csv"]; x != nil {
			x.rows = append(x.rows, t.rows...)
		}
		c.files = append(c.files, fmt.Sprintf("%s %d rows", name, len(t.rows)))
	}
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil && wantManifest {
		bad("manifest.json", 0, "not written")
	}
	if len(c.problems) > 0 {
		return c, nil
	}
	add := func(m map[string]decimal.Decimal, k string, v decimal.Decimal) {
		m[k] = m[k].Add(v)
	}
	sum := func(file string) map[string]decimal.Decimal {
		if c.totals[file] == nil {
			c.totals[file] = map[string]decimal.Decimal{}
		}
		return c.totals[file]
	}
	// expected totals
	us := tables["usage_summary.csv"]
	for i, row := range us.rows {
		a, err := dec(us.get(row, "amount"))
		if err != nil {
			bad(us.name, i+2, "amount %q", us.get(row, "amount"))
			continue
		}
		add(c.expected, us.get(row, "company_identifier"), a)
	}
	tl := tables["tax_lines.csv"]
	for i, row := range tl.rows {
		a, err := dec(tl.get(row, "tax_amount"))
		if err != nil {
			bad(tl.name, i+2, "tax_amount %q", tl.get(row, "tax_amount"))
			continue
		}
		add(c.expected, tl.get(row, "company_identifier"), a)
	}
	// who is expected absent: export_errors.csv
	held := map[string]bool{}
	noAgreement := map[string]bool{}
	if ee, err := readExportCSV(dir, "errors/export_errors.csv", ExportErrorColumns); err == nil {
		for _, row := range ee.rows {
			switch ee.get(row, "kind") {
			case "held_customer":
				held[ee.get(row, "key")] = true
			case "missing_agreement":
				noAgreement[ee.get(row, "key")] = true
			}
		}
	}
	// line checks: quantity × price = amount (2 decimals)
	line := func(t *csvTable, i int, row []string, qtyCol, priceCol, amountCol string) (decimal.Decimal, bool) {
		q, err1 := dec(t.get(row, qtyCol))
		p, err2 := dec(t.get(row, priceCol))
		if err1 != nil || err2 != nil {
			bad(t.name, i+2, "%s %q or %s %q is not a number", qtyCol, t.get(row, qtyCol), priceCol, t.get(row, priceCol))
			return decimal.Zero, false
		}
		ext := q.Mul(p)
		if amountCol != "" {
			a, err := dec(t.get(row, amountCol))
			if err != nil || !a.Equal(ext) {
				bad(t.name, i+2, "%s %s × %s %s = %s, but %s is %s", qtyCol, t.get(row, qtyCol), priceCol, t.get(row, priceCol),
					ext.StringFixed(2), amountCol, t.get(row, amountCol))
				return decimal.Zero, false
			}
		}
		c.lines++
		return ext, true
	}
	ad := tables["connectwise_additions.csv"]
	for i, row := range ad.rows {
		if ext, ok := line(ad, i, row, "quantity", "unitPrice", ""); ok {
			add(sum(ad.name), ad.get(row, "company/identifier"), ext)
		}
	}
	inv := tables["connectwise_invoices.csv"]
	byNumber := map[string]string{}
	for i, row := range inv.rows {
		byNumber[inv.get(row, "invoiceNumber")] = inv.get(row, "company/identifier")
		if ext, ok := line(inv, i, row, "quantity", "price", "extPrice"); ok {
			add(sum(inv.name), inv.get(row, "company/identifier"), ext)
		}
	}
	qb := tables["quickbooks_invoices.csv"]
	for i, row := range qb.rows {
		who, ok := byNumber[qb.get(row, "Invoice no")]
		if !ok {
			bad(qb.name, i+2, "invoice %s is not in connectwise_invoices.csv", qb.get(row, "Invoice no"))
			continue
		}
		if ext, ok := line(qb, i, row, "Item Quantity", "Item Rate", "Item Amount"); ok {
			add(sum(qb.name), who, ext)
		}
	}
	xe := tables["xero_invoices.csv"]
	for i, row := range xe.rows {
		who, ok := byNumber[xe.get(row, "*InvoiceNumber")]
		if !ok {
			bad("xero_invoices.csv", i+2, "invoice %s is not in connectwise_invoices.csv", xe.get(row, "*InvoiceNumber"))
			continue
		}
		if ext, ok := line(xe, i, row, "*Quantity", "*UnitAmount", ""); ok {
			add(sum("xero_invoices.csv"), who, ext)
		}
	}
	// totals per customer
	companies := make([]string, 0, len(c.expected))
	for k := range c.expected {
		companies = append(companies, k)
	}
	slices.Sort(companies)
	for _, file := range []string{ad.name, inv.name, qb.name, "xero_invoices.csv"} {
		got := sum(file)
		for _, who := range companies {
			want := c.expected[who]
			absent := held[who] || (file == ad.name && noAgreement[who])
			if absent {
				reason := "held back"
				if !held[who] {
					reason = "no agreement_id"
				}
				c.excluded[file] = append(c.excluded[file], who+" ("+reason+")")
				if _, present := got[who]; present {
					bad(file, 0, "%s is %s but has lines", who, reason)
				}
				continue
			}
			if !got[who].Equal(want) {
				bad(file, 0, "%s totals %s, usage_summary + tax_lines %s", who, got[who].StringFixed(2), want.StringFixed(2))
			}
		}
		for who := range got {
			if _, ok := c.expected[who]; !ok {
				bad(file, 0, "%s has lines but no usage_summary or tax_lines row", who)
			}
		}
	}
	return c, nil
}

// Step 7: the export files are written and valid.
func (pr *preflightRun) checkExports(ctx context.Context) error {
	st := pr.rep.step(7)
	if !pr.ready(7, "export") {
		return nil
	}
	dir := pr.filesDir()
	if dir == "" {
		st.add("the job wrote no export files for %s", pr.period)
		st.raise(PreflightFail, "Rerun the preflight once the job runs through.")
		return nil
	}
	c, err := validateExports(dir, pr.failed == "")
	if err != nil {
		return err
	}
	pr.reportExports(st, c)
	return nil
}

func (pr *preflightRun) reportExports(st *PreflightStep, c *exportCheck) {
	if len(c.files) > 0 {
		st.add("written to dry-run/%s/ with the contract's columns: %s", pr.period, strings.Join(c.files, ", "))
	}
	if c.lines > 0 {
		st.add("quantity × price = amount on %d invoice lines (additions and Xero: the line total)", c.lines)
	}
	total := decimal.Zero
	for _, v := range c.expected {
		total = total.Add(v)
	}
	if len(c.expected) == 0 && len(c.problems) == 0 {
		st.add("no invoice line in %s: the exports were not exercised", pr.period)
		st.raise(PreflightWarn, "Run the preflight on a period with CDRs.")
	}
	if len(c.expected) > 0 {
		st.add("per-customer totals: %d customers, %s in all (usage_summary + tax_lines); connectwise_additions, connectwise_invoices, quickbooks and xero checked against them",
			len(c.expected), total.StringFixed(2))
	}
	for _, f := range []string{"connectwise_additions.csv", "connectwise_invoices.csv", "quickbooks_invoices.csv", "xero_invoices.csv"} {
		if ex := c.excluded[f]; len(ex) > 0 {
			st.add("not in %s, as export_errors.csv says: %s", f, strings.Join(ex, ", "))
		}
	}
	for i, p := range c.problems {
		if i >= preflightFirst {
			st.add("... %d problems in all", len(c.problems))
			break
		}
		st.add("%s", p)
	}
	if len(c.problems) > 0 {
		st.raise(PreflightFail, "An export file does not match its contract or the rated totals: do not import it; report this as a bug with the dry-run files.")
	}
}
