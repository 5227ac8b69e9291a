package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
	want := []string{synthMarker, "cdrbill.toml", "reference/customers.csv",
		"reference/plans.csv", "reference/products.csv", "reference/rates.csv", "reference/tax_rates.csv", "reference/time_bands.csv"}
	for _, f := range SynthFiles(a, 5000) {
		rel, _ := filepath.Rel(a, f)
		want = append(want, rel)
	}
	if len(want) != 8+31 {
		t.Fatalf("%d files, want a CDR file per day", len(want))
	}
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
	if da["inbox/gen/cdrs-2025-10-01-0001.csv"] == dc["inbox/gen/cdrs-2025-10-01-0001.csv"] ||
		da["inbox/gen/cdrs-2025-10-31-0001.csv"] == dc["inbox/gen/cdrs-2025-10-31-0001.csv"] {
		t.Error("seeds 7 and 8 wrote the same CDRs")
	}
	// A second Synthesize into a synthetic folder replaces it; other folders are refused.
	if err := Synthesize(a, 5000, 7); err != nil {
		t.Errorf("rewrite of a synthetic folder: %v", err)
	} else if got := digests(t, a); !maps.Equal(got, db) {
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

// October 2025: 23 weekdays (weight 5) and 8 weekend days (weight 1), 123 in all.
const synthWeights = 23*5 + 8

func TestSynthDayRows(t *testing.T) {
	weekday := []int{1, 2, 3, 6, 7, 8, 9, 10, 13, 14} // the first ten weekdays
	cases := []struct {
		rows int
		want map[int]int // day -> rows; other days 0
	}{
		{0, nil},
		{1, map[int]int{1: 1}},
		{10, func() map[int]int {
			m := map[int]int{}
			for _, d := range weekday {
				m[d] = 1
			}
			return m
		}()},
		{synthWeights, func() map[int]int {
			m := map[int]int{}
			for d := 1; d <= 31; d++ {
				m[d] = synthDayWeight(d)
			}
			return m
		}()},
	}
	for _, c := range cases {
		got := synthDayRows(c.rows)
		for d := 1; d <= 31; d++ {
			if got[d-1] != c.want[d] {
				t.Errorf("%d rows: day %d has %d, want %d", c.rows, d, got[d-1], c.want[d])
			}
		}
	}
	if w := synthDayWeight(4) + synthDayWeight(5); w != 2 {
		t.Errorf("Saturday 4 and Sunday 5 weigh %d, want 1 each", w)
	}
	// any count: the total is exact and each day within one row of its quota
	for _, rows := range []int{7, 1000, 123_456, 10_000_000, 100_000_000} {
		got := synthDayRows(rows)
		sum := 0
		for d, n := range got {
			sum += n
			quota := float64(rows) * float64(synthDayWeight(d+1)) / synthWeights
			if float64(n) < quota-1 || float64(n) > quota+1 {
				t.Errorf("%d rows: day %d has %d, quota %.2f", rows, d+1, n, quota)
			}
		}
		if sum != rows {
			t.Errorf("%d rows: the days hold %d", rows, sum)
		}
	}
}

func TestSynthFiles(t *testing.T) {
	big := synthWeights * (SynthFileRows/5 + 1) // a weekday gets 1 000 005 rows: two files
	cases := []struct {
		rows, files int
		first, last string
	}{
		{0, 1, "cdrs-2025-10-01-0001.csv", "cdrs-2025-10-01-0001.csv"},
		{1, 1, "cdrs-2025-10-01-0001.csv", "cdrs-2025-10-01-0001.csv"},
		{10, 10, "cdrs-2025-10-01-0001.csv", "cdrs-2025-10-14-0001.csv"},
		{synthWeights, 31, "cdrs-2025-10-01-0001.csv", "cdrs-2025-10-31-0001.csv"},
		{big, 23*2 + 8, "cdrs-2025-10-01-0001.csv", "cdrs-2025-10-31-0002.csv"},
	}
	for _, c := range cases {
		got := SynthFiles("/d", c.rows)
		if len(got) != c.files {
			t.Errorf("%d rows: %d files, want %d", c.rows, len(got), c.files)
			continue
		}
		if got[0] != "/d/inbox/gen/"+c.first || got[len(got)-1] != "/d/inbox/gen/"+c.last {
			t.Errorf("%d rows: files %s .. %s, want %s .. %s", c.rows, got[0], got[len(got)-1], c.first, c.last)
		}
		if !slices.IsSorted(got) {
			t.Errorf("%d rows: files not in path order", c.rows)
		}
		// the layout: every row once, ids in file order, at most SynthFileRows a file
		next, sum := 1, 0
		for _, f := range synthLayout(c.rows) {
			if f.first != next || f.rows > SynthFileRows {
				t.Errorf("%d rows: file %+v (next id %d)", c.rows, f, next)
			}
			next += f.rows
			sum += f.rows
		}
		if sum != c.rows {
			t.Errorf("%d rows: the files hold %d", c.rows, sum)
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
	// every file: the header, then its day's calls, with the call ids in sequence across files
	var recs [][]string
	fileDay := map[string]string{} // call id -> the day of its file
	for _, f := range synthLayout(n) {
		fh, err := os.Open(f.path(dir))
		if err != nil {
			t.Fatal(err)
		}
		rs, err := csv.NewReader(fh).ReadAll()
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(rs[0], ","); got != CDRHeader {
			t.Fatalf("%s: header %q", f.path(dir), got)
		}
		if len(rs)-1 != f.rows {
			t.Fatalf("%s: %d rows, want %d", f.path(dir), len(rs)-1, f.rows)
		}
		for k, rec := range rs[1:] {
			if want := fmt.Sprintf("g%09d", f.first+k); rec[0] != want {
				t.Fatalf("%s row %d: call_id %s, want %s", f.path(dir), k+1, rec[0], want)
			}
			fileDay[rec[0]] = fmt.Sprintf("2025-10-%02d", f.day)
		}
		recs = append(recs, rs[1:]...)
	}
	if len(recs) != n {
		t.Fatalf("%d rows, want %d", len(recs), n)
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
	for _, rec := range recs {
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
		if d := ts.In(loc).Format(time.DateOnly); d != fileDay[id] {
			t.Fatalf("%s: start %s (%s in New York) in the file of %s", id, start, d, fileDay[id])
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
		if err := writeSynthCDRFile(filepath.Join(dir, "cdrs.csv"), synthFile{day: 1, part: 1, rows: rows, first: 1}, 0, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
