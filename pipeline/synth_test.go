package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// digests maps every file under dir (relative path) to its SHA-256.
func digests(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSynthesizeDeterministic(t *testing.T) {
	base := t.TempDir()
	a, b, c := filepath.Join(base, "a"), filepath.Join(base, "b"), filepath.Join(base, "c")
	for _, d := range []struct {
		dir  string
		seed int64
	}{{a, 7}, {b, 7}, {c, 8}} {
		if err := Synthesize(d.dir, 5000, d.seed); err != nil {
			t.Fatal(err)
		}
	}
	da, db, dc := digests(t, a), digests(t, b), digests(t, c)
	want := []string{synthMarker, "cdrbill.toml", "inbox/gen/cdrs-2025-10-0001.csv", "reference/customers.csv",
		"reference/plans.csv", "reference/products.csv", "reference/rates.csv", "reference/tax_rates.csv", "reference/time_bands.csv"}
	if len(da) != len(want) {
		t.Errorf("files %v, want %v", da, want)
	}
	for _, f := range want {
		if da[f] == "" {
			t.Errorf("%s not written", f)
		}
		if da[f] != db[f] {
			t.Errorf("%s differs between two runs with seed 7", f)
		}
	}
	if da["inbox/gen/cdrs-2025-10-0001.csv"] == dc["inbox/gen/cdrs-2025-10-0001.csv"] {
		t.Error("seeds 7 and 8 wrote the same CDRs")
	}
	// A second Synthesize into a synthetic folder replaces it; other folders are refused.
	if err := Synthesize(a, 5000, 7); err != nil {
		t.Errorf("rewrite of a synthetic folder: %v", err)
	} else if got := digests(t, a); got["inbox/gen/cdrs-2025-10-0001.csv"] != db["inbox/gen/cdrs-2025-10-0001.csv"] {
		t.Error("rewrite differs")
	}
	other := filepath.Join(base, "other")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "keep.txt"), []byte("x"), 0o644)
	if err := Synthesize(other, 10, 1); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("non-empty foreign folder: err %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(other, "keep.txt")); err != nil {
		t.Errorf("foreign file removed: %v", err)
	}
}

func TestSynthFiles(t *testing.T) {
	cases := []struct{ rows, files int }{{0, 1}, {1, 1}, {SynthFileRows, 1}, {SynthFileRows + 1, 2}, {10 * SynthFileRows, 10}}
	for _, c := range cases {
		got := SynthFiles("/d", c.rows)
		if len(got) != c.files {
			t.Errorf("%d rows: %d files, want %d", c.rows, len(got), c.files)
		}
		if last := got[len(got)-1]; !strings.HasSuffix(last, fmt.Sprintf("/inbox/gen/cdrs-2025-10-%04d.csv", c.files)) {
			t.Errorf("%d rows: last file %s", c.rows, last)
		}
	}
}

// TestSynthReferenceLoads loads the generated reference data with the real loader and checks the
// counts the generator promises (computed by hand from its shape).
func TestSynthReferenceLoads(t *testing.T) {
	dir := t.TempDir()
	if err := Synthesize(dir, 0, 1); err != nil {
		t.Fatal(err)
	}
	r := newTestRun(t)
	ctx := context.Background()
	t0 := time.Now()
	if err := LoadReference(ctx, r.DB, filepath.Join(dir, "reference"), "USD"); err != nil {
		t.Fatal(err)
	}
	t.Logf("LoadReference: %v", time.Since(t0))
	checks := map[string]int64{
		"SELECT count(*) FROM ref_customers":                                                    5000,
		"SELECT count(DISTINCT company_id) FROM ref_customers":                                  5000,
		"SELECT count(*) FROM ref_customers WHERE jurisdiction = 'US-FL-MIAMI'":                 1667, // i % 3 == 0 for i < 5000
		"SELECT count(*) FROM ref_customers WHERE jurisdiction = 'US-TX-AUSTIN'":                1667,
		"SELECT count(*) FROM ref_customers WHERE jurisdiction = 'US-CA-SANFRANCISCO'":          1666,
		"SELECT count(*) FROM ref_customers WHERE tax_exempt = ['all']":                         25, // i % 200 == 199
		"SELECT count(*) FROM ref_customers WHERE tax_exempt = ['USF']":                         75, // i % 50 == 49, less those 25
		"SELECT count(DISTINCT prefix) FROM ref_rates WHERE plan = 'STANDARD' AND prefix <> ''": SynthPrefixes,
		// 80 NPAs × (1 + 499 NXX) × peak/offpeak
		"SELECT count(*) FROM ref_rates WHERE product = 'VOICE-OUT' AND plan = 'STANDARD'": 80000,
		// 50 countries × (1 + 90 + 109) prefixes × 2 tiers
		"SELECT count(*) FROM ref_rates WHERE product = 'VOICE-INTL' AND plan = 'STANDARD'":                           20000,
		"SELECT count(DISTINCT rate_id) FROM ref_rates WHERE plan = 'STANDARD'":                                       40000 + 40000 + 10000 + 2,
		"SELECT count(*) FROM ref_rates WHERE plan = 'PREMIUM'":                                                       1 + 50 + 2,
		"SELECT count(*) FROM ref_rates WHERE tier_start = 60 AND tier_end IS NULL":                                   10000,
		"SELECT count(*) FROM ref_rates WHERE time_band = 'peak'":                                                     40000,
		"SELECT count(*) FROM ref_time_bands":                                                                         5 + 5 + 5 + 2, // peak Mon-Fri, offpeak Mon-Fri twice, Sat-Sun
		"SELECT count(*) FROM ref_tax_rates":                                                                          11,
		"SELECT count(DISTINCT jurisdiction) FROM ref_tax_rates":                                                      7,
		"SELECT count(*) FROM ref_plans":                                                                              2,
		"SELECT count(*) FROM ref_products":                                                                           4 + 10, // usage products, then one per tax code
		"SELECT count(DISTINCT tax_code) FROM ref_tax_rates WHERE tax_code NOT IN (SELECT product FROM ref_products)": 0,
	}
	for q, want := range checks {
		var got int64
		if err := r.DB.QueryRowContext(ctx, q).Scan(&got); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
}

// TestSynthCDRs reads generated CDRs back: the generic header, the direction mix, October 2025 in
// New York, possible E.164 numbers, known accounts, and a STANDARD-deck prefix for every outbound
// destination.
func TestSynthCDRs(t *testing.T) {
	const n = 20000
	dir := t.TempDir()
	if err := Synthesize(dir, n, 3); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(SynthFiles(dir, n)[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(recs[0], ","); got != CDRHeader {
		t.Fatalf("header %q", got)
	}
	if len(recs) != n+1 {
		t.Fatalf("%d rows, want %d", len(recs)-1, n)
	}
	deck := map[string]bool{}
	for _, npa := range synthDomesticNPAs() {
		deck["1"+npa] = true
	}
	for _, c := range synthCountries {
		deck[c.cc] = true
	}
	accounts := map[string]bool{}
	for i := 0; i < SynthAccounts; i++ {
		accounts[synthAccount(i)] = true
	}
	loc, _ := time.LoadLocation("America/New_York")
	kinds := map[string]int{}
	ids := map[string]bool{}
	zero := 0
	for _, rec := range recs[1:] {
		id, account, dir, origin, dest, start, dur, usage, bytes := rec[0], rec[1], rec[2], rec[3], rec[4], rec[5], rec[6], rec[7], rec[8]
		if ids[id] {
			t.Fatalf("call_id %s twice", id)
		}
		ids[id] = true
		if !accounts[account] {
			t.Fatalf("%s: unknown account %s", id, account)
		}
		if usage != "voice" || bytes != "" {
			t.Fatalf("%s: usage %q bytes %q", id, usage, bytes)
		}
		if dur == "0" {
			zero++
		}
		ts, err := time.Parse(time.RFC3339, start)
		if err != nil || ts.In(loc).Format("2006-01") != "2025-10" {
			t.Fatalf("%s: start %s not in October 2025 in New York (%v)", id, start, err)
		}
		for _, num := range []string{origin, dest} {
			pn, err := phonenumbers.Parse(num, "US")
			if err != nil || !phonenumbers.IsPossibleNumber(pn) || phonenumbers.Format(pn, phonenumbers.E164) != num {
				t.Fatalf("%s: %s is not a possible E.164 number (%v)", id, num, err)
			}
		}
		kind := dir
		if dir == "outbound" {
			kind = "domestic"
			if !strings.HasPrefix(dest, "+1") {
				kind = "international"
			}
			matched := false
			for l := 1; l <= 4 && !matched; l++ {
				matched = deck[dest[1:1+l]]
			}
			if !matched {
				t.Fatalf("%s: destination %s matches no deck prefix", id, dest)
			}
		}
		kinds[kind]++
	}
	for kind, want := range map[string]float64{"domestic": 0.70, "international": 0.20, "inbound": 0.10} {
		if got := float64(kinds[kind]) / n; got < want-0.015 || got > want+0.015 {
			t.Errorf("%s share %.3f, want %.2f ± 0.015", kind, got, want)
		}
	}
	if got := float64(zero) / n; got < 0.02 || got > 0.04 {
		t.Errorf("zero-duration share %.3f, want about 0.03", got)
	}
}

// BenchmarkSynthesize measures the CDR generator alone (one file).
func BenchmarkSynthesize(b *testing.B) {
	const rows = 200_000
	dir := b.TempDir()
	b.SetBytes(0)
	for b.Loop() {
		if err := writeSynthCDRFile(filepath.Join(dir, "cdrs.csv"), 0, rows, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
