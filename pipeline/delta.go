package pipeline

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

// Comparing two versions of a period's files, row by row. Used by publish (delta.csv: what a new
// version changed) and by rerun --verify (what an auditor's rerun does not reproduce).

// DeltaColumns are delta.csv's columns. change is one of:
//
//	file_added, file_removed   a file only in the new / only in the previous version (row: its sha256)
//	file_changed               a non-CSV file whose bytes differ, a CSV whose header changed, or a
//	                           CSV with the same rows in another order (row: both sha256)
//	row_added, row_removed     a CSV row only in the new / only in the previous version; a changed
//	                           row is one row_removed and one row_added with the same key
//	field_changed              manifest.json (verify only): a top-level field other than run differs
//
// key is the row's key columns joined with " | " (see deltaKeys; the first column for other files),
// previous_line and line the rows' line numbers in each version (header = line 1), row the CSV
// row as written.
var DeltaColumns = []string{"file", "change", "key", "previous_line", "line", "row"}

// Difference is one row of delta.csv.
type Difference struct {
	File, Change, Key string
	PrevLine, Line    int
	Row               string
}

func (d Difference) cells() []string {
	n := func(i int) string {
		if i == 0 {
			return ""
		}
		return fmt.Sprint(i)
	}
	return []string{d.File, d.Change, d.Key, n(d.PrevLine), n(d.Line), d.Row}
}

// deltaKeys are the key columns of each output CSV (its grain).
var deltaKeys = map[string][]string{
	"usage_detail.csv":          {"cdr_id"},
	"usage_summary.csv":         {"company_identifier", "product", "usage_period"},
	"tax_lines.csv":             {"company_identifier", "jurisdiction", "tax_code"},
	"connectwise_additions.csv": {"company/identifier", "product/identifier"},
	"connectwise_invoices.csv":  {"invoiceNumber", "catalogItem/identifier"},
	"quickbooks_invoices.csv":   {"Invoice no", "Item (Product/Service)"},
	"xero_invoices.csv":         {"*InvoiceNumber", "InventoryItemCode"},
	"reconciliation.csv":        {"company_identifier"},
	"reconciliation_taxes.csv":  {"company_identifier", "catalog_identifier"},
	"export_errors.csv":         {"kind", "key"},
	"tickets.csv":               {"company/identifier"},
}

// CompareTrees compares every file of two period folders (manifest.json and delta.csv are left
// out: digestTree skips them). prev or next may be missing (then everything is added/removed).
func CompareTrees(prevDir, nextDir string) ([]Difference, error) {
	prev, err := digestTreeOrNone(prevDir)
	if err != nil {
		return nil, err
	}
	next, err := digestTreeOrNone(nextDir)
	if err != nil {
		return nil, err
	}
	var out []Difference
	old := map[string]string{}
	for _, d := range prev {
		old[d.File] = d.SHA256
	}
	seen := map[string]bool{}
	for _, d := range next {
		seen[d.File] = true
		o, ok := old[d.File]
		switch {
		case !ok:
			out = append(out, Difference{File: d.File, Change: "file_added", Row: d.SHA256})
		case o != d.SHA256:
			diffs, err := compareFile(d.File, filepath.Join(prevDir, d.File), filepath.Join(nextDir, d.File), o, d.SHA256)
			if err != nil {
				return nil, err
			}
			out = append(out, diffs...)
		}
	}
	for _, d := range prev {
		if !seen[d.File] {
			out = append(out, Difference{File: d.File, Change: "file_removed", Row: d.SHA256})
		}
	}
	return out, nil
}

func digestTreeOrNone(dir string) ([]FileDigest, error) {
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil, nil
	}
	return digestTree(dir)
}

// compareFile lists the differences of one file whose checksums differ: by row for CSVs.
func compareFile(name, prevPath, nextPath, prevSHA, nextSHA string) ([]Difference, error) {
	changed := []Difference{{File: name, Change: "file_changed", Row: prevSHA + " -> " + nextSHA}}
	if !strings.EqualFold(path.Ext(name), ".csv") {
		return changed, nil
	}
	a, err := readCSVRows(prevPath)
	if err != nil {
		return nil, err
	}
	b, err := readCSVRows(nextPath)
	if err != nil {
		return nil, err
	}
	if len(a) == 0 || len(b) == 0 || csvLine(a[0]) != csvLine(b[0]) {
		changed[0].Row = "header or encoding changed: " + changed[0].Row
		return changed, nil
	}
	keyIdx := keyColumns(path.Base(name), a[0])
	key := func(rec []string) string {
		parts := make([]string, 0, len(keyIdx))
		for _, i := range keyIdx {
			if i < len(rec) {
				parts = append(parts, rec[i])
			}
		}
		return strings.Join(parts, " | ")
	}
	// multiset difference on whole rows, keeping line numbers
	lines := map[string][]int{}
	for i, rec := range a[1:] {
		lines[csvLine(rec)] = append(lines[csvLine(rec)], i+2)
	}
	var out []Difference
	for i, rec := range b[1:] {
		s := csvLine(rec)
		if l := lines[s]; len(l) > 0 {
			lines[s] = l[1:]
			continue
		}
		out = append(out, Difference{File: name, Change: "row_added", Key: key(rec), Line: i + 2, Row: s})
	}
	for i, rec := range a[1:] {
		s := csvLine(rec)
		if l := lines[s]; len(l) > 0 && l[0] == i+2 {
			lines[s] = l[1:]
			out = append(out, Difference{File: name, Change: "row_removed", Key: key(rec), PrevLine: i + 2, Row: s})
		}
	}
	if len(out) == 0 {
		changed[0].Row = "same rows in another order: " + changed[0].Row
		return changed, nil
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key < out[j].Key
		}
		if out[i].Change != out[j].Change {
			return out[i].Change > out[j].Change // row_removed before row_added
		}
		return out[i].PrevLine+out[i].Line < out[j].PrevLine+out[j].Line
	})
	return out, nil
}

func keyColumns(base string, header []string) []int {
	var idx []int
	for _, k := range deltaKeys[base] {
		for i, h := range header {
			if h == k {
				idx = append(idx, i)
			}
		}
	}
	if len(idx) == 0 {
		idx = []int{0}
	}
	return idx
}

func readCSVRows(p string) ([][]string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return rows, nil
}

// csvLine is a record as one CSV line, without the line end.
func csvLine(rec []string) string {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(rec)
	w.Flush()
	return strings.TrimRight(buf.String(), "\r\n")
}

// CompareManifests lists the top-level fields of two manifest.json files that differ, ignoring
// run (the only part that changes from run to run).
func CompareManifests(prevPath, nextPath string) ([]Difference, error) {
	read := func(p string) (map[string]any, error) {
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		delete(m, "run")
		return m, nil
	}
	a, err := read(prevPath)
	if err != nil {
		return nil, err
	}
	b, err := read(nextPath)
	if err != nil {
		return nil, err
	}
	switch {
	case a == nil && b == nil:
		return nil, nil
	case a == nil:
		return []Difference{{File: "manifest.json", Change: "file_added"}}, nil
	case b == nil:
		return []Difference{{File: "manifest.json", Change: "file_removed"}}, nil
	}
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []Difference
	for _, k := range names {
		if !reflect.DeepEqual(a[k], b[k]) {
			pa, _ := json.Marshal(a[k])
			pb, _ := json.Marshal(b[k])
			out = append(out, Difference{File: "manifest.json", Change: "field_changed", Key: k,
				Row: truncate(string(pa), 500) + " -> " + truncate(string(pb), 500)})
		}
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// WriteDifferences writes differences as a CSV with DeltaColumns.
func WriteDifferences(p string, diffs []Difference) error {
	f, err := CreateCSV(p, DeltaColumns)
	if err != nil {
		return err
	}
	for _, d := range diffs {
		if err := f.Write(d.cells()); err != nil {
			f.Abort()
			return err
		}
	}
	return f.Close()
}
