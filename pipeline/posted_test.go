package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func writeTemp(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReadPostedHeaders: unambiguous variants of the field paths name the same columns.
func TestReadPostedHeaders(t *testing.T) {
	for _, header := range []string{
		"invoiceNumber,company/identifier,date,subtotal,salesTax,total,status/name,type,company/id",
		"InvoiceNumber,Company/Identifier,Date,SubTotal,SalesTax,Total,Status/Name,Type,Company/Id",
		"invoice_number,company_identifier,date,sub_total,sales_tax,total,status_name,type,company_id",
		"Invoice Number,Company Identifier,DATE,Subtotal,Sales Tax,Total,Status,Type,companyId",
		" invoiceNumber , company.identifier ,date,subtotal,sales-tax,total,status.name,type,company.id",
		"\ufeffinvoiceNumber,company/identifier,date,subtotal,salesTax,total,status/name,type,company/id",
	} {
		p := writeTemp(t, "inv.csv", header+",balance\nINV-7,ACMEDENTAL,2025-11-01,100.5,7.04,107.54,Sent,Miscellaneous,101,107.54\n")
		got, err := ReadPosted(p)
		if err != nil {
			t.Errorf("%q: %v", header, err)
			continue
		}
		if len(got.Invoices) != 1 {
			t.Errorf("%q: %d invoices", header, len(got.Invoices))
			continue
		}
		inv := got.Invoices[0]
		if inv.InvoiceNumber != "INV-7" || inv.CompanyIdentifier != "ACMEDENTAL" || inv.CompanyID == nil || *inv.CompanyID != 101 ||
			!inv.Date.Equal(time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)) || inv.Subtotal.String() != "100.5" ||
			inv.SalesTax.String() != "7.04" || inv.Total.String() != "107.54" || inv.StatusName != "Sent" ||
			inv.Type != "Miscellaneous" || inv.Line != 2 {
			t.Errorf("%q: %+v", header, inv)
		}
	}
}

// TestReadPostedErrors: refusals name file, line and column.
func TestReadPostedErrors(t *testing.T) {
	const ok = "INV-1,ACMEDENTAL,2025-11-01,1.00,0.00,1.00\n"
	const hdr = "invoiceNumber,company/identifier,date,subtotal,salesTax,total\n"
	for _, tc := range []struct {
		name, file, content string
		line, col           int
		msg                 string
	}{
		{"Company ID with a space", "a.csv", "invoiceNumber,Company ID,date,subtotal,salesTax,total\n" + ok, 1, 2, "ambiguous"},
		{"company alone", "a.csv", "invoiceNumber,company,date,subtotal,salesTax,total\n" + ok, 1, 2, "ambiguous"},
		{"same column twice", "a.csv", "invoiceNumber,company/identifier,date,subtotal,sales_tax,salesTax,total\n", 1, 6, "salesTax again"},
		{"missing column", "a.csv", "invoiceNumber,company/identifier,date,subtotal,tax,total\n" + ok, 1, 0, "lacks salesTax"},
		{"thousands separator", "a.csv", hdr + ok + "INV-2,ACMEDENTAL,2025-11-01,\"1,000.00\",0.00,1000.00\n", 3, 4, "thousands"},
		{"currency sign", "a.csv", hdr + "INV-2,ACMEDENTAL,2025-11-01,1.00,0.00,$1.00\n", 2, 6, "currency"},
		{"three decimals", "a.csv", hdr + "INV-2,ACMEDENTAL,2025-11-01,1.005,0.00,1.00\n", 2, 4, "more than 2 decimals"},
		{"empty amount", "a.csv", hdr + "INV-2,ACMEDENTAL,2025-11-01,1.00,,1.00\n", 2, 5, "salesTax is empty"},
		{"bad date", "a.csv", hdr + "INV-2,ACMEDENTAL,11/01/2025,1.00,0.00,1.00\n", 2, 3, "date"},
		{"bad company id", "a.csv", "invoiceNumber,company/identifier,company/id,date,subtotal,salesTax,total\nINV-2,ACMEDENTAL,ACME,2025-11-01,1.00,0.00,1.00\n", 2, 3, "company/id"},
		{"bad type", "a.csv", "invoiceNumber,company/identifier,date,subtotal,salesTax,total,type\nINV-2,ACMEDENTAL,2025-11-01,1.00,0.00,1.00,Credit\n", 2, 7, "type \"Credit\""},
		{"bad quoting", "a.csv", hdr + "INV-2,\"ACME\"X,2025-11-01,1.00,0.00,1.00\n", 2, 12, "quote"},
		{"empty file", "a.csv", "", 1, 0, "empty"},
		{"duplicate invoice", "a.csv", hdr + ok + ok, 3, 0, "already read from"},
		{"json not an array", "a.json", `{"invoiceNumber": "X"}`, 1, 1, "JSON array"},
		{"json amount as string", "a.json", "[\n  {\"invoiceNumber\": \"X\", \"company\": {\"identifier\": \"A\"}, \"date\": \"2025-11-01\",\n   \"subtotal\": \"1,00\", \"salesTax\": 0, \"total\": 1}\n]", 2, 3, "subtotal"},
		{"json missing total", "a.json", "[{\"invoiceNumber\": \"X\", \"company\": {\"identifier\": \"A\"}, \"date\": \"2025-11-01\", \"subtotal\": 1, \"salesTax\": 0},\n {}]", 1, 2, "total missing"},
		{"json second object", "a.json", "[\n{\"invoiceNumber\": \"X\", \"company\": {\"identifier\": \"A\"}, \"date\": \"2025-11-01\", \"subtotal\": 1, \"salesTax\": 0, \"total\": 1},\n  {\"invoiceNumber\": \"Y\", \"company\": {\"identifier\": \"A\"}, \"date\": \"2025-11-01\", \"subtotal\": 1.001, \"salesTax\": 0, \"total\": 1}]", 3, 3, "more than 2 decimals"},
		{"json syntax", "a.json", "[\n {\"invoiceNumber\": \"X\",, }]", 2, 0, "invalid JSON"},
		{"lines without amount", "l.csv", "invoiceNumber,catalogItem/identifier\nINV-1,TAX\n", 1, 0, "lacks extPrice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTemp(t, tc.file, tc.content)
			_, err := ReadPosted(p)
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want an InputError", err)
			}
			if ie.File != p || ie.Line != tc.line || (tc.col != 0 && ie.Column != tc.col) || (tc.col == 0 && tc.name != "json syntax" && ie.Column != 0) {
				t.Errorf("at %s:%d:%d, want %s:%d:%d (%v)", ie.File, ie.Line, ie.Column, p, tc.line, tc.col, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%v: want %q in the message", err, tc.msg)
			}
		})
	}
}

// TestReadPostedBothForms: the same invoices as CSV and as ConnectWise JSON read the same.
func TestReadPostedBothForms(t *testing.T) {
	csvP := writeTemp(t, "inv.csv", `invoiceNumber,type,company/id,company/identifier,company/name,date,subtotal,salesTax,total,status/name
INV-2,Standard,102,BLUEBIRDLAW,Bluebird Law LLP,2025-11-01,238.10,11.90,250.00,Sent
CM-1,CreditMemo,102,BLUEBIRDLAW,Bluebird Law LLP,2025-11-10,38.10,1.90,40.00,Closed
`)
	fromCSV, err := ReadPosted(csvP)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := ReadPosted("testdata/reconcile/posted/invoices.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(fromJSON.Invoices) != 4 {
		t.Fatalf("%d JSON invoices", len(fromJSON.Invoices))
	}
	for i, c := range fromCSV.Invoices {
		j := fromJSON.Invoices[i]
		if c.InvoiceNumber != j.InvoiceNumber || c.Type != j.Type || *c.CompanyID != *j.CompanyID ||
			c.CompanyIdentifier != j.CompanyIdentifier || c.CompanyName != j.CompanyName || !c.Date.Equal(j.Date) ||
			!c.Subtotal.Equal(j.Subtotal) || !c.SalesTax.Equal(j.SalesTax) || !c.Total.Equal(j.Total) || c.StatusName != j.StatusName {
			t.Errorf("invoice %d: CSV %+v JSON %+v", i, c, j)
		}
	}
	// positions of JSON objects: line of each object's opening brace
	if l := []int{fromJSON.Invoices[0].Line, fromJSON.Invoices[1].Line, fromJSON.Invoices[2].Line}; l[0] != 2 || l[1] != 7 || l[2] != 11 {
		t.Errorf("JSON lines %v, want 2 7 11", l)
	}
	if c := fromJSON.Invoices[1].IsClosed; c == nil || !*c {
		t.Errorf("CM-1 isClosed %v", c)
	}
	if !fromJSON.Invoices[2].Subtotal.Equal(decimal.RequireFromString("75")) {
		t.Errorf("INV-5 subtotal %s", fromJSON.Invoices[2].Subtotal)
	}
}

// TestReadPostedFolder: a folder yields its .csv and .json files in name order, nothing else.
func TestReadPostedFolder(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.csv"), []byte("invoiceNumber,company/identifier,date,subtotal,salesTax,total\nB1,X,2025-11-01,1,0,1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.JSON"), []byte(`[{"invoiceNumber":"A1","company":{"identifier":"X"},"date":"2025-11-01","subtotal":1,"salesTax":0,"total":1}]`), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not read"), 0o644)
	os.WriteFile(filepath.Join(dir, ".~lock.b.csv#"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(dir, "old.csv"), 0o755)
	p, err := ReadPosted(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Invoices) != 2 || p.Invoices[0].InvoiceNumber != "A1" || p.Invoices[1].InvoiceNumber != "B1" {
		t.Errorf("%+v", p.Invoices)
	}
}

func TestParsePostedDate(t *testing.T) {
	for in, want := range map[string]string{
		"2025-11-01":                "2025-11-01",
		"2025-11-01T00:00:00Z":      "2025-11-01",
		"2025-10-31T23:00:00-05:00": "2025-10-31", // the date as written, not moved to UTC
		"2025-11-01T00:00:00":       "2025-11-01",
		"2025-11-01 00:00:00":       "2025-11-01",
		"2025-11-01T00:00:00.000Z":  "2025-11-01",
		"2025-11-1":                 "",
		"2025-13-01":                "",
		"2025-11-01X":               "",
		"11/01/2025":                "",
	} {
		d, err := parsePostedDate(in)
		got := ""
		if err == nil {
			got = d.Format(time.DateOnly)
		}
		if got != want {
			t.Errorf("%q: %q (%v), want %q", in, got, err, want)
		}
	}
}

// TestDemoPosted keeps the demo's posted files readable: both forms, one credit memo.
func TestDemoPosted(t *testing.T) {
	p, err := ReadPosted("../fixtures/demo/posted")
	if err != nil {
		t.Fatal(err)
	}
	var memos int
	for _, inv := range p.Invoices {
		if inv.Type == CreditMemoType {
			memos++
		}
	}
	if len(p.Files) != 2 || len(p.Invoices) != 6 || memos != 1 {
		t.Errorf("%d files, %d invoices, %d credit memos; want 2, 6, 1", len(p.Files), len(p.Invoices), memos)
	}
}

// BenchmarkReadPostedCSV reads a 10 000-invoice CSV export.
func BenchmarkReadPostedCSV(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("invoiceNumber,type,company/id,company/identifier,date,subtotal,salesTax,total,status/name\n")
	const n = 10000
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "INV%05d,Miscellaneous,%d,CUST%04d,2025-11-01,%d.%02d,%d.%02d,%d.%02d,Sent\n",
			i, 100+i%500, i%500, i, i%100, i/10, i%100, i+i/10, i%100*2%100)
	}
	p := writeTemp(b, "big.csv", sb.String())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := ReadPosted(p)
		if err != nil || len(got.Invoices) != n {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "invoices/s")
}

// BenchmarkReconcileStage loads 10 000 posted invoices and reconciles them against 500 customers.
func BenchmarkReconcileStage(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("invoiceNumber,type,company/id,company/identifier,date,subtotal,salesTax,total\n")
	const n = 10000
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "INV%05d,Miscellaneous,%d,CUST%04d,2025-11-%02d,10.00,0.70,10.70\n", i, 100+i%500, i%500, 1+i%28)
	}
	p := writeTemp(b, "big.csv", sb.String())
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := newTestRun(b)
		createRatedTables(b, r)
		mustExec(b, r, `INSERT INTO usage_summary SELECT 100 + i, printf('CUST%04d', i), 'x', NULL, 'US', 'summary', 'voice',
            'VOICE-USAGE', 'v', true, 'voice', NULL, 'voice', 1, 1, 200.00 FROM range(500) t(i)`)
		b.StartTimer()
		if err := (ReconcileStage{Posted: p}).Run(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "invoices/s")
}
