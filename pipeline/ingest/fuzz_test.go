package ingest

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// fuzzParser checks that a parser never panics and that it accounts for every line at most once
// (a line is one record or one reject, never both, never twice).
func fuzzParser(f *testing.F, format string, seeds ...string) {
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	p, _ := Lookup(format)
	ny, _ := time.LoadLocation("America/New_York")
	f.Fuzz(func(t *testing.T, data []byte) {
		seen := map[int64]bool{}
		lines := int64(bytes.Count(data, []byte{'\n'}) + 1)
		mark := func(l int64) {
			if l < 1 || l > lines {
				t.Fatalf("line %d out of range 1..%d", l, lines)
			}
			if seen[l] {
				t.Fatalf("line %d accounted twice", l)
			}
			seen[l] = true
		}
		_ = p.Parse(bytes.NewReader(data), Options{Location: ny, Country: "US", Account: "X"},
			func(r Record) error { mark(r.Line); return nil },
			func(r Reject) error { mark(r.Line); return nil })
	})
}

func FuzzGeneric(f *testing.F) { fuzzParser(f, "generic", "testdata/generic_quirks.csv") }
func FuzzAsterisk(f *testing.F) {
	fuzzParser(f, "asterisk", "testdata/asterisk_quirks.csv", "testdata/asterisk_custom.csv")
}
func FuzzFreeSWITCH(f *testing.F) { fuzzParser(f, "freeswitch", "testdata/freeswitch_quirks.csv") }
func FuzzCUCM(f *testing.F)       { fuzzParser(f, "cucm", "testdata/cucm_quirks.csv") }
