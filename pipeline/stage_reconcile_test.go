package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// createRatedTables makes usage_summary and tax_lines with the columns of sql/TABLES.md.
func createRatedTables(t testing.TB, r *Run) {
	t.Helper()
	mustExec(t, r, `CREATE OR REPLACE TABLE usage_summary (company_id BIGINT, company_identifier VARCHAR,
        company_name VARCHAR, agreement_id BIGINT, jurisdiction VARCHAR, invoice_mode VARCHAR, product VARCHAR,
        catalog_identifier VARCHAR, description VARCHAR, taxable BOOLEAN, tax_class VARCHAR, gl_account VARCHAR,
        usage_type VARCHAR, calls BIGINT, billed_quantity BIGINT, amount DECIMAL(18,2))`)
	mustExec(t, r, `CREATE OR REPLACE TABLE tax_lines (company_id BIGINT, company_identifier VARCHAR,
        jurisdiction VARCHAR, tax_code VARCHAR, tax_name VARCHAR, level VARCHAR, taxable_base DECIMAL(18,2),
        tax_amount DECIMAL(18,2), catalog_identifier VARCHAR, note VARCHAR)`)
}

func addUsage(t testing.TB, r *Run, id int64, ident, product, amount string) {
	t.Helper()
	mustExec(t, r, `INSERT INTO usage_summary VALUES (?, ?, ?, NULL, 'US-FL', 'summary', ?, 'VOICE-USAGE',
        'Voice usage', true, 'voice', NULL, 'voice', 1, 60, ?::DECIMAL(18,2))`, id, ident, ident+" Inc", product, amount)
}

func addTax(t testing.TB, r *Run, id int64, ident, code, item, amount string) {
	t.Helper()
	mustExec(t, r, `INSERT INTO tax_lines VALUES (?, ?, 'US-FL', ?, ?, 'state', 0, ?::DECIMAL(18,2), ?, '')`,
		id, ident, code, code+" tax", amount, item)
}

// demoRated is the rated side of testdata/reconcile: see expected_reconciliation.csv.
func demoRated(t testing.TB, r *Run) {
	createRatedTables(t, r)
	addUsage(t, r, 101, "ACMEDENTAL", "voice-out", "100.00")
	addUsage(t, r, 102, "BLUEBIRDLAW", "voice-out", "150.00")
	addUsage(t, r, 102, "BLUEBIRDLAW", "voice-tf", "50.00")
	addTax(t, r, 102, "BLUEBIRDLAW", "FL-CST", "TAX-FL-CST", "10.00")
	addUsage(t, r, 103, "CANYONCPA", "voice-out", "300.00")
	addUsage(t, r, 104, "DELTAMED", "voice-out", "50.00")
	addTax(t, r, 104, "DELTAMED", "FL-CST", "TAX-FL-CST", "3.50")
	addUsage(t, r, 107, "GOLFCLUB", "voice-out", "800.00")
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReconcileStage: CSV and JSON posted files in one folder; within, exactly at and over the
// threshold, a credit memo netting, a missing and an unexpected customer, invoices outside the
// window, an identifier matched case-insensitively, and a negative half-cent percent.
func TestReconcileStage(t *testing.T) {
	r := newTestRun(t)
	demoRated(t, r)
	r.Cfg.Paths.Posted = "testdata/reconcile/posted"
	if err := (ReconcileStage{}).Run(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, r.OutPath("reconciliation.csv"))
	want := readFile(t, "testdata/reconcile/expected_reconciliation.csv")
	if got != want {
		t.Errorf("reconciliation.csv:\n%s\nwant:\n%s", got, want)
	}
	if len(r.Review) != 1 || r.Review[0] != (ReviewItem{"reconciliation_variance", 3}) {
		t.Errorf("review = %v, want reconciliation_variance 3", r.Review)
	}
	if r.Counts["posted_invoices_read"] != 8 || r.Counts["posted_invoices_matched"] != 6 {
		t.Errorf("counts = %v, want 8 read, 6 matched", r.Counts)
	}
	if _, err := os.Stat(r.OutPath("reconciliation_taxes.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reconciliation_taxes.csv written without posted lines: %v", err)
	}
	sum, err := ReconcileSummary(context.Background(), r.DB)
	if err != nil {
		t.Fatal(err)
	}
	if sum["ok"] != 3 || sum["flagged"] != 1 || sum["missing_posted"] != 1 || sum["unexpected_posted"] != 1 || len(sum) != 4 {
		t.Errorf("summary %v", sum)
	}
	header := strings.SplitN(got, "\n", 2)[0]
	if header != strings.Join(ReconciliationColumns, ",") {
		t.Errorf("header %q", header)
	}
}

// TestReconcileThreshold moves the threshold around ACMEDENTAL (+1.00 %) and CANYONCPA (+1.01 %).
func TestReconcileThreshold(t *testing.T) {
	for _, tc := range []struct {
		threshold    float64
		acme, canyon string
	}{
		{0.99, "flagged", "flagged"},
		{1.0, "ok", "flagged"},
		{1.01, "ok", "ok"},
		{0.5, "flagged", "flagged"},
	} {
		r := newTestRun(t)
		demoRated(t, r)
		r.Cfg.Paths.Posted = "testdata/reconcile/posted"
		r.Cfg.Billing.VarianceThresholdPercent = tc.threshold
		if err := (ReconcileStage{}).Run(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		rows, err := r.DB.Query("SELECT company_identifier, status FROM reconciliation")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			got[k] = v
		}
		rows.Close()
		if got["ACMEDENTAL"] != tc.acme || got["CANYONCPA"] != tc.canyon {
			t.Errorf("threshold %v: ACMEDENTAL %s CANYONCPA %s, want %s %s", tc.threshold,
				got["ACMEDENTAL"], got["CANYONCPA"], tc.acme, tc.canyon)
		}
		// GOLFCLUB is -0.13 %: ok at every threshold above it.
		if wantGolf := map[bool]string{true: "flagged", false: "ok"}[tc.threshold < 0.13]; got["GOLFCLUB"] != wantGolf {
			t.Errorf("threshold %v: GOLFCLUB %s", tc.threshold, got["GOLFCLUB"])
		}
	}
}

// TestReconcileSkips: no posted folder, and posted invoices all outside the period's window.
func TestReconcileSkips(t *testing.T) {
	for name, setup := range map[string]func(dir string) string{
		"no folder": func(dir string) string { return filepath.Join(dir, "nope") },
		"empty folder": func(dir string) string {
			os.MkdirAll(filepath.Join(dir, "posted"), 0o755)
			return filepath.Join(dir, "posted")
		},
		"other period": func(dir string) string {
			p := filepath.Join(dir, "sep.csv")
			os.WriteFile(p, []byte("invoiceNumber,company/identifier,date,subtotal,salesTax,total\nX1,ACMEDENTAL,2025-10-01,1.00,0.00,1.00\n"), 0o644)
			return p
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := newTestRun(t)
			demoRated(t, r)
			err := (ReconcileStage{Posted: setup(t.TempDir())}).Run(context.Background(), r)
			if !errors.Is(err, ErrSkip) {
				t.Fatalf("err = %v, want ErrSkip", err)
			}
			if _, err := os.Stat(r.OutPath("reconciliation.csv")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("reconciliation.csv written by a skipped stage")
			}
			if len(r.Review) != 0 {
				t.Errorf("review %v", r.Review)
			}
		})
	}
}

// TestReconcileTaxes: invoice-line CSV with tax items for BLUEBIRDLAW, a credit memo's lines
// netting; a tax item rated but not posted, one posted but not rated.
func TestReconcileTaxes(t *testing.T) {
	r := newTestRun(t)
	demoRated(t, r)
	addTax(t, r, 102, "BLUEBIRDLAW", "FED-USF", "TAX-FED-USF", "2.00")
	mustExec(t, r, `INSERT INTO ref_tax_rates VALUES ('US', 'E911', 'E911 fee', 'county', 'all', NULL, 0.40, 100, [],
        'TAX-E911', '2025-01-01', NULL, 'tax_rates.csv', 2)`)
	dir := t.TempDir()
	copyFile(t, "testdata/reconcile/posted/invoices.json", filepath.Join(dir, "invoices.json"))
	os.WriteFile(filepath.Join(dir, "lines.csv"), []byte(`invoiceNumber,type,catalogItem/identifier,extPrice
INV-2,Standard,VOICE-USAGE,226.10
INV-2,Standard,TAX-FL-CST,11.90
INV-2,Standard,TAX-E911,0.40
INV-2,Standard,USAGE-OTHER,11.60
CM-1,CreditMemo,VOICE-USAGE,38.10
CM-1,CreditMemo,TAX-FL-CST,-1.90
`), 0o644)
	if err := (ReconcileStage{Posted: dir}).Run(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, r.OutPath("reconciliation_taxes.csv"))
	want := `company_identifier,period,catalog_identifier,rated_tax,posted_tax,variance_amount,variance_percent,status,invoice_numbers
BLUEBIRDLAW,2025-10,TAX-E911,0.00,0.40,0.40,,unexpected_posted,INV-2
BLUEBIRDLAW,2025-10,TAX-FED-USF,2.00,0.00,-2.00,-100.00,missing_posted,
BLUEBIRDLAW,2025-10,TAX-FL-CST,10.00,10.00,0.00,0.00,ok,CM-1;INV-2
`
	if got != want {
		t.Errorf("reconciliation_taxes.csv:\n%s\nwant:\n%s", got, want)
	}
	// BLUEBIRDLAW's rated total is now 212.00 against 210.00 posted: -0.94 %, ok.
	var status, pct string
	if err := r.DB.QueryRow(`SELECT status, variance_percent::VARCHAR FROM reconciliation WHERE company_identifier = 'BLUEBIRDLAW'`).Scan(&status, &pct); err != nil {
		t.Fatal(err)
	}
	if status != "ok" || pct != "-0.94" {
		t.Errorf("BLUEBIRDLAW %s %s, want ok -0.94", status, pct)
	}
	var found bool
	for _, it := range r.Review {
		if it == (ReviewItem{"reconciliation_tax_variance", 2}) {
			found = true
		}
	}
	if !found {
		t.Errorf("review %v: want reconciliation_tax_variance 2", r.Review)
	}
	f, err := excelize.OpenFile(r.OutPath("reconciliation.xlsx"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := strings.Join(f.GetSheetList(), ","); got != "reconciliation,reconciliation_taxes" {
		t.Errorf("sheets %s", got)
	}
	if v, _ := f.GetCellValue("reconciliation_taxes", "C4"); v != "TAX-FL-CST" {
		t.Errorf("reconciliation_taxes!C4 = %q", v)
	}
	if panes, _ := f.GetPanes("reconciliation_taxes"); !panes.Freeze || panes.YSplit != 1 {
		t.Errorf("reconciliation_taxes panes %+v", panes)
	}
	// the same invoice's lines in a second file are refused
	os.WriteFile(filepath.Join(dir, "lines2.csv"), []byte("invoiceNumber,catalogItem/identifier,extPrice\nINV-2,TAX-FL-CST,11.90\n"), 0o644)
	if _, err := ReadPosted(dir); !IsInputError(err) || !strings.Contains(err.Error(), "already read") {
		t.Errorf("duplicate lines: %v", err)
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, []byte(readFile(t, from)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReconcileXLSX reads the workbook back cell by cell.
func TestReconcileXLSX(t *testing.T) {
	r := newTestRun(t)
	demoRated(t, r)
	r.Cfg.Paths.Posted = "testdata/reconcile/posted"
	if err := (ReconcileStage{}).Run(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	path := r.OutPath("reconciliation.xlsx")
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); len(got) != 1 || got[0] != "reconciliation" {
		t.Fatalf("sheets %v", got)
	}
	const sh = "reconciliation"
	panes, err := f.GetPanes(sh)
	if err != nil {
		t.Fatal(err)
	}
	if !panes.Freeze || panes.YSplit != 1 || panes.XSplit != 0 || panes.TopLeftCell != "A2" {
		t.Errorf("panes %+v: want the header row frozen", panes)
	}
	rows, err := f.GetRows(sh, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	csvLines := strings.Split(strings.TrimSpace(readFile(t, "testdata/reconcile/expected_reconciliation.csv")), "\n")
	if len(rows) != len(csvLines) {
		t.Fatalf("%d rows, want %d", len(rows), len(csvLines))
	}
	for i, line := range csvLines {
		want := strings.Split(line, ",")
		for j, w := range want {
			got := ""
			if j < len(rows[i]) {
				got = rows[i][j]
			}
			// raw values drop trailing zeros: 100.00 is stored as the number 100
			if i > 0 && isAmountColumn(ReconciliationColumns[j]) && w != "" {
				if !sameNumber(got, w) {
					t.Errorf("row %d %s = %q, want %s", i+1, ReconciliationColumns[j], got, w)
				}
				continue
			}
			if got != w {
				t.Errorf("row %d col %d = %q, want %q", i+1, j+1, got, w)
			}
		}
	}
	for _, tc := range []struct {
		cell      string
		number    bool
		highlight bool
		typ       excelize.CellType
	}{
		{"A2", false, false, excelize.CellTypeSharedString}, // ACMEDENTAL ok
		{"C2", true, false, excelize.CellTypeUnset},         // rated_subtotal, a number
		{"J2", true, false, excelize.CellTypeUnset},         // variance_percent
		{"C4", true, true, excelize.CellTypeUnset},          // CANYONCPA flagged
		{"K4", false, true, excelize.CellTypeSharedString},  // its status
		{"I5", true, true, excelize.CellTypeUnset},          // DELTAMED missing_posted
		{"J6", true, true, excelize.CellTypeUnset},          // ECHOVET's empty percent keeps the style
		{"L7", false, false, excelize.CellTypeSharedString}, // GOLFCLUB ok
	} {
		id, err := f.GetCellStyle(sh, tc.cell)
		if err != nil {
			t.Fatal(err)
		}
		st, err := f.GetStyle(id)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.NumFmt == XLSXAmountFormat; got != tc.number {
			t.Errorf("%s: number format %d", tc.cell, st.NumFmt)
		}
		hl := st.Fill.Pattern == 1 && len(st.Fill.Color) == 1 && strings.EqualFold(st.Fill.Color[0], "#"+XLSXHighlight) ||
			st.Fill.Pattern == 1 && len(st.Fill.Color) == 1 && strings.EqualFold(st.Fill.Color[0], XLSXHighlight)
		if hl != tc.highlight {
			t.Errorf("%s: fill %+v, highlight want %v", tc.cell, st.Fill, tc.highlight)
		}
		if tc.number && tc.cell != "J6" {
			typ, err := f.GetCellType(sh, tc.cell)
			if err != nil {
				t.Fatal(err)
			}
			if typ != excelize.CellTypeNumber && typ != excelize.CellTypeUnset {
				t.Errorf("%s: cell type %v, want a number", tc.cell, typ)
			}
			v, _ := f.GetCellValue(sh, tc.cell)
			if !strings.Contains(v, ".") {
				t.Errorf("%s: formatted value %q lacks 2 decimals", tc.cell, v)
			}
		}
	}
	// header style: bold
	id, _ := f.GetCellStyle(sh, "B1")
	if st, _ := f.GetStyle(id); st.Font == nil || !st.Font.Bold {
		t.Errorf("header not bold")
	}
	// the same reports give the same bytes
	if err := WriteReconciliationXLSX(context.Background(), r.DB, path, []xlsxSheet{{Name: "reconciliation",
		Table: "reconciliation", Columns: ReconciliationColumns,
		Order: "company_identifier, status, company_id NULLS LAST, invoice_numbers"}}); err != nil {
		t.Fatal(err)
	}
	if second, _ := os.ReadFile(path); !bytes.Equal(first, second) {
		t.Errorf("reconciliation.xlsx differs between two writes of the same data")
	}
}

func sameNumber(got, want string) bool {
	a, err1 := parseAmount(got)
	b, err2 := parseAmount(want)
	return err1 == nil && err2 == nil && a.Equal(b)
}

// TestReconcileMatching: company/id wins over the identifier; an unknown id is unexpected even
// when its identifier is a rated one's; lines tied to nothing are refused.
func TestReconcileMatching(t *testing.T) {
	r := newTestRun(t)
	createRatedTables(t, r)
	addUsage(t, r, 101, "ACMEDENTAL", "voice-out", "100.00")
	addUsage(t, r, 102, "BLUEBIRDLAW", "voice-out", "50.00")
	p := writeTemp(t, "inv.csv", `invoiceNumber,company/id,company/identifier,date,subtotal,salesTax,total
A1,101,ACME-OLD-NAME,2025-11-01,100.00,0.00,100.00
B1,999,BLUEBIRDLAW,2025-11-01,50.00,0.00,50.00
`)
	if err := (ReconcileStage{Posted: p}).Run(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, r.OutPath("reconciliation.csv"))
	want := `company_identifier,period,rated_subtotal,posted_subtotal,rated_tax,posted_tax,rated_total,posted_total,variance_amount,variance_percent,status,invoice_numbers
ACMEDENTAL,2025-10,100.00,100.00,0.00,0.00,100.00,100.00,0.00,0.00,ok,A1
BLUEBIRDLAW,2025-10,50.00,0.00,0.00,0.00,50.00,0.00,-50.00,-100.00,missing_posted,
BLUEBIRDLAW,2025-10,0.00,50.00,0.00,0.00,0.00,50.00,50.00,,unexpected_posted,B1
`
	if got != want {
		t.Errorf("reconciliation.csv:\n%s\nwant:\n%s", got, want)
	}

	r = newTestRun(t)
	createRatedTables(t, r)
	addUsage(t, r, 101, "ACMEDENTAL", "voice-out", "100.00")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "inv.csv"), []byte("invoiceNumber,company/identifier,date,subtotal,salesTax,total\nA1,ACMEDENTAL,2025-11-01,1,0,1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "lines.csv"), []byte("invoiceNumber,catalogItem/identifier,extPrice\nA1,X,1\nZ9,TAX,0.07\n"), 0o644)
	err := (ReconcileStage{Posted: dir}).Run(context.Background(), r)
	var ie *InputError
	if !errors.As(err, &ie) || ie.Line != 3 || !strings.Contains(err.Error(), "Z9") {
		t.Errorf("orphan line: %v", err)
	}
}
