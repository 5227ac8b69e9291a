package pipeline

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func opsWrite(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCompareTreesByRow(t *testing.T) {
	const hdr = "company_id,company_identifier,product,catalog_identifier,description,calls,billed_quantity,amount\n"
	tests := []struct {
		name       string
		prev, next map[string]string
		want       []Difference
	}{
		{
			name: "identical files: no difference; manifest.json and delta.csv are not compared",
			prev: map[string]string{"usage_summary.csv": hdr + "1,A,VOICE,V,Voice,2,120,0.50\n", "manifest.json": "{}", "delta.csv": "x"},
			next: map[string]string{"usage_summary.csv": hdr + "1,A,VOICE,V,Voice,2,120,0.50\n", "manifest.json": "{\"a\":1}"},
		},
		{
			name: "a changed row is removed + added under its key; an added row; untouched rows are not listed",
			prev: map[string]string{"usage_summary.csv": hdr + "1,A,VOICE,V,Voice,2,120,0.50\n2,B,DATA,D,Data,1,10,1.00\n"},
			next: map[string]string{"usage_summary.csv": hdr + "1,A,VOICE,V,Voice,3,180,0.75\n2,B,DATA,D,Data,1,10,1.00\n3,C,DATA,D,Data,1,5,0.10\n"},
			want: []Difference{
				{File: "usage_summary.csv", Change: "row_removed", Key: "A | VOICE", PrevLine: 2, Row: "1,A,VOICE,V,Voice,2,120,0.50"},
				{File: "usage_summary.csv", Change: "row_added", Key: "A | VOICE", Line: 2, Row: "1,A,VOICE,V,Voice,3,180,0.75"},
				{File: "usage_summary.csv", Change: "row_added", Key: "C | DATA", Line: 4, Row: "3,C,DATA,D,Data,1,5,0.10"},
			},
		},
		{
			name: "rows are a multiset: one of two equal rows removed",
			prev: map[string]string{"x.csv": "a,b\n1,2\n1,2\n"},
			next: map[string]string{"x.csv": "a,b\n1,2\n"},
			want: []Difference{{File: "x.csv", Change: "row_removed", Key: "1", PrevLine: 3, Row: "1,2"}},
		},
		{
			name: "same rows in another order, header change, non-CSV file, added and removed files",
			prev: map[string]string{"o.csv": "a\n1\n2\n", "h.csv": "a\n1\n", "r.xlsx": "old", "gone.csv": "a\n"},
			next: map[string]string{"o.csv": "a\n2\n1\n", "h.csv": "b\n1\n", "r.xlsx": "new", "errors/new.csv": "k\n"},
			want: []Difference{
				{File: "errors/new.csv", Change: "file_added"},
				{File: "h.csv", Change: "file_changed", Row: "header or encoding changed: "},
				{File: "o.csv", Change: "file_changed", Row: "same rows in another order: "},
				{File: "r.xlsx", Change: "file_changed"},
				{File: "gone.csv", Change: "file_removed"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev, next := t.TempDir(), t.TempDir()
			opsWrite(t, prev, tt.prev)
			opsWrite(t, next, tt.next)
			got, err := CompareTrees(prev, next)
			if err != nil {
				t.Fatal(err)
			}
			// file-level rows carry checksums: the expectation gives a prefix of Row (or nothing)
			for i := range got {
				if i < len(tt.want) && got[i].Change != "row_added" && got[i].Change != "row_removed" &&
					strings.HasPrefix(got[i].Row, tt.want[i].Row) {
					got[i].Row = tt.want[i].Row
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestCompareManifestsIgnoresRun(t *testing.T) {
	dir := t.TempDir()
	opsWrite(t, dir, map[string]string{
		"a.json": `{"period":"2025-10","counts":{"x":1},"run":{"id":"1"}}`,
		"b.json": `{"period":"2025-10","counts":{"x":1},"run":{"id":"2"}}`,
		"c.json": `{"period":"2025-10","counts":{"x":2},"run":{"id":"1"}}`,
	})
	d, err := CompareManifests(filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json"))
	if err != nil || len(d) != 0 {
		t.Errorf("only run differs: got %v, %v", d, err)
	}
	d, err = CompareManifests(filepath.Join(dir, "a.json"), filepath.Join(dir, "c.json"))
	want := []Difference{{File: "manifest.json", Change: "field_changed", Key: "counts", Row: `{"x":1} -> {"x":2}`}}
	if err != nil || !reflect.DeepEqual(d, want) {
		t.Errorf("got %+v, %v; want %+v", d, err, want)
	}
}
