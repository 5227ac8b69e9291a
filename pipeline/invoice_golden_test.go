package pipeline

import (
	"bytes"
	"cdrbill/pipeline/testkit"
	"encoding/csv"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// invoiceOutputs are the files the summary and export stages write.
var invoiceOutputs = []string{
	"usage_detail.csv", "usage_summary.csv", "connectwise_additions.csv", "connectwise_invoices.csv",
	"quickbooks_invoices.csv", "xero_invoices.csv", "errors/export_errors.csv", "errors/tickets.csv",
}

// updateGolden is the -update flag (go test ./pipeline -run TestInvoiceGolden -update), shared
// with any other golden test of the package that registers it first.
func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

// TestInvoiceGolden compares every output with testdata/invoice/<mode>/, in both invoice modes.
func TestInvoiceGolden(t *testing.T) {
	for _, c := range []struct {
		mode   string
		ranges bool // usage_detail.csv sorted in ranges of cdr_id (as from sortInRangesFrom calls): same bytes
	}{{"summary", false}, {"detail", false}, {"summary", true}} {
		mode := c.mode
		name := mode
		if c.ranges {
			name += "/ranges"
		}
		t.Run(name, func(t *testing.T) {
			if c.ranges {
				defer func(n int64) { sortInRangesFrom = n }(sortInRangesFrom)
				sortInRangesFrom = 0
			}
			r := newTestRun(t)
			r.Cfg.Paths.Staging = t.TempDir()
			r.Cfg.Billing.InvoiceMode = mode
			createInvoiceInputs(t, r)
			runInvoiceStages(t, r, ExportStage{})
			for _, name := range invoiceOutputs {
				got, err := os.ReadFile(r.OutPath(name))
				if err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("testdata", "invoice", mode, name)
				if updateGolden() && !c.ranges {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", name, golden, got, want)
				}
			}
		})
	}
}

// TestExportHostileText: company names and product descriptions that a spreadsheet would run as
// formulas (=HYPERLINK, +cmd, -2+3, @SUM, a leading tab) come out neutralised in every file, and
// numbers stay plain numbers.
func TestExportHostileText(t *testing.T) {
	r := newTestRun(t)
	r.Cfg.Paths.Staging = t.TempDir()
	createInvoiceInputs(t, r)
	runInvoiceStages(t, r, ExportStage{FlagErrors: true}) // CHARLIE (tab, +cmd) exported too
	seen := map[string]bool{}
	for _, name := range invoiceOutputs {
		data, err := os.ReadFile(r.OutPath(name))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, rec := range recs {
			for j, cell := range rec {
				if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) && !plainNumber.MatchString(cell) {
					t.Errorf("%s:%d column %s: cell %q would run as a formula", name, i+1, recs[0][j], cell)
				}
				for _, h := range []string{hostileName1, hostileName2, hostileDesc1, hostileDesc2} {
					if strings.HasPrefix(cell, "'"+h) {
						seen[h] = true
					}
				}
			}
		}
	}
	for _, h := range []string{hostileName1, hostileName2, hostileDesc1, hostileDesc2} {
		if !seen[h] {
			t.Errorf("%q never appears (neutralised) in the outputs", h)
		}
	}
	// Numbers: E.164 numbers and amounts keep their sign and digits.
	_, detail := testkit.ReadCSV(t, r.OutPath("usage_detail.csv"))
	if detail[0]["destination"] != "+13055550123" || detail[0]["amount"] != "0.333" {
		t.Errorf("usage_detail first row: destination %q amount %q", detail[0]["destination"], detail[0]["amount"])
	}
}
