package jobs

import (
	"bytes"
	"cdrbill/pipeline/testkit"
	"encoding/json"
	"flag"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

var update = flag.Bool("update", false, "rewrite the golden files in fixtures/golden")

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(append([]string{"cdrbill"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// readTree reads every file under dir, by path relative to it.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// withoutRunSection drops the manifest's run section, the only part that differs between runs.
func withoutRunSection(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "run")
	out, _ := json.MarshalIndent(m, "", "  ")
	return append(out, '\n')
}

// TestDemoGolden runs the real job on the demo data and compares every output file with
// fixtures/golden/demo (go test ./jobs -run TestDemoGolden -update rewrites them).
func TestDemoGolden(t *testing.T) {
	dir := t.TempDir()
	cfg := testkit.CopyDemo(t, dir)
	code, stdout, stderr := runCLI(t, "--config", cfg, "run", "--period", "2025-10")
	if code != ExitReview {
		t.Fatalf("exit %d, want %d (the demo has rows to review)\nstdout: %s\nstderr: %s", code, ExitReview, stdout, stderr)
	}
	got := readTree(t, filepath.Join(dir, "output", "2025-10"))
	got["manifest.json"] = withoutRunSection(t, got["manifest.json"])
	golden := filepath.Join("..", "fixtures", "golden", "demo")
	if *update {
		os.RemoveAll(golden)
		for name, b := range got {
			p := filepath.Join(golden, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := readTree(t, golden)
	names := map[string]bool{}
	for n := range got {
		names[n] = true
	}
	for n := range want {
		names[n] = true
	}
	for n := range names {
		if !bytes.Equal(got[n], want[n]) {
			t.Errorf("%s differs from the golden file (rerun with -update and review the diff)\n--- got\n%s\n--- want\n%s", n, got[n], want[n])
		}
	}

	// The same night again ingests nothing and publishes nothing: byte-identical outputs.
	code, stdout, stderr = runCLI(t, "--config", cfg, "run", "--period", "2025-10")
	if code != ExitReview {
		t.Fatalf("second run: exit %d\nstderr: %s", code, stderr)
	}
	if !strings.Contains(stdout, "2025-10 unchanged") {
		t.Errorf("second run published again: %s", stdout)
	}
	again := readTree(t, filepath.Join(dir, "output", "2025-10"))
	again["manifest.json"] = withoutRunSection(t, again["manifest.json"])
	for n := range got {
		if !bytes.Equal(got[n], again[n]) {
			t.Errorf("%s changed on an identical second run", n)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "output", "2025-10.versions")); !os.IsNotExist(err) {
		t.Errorf("an identical run kept a previous version")
	}
}

// sumBy totals a money column per key column.
func sumBy(t *testing.T, rows []map[string]string, key, amount string) map[string]string {
	t.Helper()
	sums := map[string]decimal.Decimal{}
	for _, r := range rows {
		v, err := decimal.NewFromString(r[amount])
		if err != nil {
			t.Fatalf("%s %q: %v", amount, r[amount], err)
		}
		sums[r[key]] = sums[r[key]].Add(v)
	}
	out := map[string]string{}
	for k, v := range sums {
		out[k] = v.StringFixed(2)
	}
	return out
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestDemoInvariants checks the contract's invariants on the demo's real outputs: every row read
// is accounted for, every staged CDR is rated or in the error queue, usage_detail adds up to
// usage_summary, and every export file carries usage_summary + tax_lines per customer.
func TestDemoInvariants(t *testing.T) {
	dir := t.TempDir()
	cfg := testkit.CopyDemo(t, dir)
	if code, _, stderr := runCLI(t, "--config", cfg, "run", "--period", "2025-10"); code != ExitReview {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	out := filepath.Join(dir, "output", "2025-10")
	var m struct {
		Counts map[string]int64
		Totals []struct {
			CompanyIdentifier string `json:"company_identifier"`
			Total             string `json:"total"`
		} `json:"totals"`
	}
	b, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	c := m.Counts
	if c["file_rows_read"] != 177 || c["file_rows_read"] != c["file_rows_staged"]+c["file_rows_rejected"]+c["file_rows_duplicate"]+c["file_rows_not_billed"] {
		t.Errorf("rows read %d != staged %d + rejected %d + duplicate %d + not billed %d (demo: 177 read)",
			c["file_rows_read"], c["file_rows_staged"], c["file_rows_rejected"], c["file_rows_duplicate"], c["file_rows_not_billed"])
	}
	if c["cdrs_staged"] != c["cdrs_rated"]+c["cdrs_in_error"] {
		t.Errorf("staged %d != rated %d + in error %d", c["cdrs_staged"], c["cdrs_rated"], c["cdrs_in_error"])
	}

	// usage_detail per customer × product, rounded half-up to cents, equals usage_summary.
	detail := map[string]decimal.Decimal{}
	for _, r := range rowsOf(testkit.ReadCSV(t, filepath.Join(out, "usage_detail.csv"))) {
		detail[r["company_identifier"]+"/"+r["product"]] = detail[r["company_identifier"]+"/"+r["product"]].Add(decimal.RequireFromString(r["amount"]))
	}
	summary := rowsOf(testkit.ReadCSV(t, filepath.Join(out, "usage_summary.csv")))
	if len(summary) != len(detail) {
		t.Errorf("usage_summary has %d lines, usage_detail %d customer × product groups", len(summary), len(detail))
	}
	for _, r := range summary {
		k := r["company_identifier"] + "/" + r["product"]
		if got := detail[k].Round(2).StringFixed(2); got != r["amount"] {
			t.Errorf("%s: usage_detail sums to %s, usage_summary says %s", k, got, r["amount"])
		}
	}

	want := map[string]string{}
	for _, tot := range m.Totals {
		want[tot.CompanyIdentifier] = tot.Total
	}
	// summary + tax from the files themselves
	fromFiles := sumBy(t, append(summary, renameCol(rowsOf(testkit.ReadCSV(t, filepath.Join(out, "tax_lines.csv"))), "tax_amount", "amount")...), "company_identifier", "amount")
	if !maps.Equal(fromFiles, want) {
		t.Errorf("usage_summary + tax_lines %v != manifest totals %v", fromFiles, want)
	}
	invoices := rowsOf(testkit.ReadCSV(t, filepath.Join(out, "connectwise_invoices.csv")))
	company := map[string]string{}
	for _, r := range invoices {
		company[r["invoiceNumber"]] = r["company/identifier"]
		checkLine(t, "connectwise_invoices", r["quantity"], r["price"], r["extPrice"])
	}
	if got := sumBy(t, invoices, "company/identifier", "extPrice"); !maps.Equal(got, want) {
		t.Errorf("connectwise_invoices totals %v, want %v", got, want)
	}
	additions := rowsOf(testkit.ReadCSV(t, filepath.Join(out, "connectwise_additions.csv")))
	for i, r := range additions {
		checkLine(t, "connectwise_additions", r["quantity"], r["unitPrice"], "")
		additions[i]["ext"] = decimal.RequireFromString(r["quantity"]).Mul(decimal.RequireFromString(r["unitPrice"])).StringFixed(2)
	}
	if got := sumBy(t, additions, "company/identifier", "ext"); !maps.Equal(got, want) {
		t.Errorf("connectwise_additions totals %v, want %v", got, want)
	}
	qb := rowsOf(testkit.ReadCSV(t, filepath.Join(out, "quickbooks_invoices.csv")))
	for i, r := range qb {
		checkLine(t, "quickbooks_invoices", r["Item Quantity"], r["Item Rate"], r["Item Amount"])
		qb[i]["company"] = company[r["Invoice no"]]
	}
	if got := sumBy(t, qb, "company", "Item Amount"); !maps.Equal(got, want) {
		t.Errorf("quickbooks_invoices totals %v, want %v", got, want)
	}
	xero := rowsOf(testkit.ReadCSV(t, filepath.Join(out, "xero_invoices.csv")))
	for i, r := range xero {
		xero[i]["company"] = company[r["*InvoiceNumber"]]
		xero[i]["ext"] = decimal.RequireFromString(r["*Quantity"]).Mul(decimal.RequireFromString(r["*UnitAmount"])).StringFixed(2)
	}
	if got := sumBy(t, xero, "company", "ext"); !maps.Equal(got, want) {
		t.Errorf("xero_invoices totals %v, want %v", got, want)
	}
}

// checkLine asserts quantity × price = amount at 2 decimals (amount "" skips the comparison but
// still checks the cents).
func checkLine(t *testing.T, file, qty, price, amount string) {
	t.Helper()
	ext := decimal.RequireFromString(qty).Mul(decimal.RequireFromString(price))
	if !ext.Equal(ext.Round(2)) {
		t.Errorf("%s: %s × %s = %s is not whole cents", file, qty, price, ext)
	}
	if amount != "" && ext.StringFixed(2) != amount {
		t.Errorf("%s: %s × %s = %s, line says %s", file, qty, price, ext.StringFixed(2), amount)
	}
}

func renameCol(rows []map[string]string, from, to string) []map[string]string {
	for _, r := range rows {
		r[to] = r[from]
	}
	return rows
}

// rowsOf drops ReadCSV's header.
func rowsOf(_ []string, rows []map[string]string) []map[string]string { return rows }
