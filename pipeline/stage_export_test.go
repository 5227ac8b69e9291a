package pipeline

import (
	"cdrbill/pipeline/testkit"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

// exportFile describes how to read the money of one export file.
type exportFile struct {
	name                string
	key                 string // column naming the customer or its invoice
	qty, price, ext     string // ext "" = the file has no extended amount column
	byInvoice           bool   // key is an invoice number (mapped to the company through connectwise_invoices.csv)
	decimalCols         []string
	exactlyTwoDecimals  []string
	requiredHeaderFirst string
}

var exportFiles = []exportFile{
	{name: "connectwise_additions.csv", key: "company/identifier", qty: "quantity", price: "unitPrice",
		exactlyTwoDecimals: []string{"quantity", "unitPrice"}},
	{name: "connectwise_invoices.csv", key: "company/identifier", qty: "quantity", price: "price", ext: "extPrice",
		exactlyTwoDecimals: []string{"quantity", "price", "extPrice"}},
	{name: "quickbooks_invoices.csv", key: "Invoice no", qty: "Item Quantity", price: "Item Rate", ext: "Item Amount",
		byInvoice: true, exactlyTwoDecimals: []string{"Item Quantity", "Item Rate", "Item Amount"}},
	{name: "xero_invoices.csv", key: "*InvoiceNumber", qty: "*Quantity", price: "*UnitAmount",
		byInvoice: true, exactlyTwoDecimals: []string{"*Quantity", "*UnitAmount"}},
}

// exportTotals reads one export file, checks quantity × price = extended amount (2 decimals) on
// every row and returns the total per company identifier.
func exportTotals(t *testing.T, r *Run, f exportFile, invoiceCompany map[string]string) map[string]string {
	t.Helper()
	_, rows := testkit.ReadCSV(t, r.OutPath(f.name))
	sums := map[string]decimal.Decimal{}
	for i, row := range rows {
		for _, c := range f.exactlyTwoDecimals {
			if v := row[c]; !twoDecimals(v) {
				t.Errorf("%s row %d: %s = %q, want 2 decimals", f.name, i+2, c, v)
			}
		}
		qty := decimal.RequireFromString(row[f.qty])
		price := decimal.RequireFromString(row[f.price])
		ext := qty.Mul(price)
		if f.ext != "" {
			got := decimal.RequireFromString(row[f.ext])
			if !got.Equal(ext.Round(2)) || !ext.Equal(ext.Round(2)) {
				t.Errorf("%s row %d: %s × %s = %s, file says %s", f.name, i+2, qty, price, ext, got)
			}
		}
		key := row[f.key]
		if f.byInvoice {
			company, ok := invoiceCompany[key]
			if !ok {
				t.Errorf("%s row %d: invoice %s not in connectwise_invoices.csv", f.name, i+2, key)
			}
			key = company
		}
		sums[key] = sums[key].Add(ext)
	}
	out := map[string]string{}
	for k, v := range sums {
		out[k] = v.StringFixed(2)
	}
	return out
}

func twoDecimals(s string) bool {
	i := strings.IndexByte(s, '.')
	return i >= 0 && len(s)-i-1 == 2
}

// invoiceCompanies maps invoice numbers to company identifiers (connectwise_invoices.csv), and
// checks every invoice has one company.
func invoiceCompanies(t *testing.T, r *Run) map[string]string {
	t.Helper()
	_, rows := testkit.ReadCSV(t, r.OutPath("connectwise_invoices.csv"))
	m := map[string]string{}
	for _, row := range rows {
		num, company := row["invoiceNumber"], row["company/identifier"]
		if prev, ok := m[num]; ok && prev != company {
			t.Errorf("invoice %s used for %s and %s", num, prev, company)
		}
		m[num] = company
		if row["type"] != "Miscellaneous" {
			t.Errorf("invoice %s type %q", num, row["type"])
		}
	}
	return m
}

// expectedTotals is usage_summary + tax_lines per company identifier, from the tables.
func expectedTotals(t *testing.T, r *Run, where string) map[string]string {
	t.Helper()
	rows, err := r.DB.QueryContext(context.Background(), `
		SELECT company_identifier, CAST(sum(amount) AS VARCHAR) FROM (
			SELECT company_id, company_identifier, amount FROM usage_summary
			UNION ALL SELECT company_id, company_identifier, tax_amount FROM tax_lines) x
		WHERE `+where+` GROUP BY company_identifier`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		m[k] = v
	}
	return m
}

// TestExportTotals checks the contract's invariant on each export file, in summary and detail
// mode, with customers held back (default) or flagged: per customer the file totals equal
// usage_summary + tax_lines (hand-computed here), and quantity × price = amount on every line.
func TestExportTotals(t *testing.T) {
	cases := []struct {
		name         string
		mode         string
		stage        ExportStage
		want         map[string]string // every file except the additions
		wantAddition map[string]string // BETA has no agreement
	}{
		{"summary/held", "summary", ExportStage{},
			map[string]string{"ACME": "5.29", "BETA": "1.60"}, map[string]string{"ACME": "5.29"}},
		{"detail/held", "detail", ExportStage{},
			map[string]string{"ACME": "5.29", "BETA": "1.60"}, map[string]string{"ACME": "5.29"}},
		{"summary/flagged", "summary", ExportStage{FlagErrors: true},
			map[string]string{"ACME": "5.29", "BETA": "1.60", "CHARLIE": "5.40"},
			map[string]string{"ACME": "5.29", "CHARLIE": "5.40"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newTestRun(t)
			r.Cfg.Paths.Staging = t.TempDir()
			r.Cfg.Billing.InvoiceMode = c.mode
			createInvoiceInputs(t, r)
			runInvoiceStages(t, r, c.stage)

			where := "company_id <> 103"
			if c.stage.FlagErrors {
				where = "true"
			}
			if got := expectedTotals(t, r, where); !maps.Equal(got, c.want) {
				t.Fatalf("usage_summary + tax_lines = %v, hand-computed %v", got, c.want)
			}
			inv := invoiceCompanies(t, r)
			for _, f := range exportFiles {
				want := c.want
				if f.name == "connectwise_additions.csv" {
					want = c.wantAddition
				}
				if got := exportTotals(t, r, f, inv); !maps.Equal(got, want) {
					t.Errorf("%s totals = %v, want %v", f.name, got, want)
				}
			}
		})
	}
}

// TestDetailAllocation checks the detail lines' cents: each CDR's amount rounded down, the cents
// left over to the largest dropped fractions (ties: lowest cdr_id).
func TestDetailAllocation(t *testing.T) {
	r := newTestRun(t)
	r.Cfg.Paths.Staging = t.TempDir()
	r.Cfg.Billing.InvoiceMode = "detail"
	createInvoiceInputs(t, r)
	// DELTA: seven CDRs of 0.0049: Σ 0.0343 → 0.03, so the first three cdr_ids get a cent.
	mustExec(t, r, `INSERT INTO ref_customers VALUES ('delta1', 104, 'DELTA', 'Delta', 9004, 'std', 'US-FL', 1, [], NULL, '2025-01-01', NULL, 'customers.csv', 5)`)
	for _, id := range []string{"d7", "d6", "d5", "d4", "d3", "d2", "d1"} {
		mustExec(t, r, `INSERT INTO rated_usage SELECT ?, 'delta1', 104, 'DELTA', 'Delta', 9004, 'US-FL', NULL,
			DATE '2025-10-20', TIMESTAMP '2025-10-20 10:00:00', 'outbound', '+13055550100', '+13055550123',
			'voice', 'std', 'VOICE-OUT', '+1305', '', 6, 6, 6, 0.0049, 4, 'pbx1/d.csv', 1`, id)
	}
	runInvoiceStages(t, r, ExportStage{})
	rows, err := r.DB.Query(`SELECT company_identifier, CAST(amount AS VARCHAR) FROM invoice_lines
		WHERE kind = 'usage' AND product = 'VOICE-OUT' ORDER BY company_identifier, line_no`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string][]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		got[k] = append(got[k], v)
	}
	want := map[string]string{
		"ACME":    "0.72 0.01 0.01 1.00",                // 0.7167 0.0125 0.0125 1.0000 → Σ 1.74
		"BETA":    "0.33 0.33 0.34",                     // 0.333 0.333 0.334 → 1.00
		"CHARLIE": "5.00",                               // held, but its lines are built
		"DELTA":   "0.01 0.01 0.01 0.00 0.00 0.00 0.00", // same start: ordered by cdr_id d1..d7
	}
	for k, w := range want {
		if g := strings.Join(got[k], " "); g != w {
			t.Errorf("%s detail amounts = %s, want %s", k, g, w)
		}
	}
}

// TestUnmappedProduct: products with no row or an empty catalog_identifier are billed on the
// fallback SKU and listed in the error queue; every kind of problem needs review.
func TestUnmappedProduct(t *testing.T) {
	r := newTestRun(t)
	r.Cfg.Paths.Staging = t.TempDir()
	createInvoiceInputs(t, r)
	runInvoiceStages(t, r, ExportStage{})

	_, summary := testkit.ReadCSV(t, r.OutPath("usage_summary.csv"))
	skus := map[string]string{}
	for _, row := range summary {
		skus[row["company_identifier"]+"/"+row["product"]] = row["catalog_identifier"]
	}
	for k, want := range map[string]string{"ACME/VOICE-INTL": "USAGE-OTHER", "BETA/FAX": "USAGE-OTHER",
		"ACME/VOICE-OUT": "CW-VOICE-OUT", "ACME/DATA": "CW-DATA"} {
		if skus[k] != want {
			t.Errorf("%s catalog_identifier = %q, want %q", k, skus[k], want)
		}
	}
	header, errs := testkit.ReadCSV(t, r.OutPath("errors/export_errors.csv"))
	if strings.Join(header, ",") != "kind,account,key,detail,source_file,source_line,count" {
		t.Errorf("export_errors header %v", header)
	}
	var got []string
	for _, e := range errs {
		got = append(got, e["kind"]+"|"+e["account"]+"|"+e["key"]+"|"+e["source_file"]+":"+e["source_line"]+"|"+e["count"])
	}
	want := []string{
		"held_customer||CHARLIE|pbx1/c.csv:3|1",
		"missing_agreement|beta1|BETA|pbx1/a.csv:8|4",
		"missing_gl_account||TAX-E911|products.csv:|2",
		"missing_gl_account||USAGE-OTHER|products.csv:|1",
		"rejected||start|pbx1/b.csv:3|1",
		"unmapped_account|ghost|ghost|pbx1/a.csv:9|2",
		"unmapped_product|acme1|VOICE-INTL|pbx1/a.csv:6|1",
		"unmapped_product|beta1|FAX|pbx1/a.csv:13|1",
		"unrated|charlie1|+4420555501|pbx1/c.csv:3|1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("export_errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var review []string
	for _, it := range r.Review {
		review = append(review, it.Kind+"="+decimal.NewFromInt(it.Count).String())
	}
	wantReview := "held_customer=1 missing_agreement=4 missing_gl_account=3 rejected=1 unmapped_account=2 unmapped_product=2 unrated=1"
	if g := strings.Join(review, " "); g != wantReview {
		t.Errorf("review = %s, want %s", g, wantReview)
	}
	// The unmapped product's line is on the invoice, at the fallback SKU.
	_, lines := testkit.ReadCSV(t, r.OutPath("connectwise_invoices.csv"))
	found := false
	for _, l := range lines {
		found = found || (l["company/identifier"] == "ACME" && l["catalogItem/identifier"] == "USAGE-OTHER" && l["extPrice"] == "2.51")
	}
	if !found {
		t.Error("ACME's VOICE-INTL usage is not invoiced on USAGE-OTHER at 2.51")
	}
}

// TestTickets: one ticket per customer / account / rejected file, with the raw CDR lines.
func TestTickets(t *testing.T) {
	r := newTestRun(t)
	r.Cfg.Paths.Staging = t.TempDir()
	createInvoiceInputs(t, r)
	runInvoiceStages(t, r, ExportStage{TicketBoard: "Billing Ops"})
	_, tickets := testkit.ReadCSV(t, r.OutPath("errors/tickets.csv"))
	var got []string
	for _, tk := range tickets {
		got = append(got, tk["summary"]+" | "+tk["company/identifier"]+" | "+tk["board/name"]+" | "+tk["source_lines"])
	}
	want := []string{
		"Billing review: ACME 2025-10 (unmapped_product=1) | ACME | Billing Ops | pbx1/a.csv:6",
		"Billing review: BETA 2025-10 (missing_agreement=4;unmapped_product=1) | BETA | Billing Ops | pbx1/a.csv:8,11,12,13",
		"Invoice held: CHARLIE 2025-10 (unrated=1) | CHARLIE | Billing Ops | pbx1/c.csv:3",
		"Unbilled CDRs: account ghost 2025-10 (unmapped_account=2) |  | Billing Ops | pbx1/a.csv:9,10",
		"Rejected CDR rows: pbx1/b.csv 2025-10 (rejected=1) |  | Billing Ops | pbx1/b.csv:3",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tickets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestInvoiceNumbersAcrossRuns: a rerun keeps each customer's number for the period; a new
// period or a customer released from hold gets a new number; no number is ever given twice.
func TestInvoiceNumbersAcrossRuns(t *testing.T) {
	staging := t.TempDir()
	run := func(period string, stage ExportStage) map[string]string {
		r := newTestRun(t)
		r.Cfg.Paths.Staging = staging
		p, _ := ParsePeriod(period)
		r.Period = p
		createInvoiceInputs(t, r)
		if period != "2025-10" {
			mustExec(t, r, "UPDATE rated_usage SET usage_date = usage_date + INTERVAL 31 DAY, start_utc = start_utc + INTERVAL 31 DAY")
		}
		runInvoiceStages(t, r, stage)
		return invoiceCompanies(t, r)
	}
	check := func(label string, got map[string]string, want map[string]string) {
		t.Helper()
		if !maps.Equal(got, want) {
			t.Errorf("%s: invoices %v, want %v", label, got, want)
		}
	}
	check("first run", run("2025-10", ExportStage{}), map[string]string{"USG000001": "ACME", "USG000002": "BETA"})
	check("rerun", run("2025-10", ExportStage{}), map[string]string{"USG000001": "ACME", "USG000002": "BETA"})
	check("next period", run("2025-11", ExportStage{}), map[string]string{"USG000003": "ACME", "USG000004": "BETA"})
	check("released", run("2025-10", ExportStage{FlagErrors: true}),
		map[string]string{"USG000001": "ACME", "USG000002": "BETA", "USG000005": "CHARLIE"})

	book, err := OpenInvoiceBook(staging, "USG")
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	if len(book.entries) != 5 || book.max != 5 {
		t.Errorf("book has %d entries, max %d; want 5, 5", len(book.entries), book.max)
	}
}

func TestInvoiceBookRejects(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenInvoiceBook(dir, "TOOLONGPREFIX"); !IsInputError(err) {
		t.Errorf("long prefix: %v, want an input error", err)
	}
	path := filepath.Join(dir, InvoiceBookFile)
	os.WriteFile(path, []byte("invoice_number,counter,company_id,company_identifier,period,run_id\nUSG000001,x,101,ACME,2025-10,r1\n"), 0o644)
	if _, err := OpenInvoiceBook(dir, "USG"); err == nil || !strings.Contains(err.Error(), ":2:2:") {
		t.Errorf("bad counter: %v, want an error at line 2 column 2", err)
	}
	// A deleted customer's number is not reused: the next number follows the highest ever given.
	os.WriteFile(path, []byte("invoice_number,counter,company_id,company_identifier,period,run_id\nUSG000007,7,101,ACME,2025-10,r1\n"), 0o644)
	b, err := OpenInvoiceBook(dir, "INV")
	if err != nil {
		t.Fatal(err)
	}
	n1, _ := b.Number(101, "ACME", "2025-10", "r2")
	n2, _ := b.Number(102, "BETA", "2025-10", "r2")
	b.Close()
	if n1 != "USG000007" || n2 != "INV000008" {
		t.Errorf("numbers %s %s, want USG000007 INV000008", n1, n2)
	}
}

func TestDescriptionTemplate(t *testing.T) {
	if err := CheckDescriptionTemplate("{description} {bogus}"); err == nil || !strings.Contains(err.Error(), "{bogus}") {
		t.Errorf("unknown placeholder: %v", err)
	}
	r := newTestRun(t)
	r.Cfg.Paths.Staging = t.TempDir()
	r.Cfg.Billing.DescriptionTemplate = "{product} ({catalog_identifier}) {period}: {calls} calls, {quantity} {unit}') --"
	createInvoiceInputs(t, r)
	runInvoiceStages(t, r, ExportStage{})
	var got string
	if err := r.DB.QueryRow(`SELECT string_agg(description, ' | ' ORDER BY line_no) FROM invoice_lines
		WHERE company_identifier = 'ACME' AND kind = 'usage'`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	want := "DATA (CW-DATA) 2025-10: 1 calls, 1.5 MB') -- | VOICE-INTL (USAGE-OTHER) 2025-10: 1 calls, 1.5 min') -- | " +
		"VOICE-OUT (CW-VOICE-OUT) 2025-10: 4 calls, 1,237.67 min') --"
	if got != want {
		t.Errorf("descriptions:\n%s\nwant\n%s", got, want)
	}
	r.Cfg.Billing.DescriptionTemplate = "{nope}"
	err := (ExportStage{}).Run(context.Background(), r)
	if !IsInputError(err) {
		t.Errorf("bad template: %v, want an input error", err)
	}
	var ie *InputError
	_ = errors.As(err, &ie)
}

func TestDetailTemplate(t *testing.T) {
	r := newTestRun(t)
	r.Cfg.Paths.Staging = t.TempDir()
	createInvoiceInputs(t, r)
	runInvoiceStages(t, r, ExportStage{DetailTemplate: "{description}, {start} from {origin} to {destination}, {quantity} {unit}"})
	var got string
	if err := r.DB.QueryRow(`SELECT string_agg(description, ' | ' ORDER BY line_no) FROM invoice_lines
		WHERE company_identifier = 'BETA' AND kind = 'usage'`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	want := "-2+3 fax, 2025-10-11T14:00:00Z from +13055550100 to +13055550123, 2 min | " +
		"Outbound voice usage, 2025-10-08T14:00:00Z from +13055550100 to +13055550123, 1 min | " +
		"Outbound voice usage, 2025-10-09T14:00:00Z from +13055550100 to +13055550123, 1 min | " +
		"Outbound voice usage, 2025-10-10T14:00:00Z from +13055550100 to +13055550123, 1.02 min"
	if got != want {
		t.Errorf("detail descriptions:\n%s\nwant\n%s", got, want)
	}
}

// TestExportNothingToBill: no usage, no tax, no errors: every file is written with its header only,
// nothing needs review and no invoice number is used.
func TestExportNothingToBill(t *testing.T) {
	r := newTestRun(t)
	r.Cfg.Paths.Staging = t.TempDir()
	createInvoiceInputs(t, r)
	for _, tbl := range []string{"rated_usage", "tax_lines", "rating_errors"} {
		mustExec(t, r, "DELETE FROM "+tbl)
	}
	mustExec(t, r, "DROP TABLE ingest_rejects") // a rerun from staging has none
	runInvoiceStages(t, r, ExportStage{})
	for _, name := range invoiceOutputs {
		_, rows := testkit.ReadCSV(t, r.OutPath(name))
		if len(rows) != 0 {
			t.Errorf("%s has %d rows, want none", name, len(rows))
		}
	}
	if len(r.Review) != 0 {
		t.Errorf("review %v, want none", r.Review)
	}
	if _, err := os.Stat(filepath.Join(r.Cfg.Paths.Staging, InvoiceBookFile)); !os.IsNotExist(err) {
		t.Errorf("invoice book written with no invoice: %v", err)
	}
}
