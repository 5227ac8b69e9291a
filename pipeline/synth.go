package pipeline

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
)

// Synthetic data for `cdrbill bench` and the benchmarks: a complete data folder (config,
// reference data, one month of generic-format CDRs) that depends only on the row count and the
// seed.
//
// Numbers are fictional: 555-01XX gives only 100 numbers per area code, far too few here, so
//   - domestic destinations use NANP area codes of the form N9X (290-299, 390-399, ... 990-999),
//     which the NANP reserves for its own expansion and never assigns;
//   - the customers' own numbers (origins of outbound calls, destinations of inbound calls) use
//     372 (Miami customers), 373 (Austin), 374 (San Francisco) and inbound callers 375-379, from
//     the reserved 37X block;
//   - international destinations are random digits after real country codes (no reserved range
//     exists at that size in most countries): they are made up, but not guaranteed unassigned.
// Tax rates are SAMPLE figures shaped like real ones, not tax advice.

const (
	// SynthAccounts is the number of customers (accounts) in the synthetic reference data.
	SynthAccounts = 5000
	// SynthPrefixes is the number of distinct destination prefixes in the STANDARD plan's deck.
	SynthPrefixes = 50000
	// SynthFileRows is the most CDR rows one synthetic inbox file holds.
	SynthFileRows = 1_000_000
	// SynthSource is the synthetic data's one source (inbox/gen, generic format).
	SynthSource = "gen"
	// SynthPeriod is the month the synthetic CDRs fall in.
	SynthPeriod = "2025-10"

	synthMarker = ".cdrbill-synth"
)

// SynthConfig is the generated cdrbill.toml. memory_limit 1GB and 2 threads keep the process under
// 2 GiB at 10 M rows: DuckDB's buffer pool (which spills to temp_directory beyond the limit) is
// capped at 1 GiB, leaving about 1 GiB for what DuckDB allocates outside its pool, the Go heap
// (parsers, writers) and the binary; 2 threads match the machine's 2 cores (each thread adds
// per-thread buffers, so more threads than cores only costs memory).
const SynthConfig = `# cdrbill bench: synthetic data (pipeline.Synthesize); every number is fictional.
[paths]
inbox = "inbox"
staging = "staging"
reference = "reference"
posted = "posted"
output = "output"

[billing]
timezone = "America/New_York"
currency = "USD"
invoice_mode = "summary"
fallback_sku = "USAGE-OTHER"
variance_threshold_percent = 1.0
tax_rounding = "invoice"

[invoices]
number_prefix = "USG"
terms_days = 30

[duckdb]
memory_limit = "1GB"
go_memory_limit = "768MiB"
threads = 2
temp_directory = "tmp"

[[source]]
name = "gen"
format = "generic"
path = "inbox/gen"
timezone = "America/New_York"
country = "US"
`

// synthJurisdictions are the customers' jurisdictions, with the fictional NPA of their numbers.
var synthJurisdictions = []struct{ code, npa string }{
	{"US-FL-MIAMI", "372"}, {"US-TX-AUSTIN", "373"}, {"US-CA-SANFRANCISCO", "374"},
}

// synthCountry is a country code and the length of its national numbers (a length libphonenumber
// accepts as possible, checked by the tests).
type synthCountry struct {
	cc  string
	len int
}

// synthCountries are the international destinations, most called first (weights below).
var synthCountries = []synthCountry{
	{"52", 10}, {"44", 10}, {"91", 10}, {"63", 10}, {"49", 10}, {"33", 9}, {"34", 9}, {"39", 10},
	{"86", 11}, {"81", 10}, {"55", 11}, {"61", 9}, {"57", 10}, {"54", 10}, {"51", 9}, {"56", 9},
	{"353", 9}, {"31", 9}, {"32", 9}, {"41", 9}, {"48", 9}, {"46", 9}, {"47", 8}, {"45", 8},
	{"351", 9}, {"30", 10}, {"972", 9}, {"27", 9}, {"234", 10}, {"254", 9}, {"20", 10}, {"90", 10},
	{"84", 9}, {"66", 9}, {"82", 10}, {"65", 8}, {"852", 8}, {"64", 9}, {"92", 10}, {"880", 10},
	{"380", 9}, {"40", 9}, {"420", 9}, {"36", 9}, {"503", 8}, {"502", 8}, {"504", 8}, {"506", 8},
	{"593", 9}, {"58", 10},
}

// synthDomesticNPAs are the 80 reserved N9X area codes used for domestic destinations.
func synthDomesticNPAs() []string {
	var npas []string
	for n := 2; n <= 9; n++ {
		for x := 0; x <= 9; x++ {
			npas = append(npas, fmt.Sprintf("%d9%d", n, x))
		}
	}
	return npas
}

// Deck shape: per domestic NPA, the NPA itself and NXX 200..698 (so NXX 699..999 fall back to the
// NPA); per country, the code itself, code+10..99 and code+100..208.
const (
	synthNXXFrom, synthNXXTo     = 200, 698
	synthIntl3From, synthIntl3To = 100, 208
)

// Synthesize writes a complete, deterministic data folder into dir: cdrbill.toml, reference/*.csv
// and rows CDRs laid out as a provider's nightly drops: each October day's calls in their own
// files, inbox/gen/cdrs-2025-10-DD-NNNN.csv (at most SynthFileRows per file; path order is day
// order), the days' shares by their weights (synthDayRows). The same rows and seed give the same
// bytes. dir must be empty, missing, or a folder Synthesize made before (its generated content is
// then replaced).
func Synthesize(dir string, rows int, seed int64) error {
	if rows < 0 {
		return fmt.Errorf("synthesize: negative row count %d", rows)
	}
	if err := prepareSynthDir(dir); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cdrbill.toml"), []byte(SynthConfig), 0o644); err != nil {
		return fmt.Errorf("synthesize: %w", err)
	}
	for _, sub := range []string{"reference", "posted", "inbox/" + SynthSource} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return fmt.Errorf("synthesize: %w", err)
		}
	}
	if err := writeSynthReference(filepath.Join(dir, "reference"), seed); err != nil {
		return err
	}
	return writeSynthCDRs(filepath.Join(dir, "inbox", SynthSource), rows, seed)
}

// SynthFiles lists the inbox files Synthesize writes into dir for rows rows, in order (one
// header-only file for 0 rows).
func SynthFiles(dir string, rows int) []string {
	var files []string
	for _, f := range synthLayout(rows) {
		files = append(files, f.path(dir))
	}
	return files
}

// synthFile is one generated CDR file: rows calls, all on October day, with the call ids first,
// first+1, ...
type synthFile struct {
	day, part, rows, first int
}

func (f synthFile) path(dir string) string {
	return filepath.Join(dir, "inbox", SynthSource, fmt.Sprintf("cdrs-%s-%02d-%04d.csv", SynthPeriod, f.day, f.part))
}

// synthLayout is the files for rows calls, in path order: day by day, each day's rows
// (synthDayRows) in parts of at most SynthFileRows; a day without rows has no file, and 0 rows
// give one header-only file (day 1).
func synthLayout(rows int) []synthFile {
	var files []synthFile
	first := 1
	for d, n := range synthDayRows(rows) {
		for part := 1; n > 0; part++ {
			k := min(n, SynthFileRows)
			files = append(files, synthFile{day: d + 1, part: part, rows: k, first: first})
			first += k
			n -= k
		}
	}
	if len(files) == 0 {
		files = append(files, synthFile{day: 1, part: 1, first: 1})
	}
	return files
}

// synthWeekend tells whether an October day is a Saturday or Sunday.
func synthWeekend(day int) bool {
	wd := (3 + day - 1) % 7 // 2025-10-01 is a Wednesday; 0 = Sunday
	return wd == 0 || wd == 6
}

// synthDayWeight is an October day's share of the calls: a weekday 5, a weekend day 1.
func synthDayWeight(day int) int {
	if synthWeekend(day) {
		return 1
	}
	return 5
}

// synthDayRows splits rows calls over the 31 days of October by their weights, by largest
// remainder: each day gets the whole part of its quota, then the days with the largest
// remainders (the earlier day on a tie) one more each until the total is rows.
func synthDayRows(rows int) [31]int {
	var out, rem [31]int
	total := 0
	for d := range out {
		total += synthDayWeight(d + 1)
	}
	left := rows
	for d := range out {
		q := rows * synthDayWeight(d+1)
		out[d], rem[d] = q/total, q%total
		left -= out[d]
	}
	order := make([]int, len(out))
	for d := range order {
		order[d] = d
	}
	slices.SortStableFunc(order, func(a, b int) int { return rem[b] - rem[a] })
	for _, d := range order[:left] {
		out[d]++
	}
	return out
}

// prepareSynthDir makes dir ready: created when missing; when it holds a previous synthetic data
// set, that is removed; any other content is refused rather than deleted.
func prepareSynthDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return fmt.Errorf("synthesize: %w", err)
	}
	if len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(dir, synthMarker)); err != nil {
			return fmt.Errorf("synthesize: %s is not empty and was not made by cdrbill bench; refusing to overwrite it", dir)
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("synthesize: %w", err)
			}
		}
	}
	return os.WriteFile(filepath.Join(dir, synthMarker), []byte("made by cdrbill bench (pipeline.Synthesize); safe to delete\n"), 0o644)
}

// rng is wyrand: fast, and its sequence is fixed by this code (not by a library's version).
type rng struct{ s uint64 }

func newRNG(seed int64, stream uint64) *rng {
	r := &rng{s: uint64(seed)*0x9e3779b97f4a7c15 ^ (stream+1)*0xbf58476d1ce4e5b9}
	r.next()
	return r
}

func (r *rng) next() uint64 {
	r.s += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(r.s, r.s^0xe7037ed1a0b428db)
	return hi ^ lo
}

// intn is uniform in [0, n) (bias below 2^-32).
func (r *rng) intn(n int) int { return int((r.next() >> 32) * uint64(n) >> 32) }

// float is uniform in (0, 1].
func (r *rng) float() float64 { return (float64(r.next()>>11) + 1) / (1 << 53) }

// fileWriter writes one generated file with a large buffer.
type fileWriter struct {
	f   *os.File
	w   *bufio.Writer
	err error
}

func createSynth(path string) *fileWriter {
	f, err := os.Create(path)
	if err != nil {
		return &fileWriter{err: fmt.Errorf("synthesize: %w", err)}
	}
	return &fileWriter{f: f, w: bufio.NewWriterSize(f, 1<<20)}
}

func (fw *fileWriter) line(format string, args ...any) {
	if fw.err == nil {
		_, fw.err = fmt.Fprintf(fw.w, format+"\n", args...)
	}
}

func (fw *fileWriter) close() error {
	if fw.f == nil {
		return fw.err
	}
	if fw.err == nil {
		fw.err = fw.w.Flush()
	}
	if err := fw.f.Close(); fw.err == nil && err != nil {
		fw.err = err
	}
	if fw.err != nil {
		return fmt.Errorf("synthesize %s: %w", fw.f.Name(), fw.err)
	}
	return nil
}

func writeSynthReference(dir string, seed int64) error {
	r := newRNG(seed, 1<<40)
	path := func(name string) string { return filepath.Join(dir, name) }

	w := createSynth(path("plans.csv"))
	w.line("plan,rounding_method,rounding_decimals,currency")
	w.line("STANDARD,up,4,USD")
	w.line("PREMIUM,half_up,2,USD")
	if err := w.close(); err != nil {
		return err
	}

	w = createSynth(path("products.csv"))
	w.line("product,catalog_identifier,description,taxable,tax_class,gl_account")
	w.line("VOICE-OUT,USAGE-VOICE-OUT,Outbound voice usage,true,voice,4100")
	w.line("VOICE-INTL,USAGE-VOICE-INTL,International voice usage,true,voice,4110")
	w.line("VOICE-IN,USAGE-VOICE-IN,Inbound voice usage,true,voice,4120")
	w.line("DATA,USAGE-DATA,Data usage,false,data,4200")
	// Taxes' GL account: the products.csv row whose product is the tax code.
	for _, code := range synthTaxCodes {
		w.line("%s,TAX-%s,%s tax (SAMPLE),false,tax,2300", code, code, code)
	}
	if err := w.close(); err != nil {
		return err
	}

	w = createSynth(path("time_bands.csv"))
	w.line("band,days,start,end")
	w.line("peak,Mon-Fri,08:00,18:00")
	w.line("offpeak,Mon-Fri,00:00,08:00")
	w.line("offpeak,Mon-Fri,18:00,24:00")
	w.line("offpeak,Sat-Sun,00:00,24:00")
	if err := w.close(); err != nil {
		return err
	}

	// 5 000 customers: 4 in 5 on STANDARD, the jurisdictions in turn, 1 to 40 lines; one in 50
	// exempt from the federal USF, one in 200 from every tax.
	w = createSynth(path("customers.csv"))
	w.line("account,company_id,company_identifier,company_name,agreement_id,rate_plan,jurisdiction,lines,tax_exempt,invoice_mode,effective_from,effective_to")
	for i := 0; i < SynthAccounts; i++ {
		plan := "STANDARD"
		if r.intn(5) == 0 {
			plan = "PREMIUM"
		}
		exempt := ""
		switch {
		case i%200 == 199:
			exempt = "all"
		case i%50 == 49:
			exempt = "USF"
		}
		w.line("%s,%d,SYN%05d,Synthetic Customer %05d,%d,%s,%s,%d,%s,,2025-01-01,",
			synthAccount(i), 10001+i, i+1, i+1, 50001+i, plan, synthJurisdictions[i%len(synthJurisdictions)].code, 1+r.intn(40), exempt)
	}
	if err := w.close(); err != nil {
		return err
	}

	if err := writeSynthRates(path("rates.csv"), r); err != nil {
		return err
	}

	w = createSynth(path("tax_rates.csv"))
	w.line("jurisdiction,tax_code,tax_name,level,tax_class,percent,amount_per_line,base_percent,base_includes,catalog_identifier,effective_from,effective_to")
	for _, l := range synthTaxRates {
		w.line("%s", l)
	}
	return w.close()
}

// synthTaxRates are SAMPLE tax rows for the three jurisdictions: percentages, per-line fees, the
// USF safe-harbour base, tax on tax (AUSTIN-SALES and CA-PUC include USF), a rate change at a
// quarter and a tax on all classes.
var synthTaxRates = []string{
	"US,USF,Federal Universal Service Fund (SAMPLE),federal,voice,36.6,,64.9,,TAX-USF,2025-10-01,",
	"US,USF,Federal Universal Service Fund (SAMPLE),federal,voice,34.5,,64.9,,TAX-USF,2025-07-01,2025-09-30",
	"US-FL,FL-CST,Florida communications services tax (SAMPLE),state,voice,7.44,,,,TAX-FL-CST,2025-01-01,",
	"US-FL,FL-911,Florida 911 fee (SAMPLE),state,voice,,0.40,,,TAX-FL-911,2025-01-01,",
	"US-FL-MIAMI,MIAMI-LCST,Miami local communications services tax (SAMPLE),local,voice,5.12,,,,TAX-MIAMI-LCST,2025-01-01,",
	"US-TX,TX-SALES,Texas sales tax (SAMPLE),state,voice,6.25,,,,TAX-TX-SALES,2025-01-01,",
	"US-TX,TX-911,Texas 911 fee (SAMPLE),state,voice,,0.50,,,TAX-TX-911,2025-01-01,",
	"US-TX-AUSTIN,AUSTIN-SALES,Austin local sales tax (SAMPLE),local,voice,2.0,,,USF,TAX-AUSTIN-SALES,2025-01-01,",
	"US-CA,CA-911,California 911 surcharge (SAMPLE),state,voice,,0.30,,,TAX-CA-911,2025-01-01,",
	"US-CA,CA-PUC,California PUC fees (SAMPLE),state,voice,1.2,,64.9,USF,TAX-CA-PUC,2025-01-01,",
	"US-CA-SANFRANCISCO,SF-UUT,San Francisco utility users tax (SAMPLE),local,all,7.5,,,,TAX-SF-UUT,2025-01-01,",
}

// synthTaxCodes are the tax codes of synthTaxRates.
var synthTaxCodes = []string{"USF", "FL-CST", "FL-911", "MIAMI-LCST", "TX-SALES", "TX-911", "AUSTIN-SALES", "CA-911", "CA-PUC", "SF-UUT"}

// synthAccount is the account value the CDRs of customer i carry.
func synthAccount(i int) string { return strconv.Itoa(700000 + i) }

// writeSynthRates writes the rate deck. STANDARD holds the 50 000 prefixes: every domestic prefix
// with a peak and an offpeak rate (6-second increments), every international prefix with two tiers
// (a first minute billed whole with a connect fee, then 6-second increments); PREMIUM is flat per
// country. Both have an inbound and a data rate.
func writeSynthRates(path string, r *rng) error {
	w := createSynth(path)
	w.line("plan,product,usage_type,direction,prefix,time_band,tier_start,rate,rate_unit,increment,connect_fee,min_charge,max_charge,effective_from,effective_to")
	// rate prints a rate with 4 decimals from an amount in 1/10000.
	rate := func(tenThousandths int) string {
		return fmt.Sprintf("%d.%04d", tenThousandths/10000, tenThousandths%10000)
	}
	for _, npa := range synthDomesticNPAs() {
		prefixes := []string{"1" + npa}
		for nxx := synthNXXFrom; nxx <= synthNXXTo; nxx++ {
			prefixes = append(prefixes, "1"+npa+strconv.Itoa(nxx))
		}
		for _, p := range prefixes {
			peak := 80 + r.intn(170) // 0.0080 .. 0.0249 per minute
			w.line("STANDARD,VOICE-OUT,voice,outbound,%s,peak,0,%s,60,6,0,,,2025-01-01,", p, rate(peak))
			w.line("STANDARD,VOICE-OUT,voice,outbound,%s,offpeak,0,%s,60,6,0,,,2025-01-01,", p, rate(peak/2))
		}
	}
	for _, c := range synthCountries {
		prefixes := []string{c.cc}
		for d := 10; d <= 99; d++ {
			prefixes = append(prefixes, c.cc+strconv.Itoa(d))
		}
		for d := synthIntl3From; d <= synthIntl3To; d++ {
			prefixes = append(prefixes, c.cc+strconv.Itoa(d))
		}
		for _, p := range prefixes {
			first := 200 + r.intn(4800) // 0.0200 .. 0.4999 per minute
			w.line("STANDARD,VOICE-INTL,voice,outbound,%s,,0,%s,60,60,%s,,,2025-01-01,", p, rate(first), rate(r.intn(3)*500))
			w.line("STANDARD,VOICE-INTL,voice,outbound,%s,,60,%s,60,6,,,,2025-01-01,", p, rate(first*9/10))
		}
	}
	w.line("STANDARD,VOICE-IN,voice,inbound,,,0,0.0050,60,6,0,,,2025-01-01,")
	w.line("STANDARD,DATA,data,any,,,0,0.0100,1048576,1048576,0,,,2025-01-01,")
	w.line("PREMIUM,VOICE-OUT,voice,outbound,1,,0,0.0150,60,1,0.0100,,1.0000,2025-01-01,")
	for _, c := range synthCountries {
		w.line("PREMIUM,VOICE-INTL,voice,outbound,%s,,0,%s,60,1,0,,,2025-01-01,", c.cc, rate(150+r.intn(2000)))
	}
	w.line("PREMIUM,VOICE-IN,voice,inbound,,,0,0,60,1,0,,,2025-01-01,")
	w.line("PREMIUM,DATA,data,any,,,0,0.0080,1048576,1,0,0.0500,,2025-01-01,")
	return w.close()
}

// synthTables are the precomputed choices the CDR generator samples from.
type synthTables struct {
	accounts []synthAcct
	npas     [][]byte
	// accountPick maps a uniform 16-bit draw to a customer: a few big customers, many small.
	accountPick [1 << 16]uint16
	// hourWeekday and hourWeekend map 10-bit draws to an hour, weekday business hours being
	// busiest; weekend days get a flatter hour profile.
	hourWeekday [1024]uint8
	hourWeekend [1024]uint8
	countryPick [1024]uint8
}

type synthAcct struct {
	account []byte
	npa     []byte
	block   int
}

var (
	synthOnce sync.Once
	synthTab  *synthTables
)

func synthTablesGet() *synthTables {
	synthOnce.Do(func() {
		t := &synthTables{}
		for i := 0; i < SynthAccounts; i++ {
			t.accounts = append(t.accounts, synthAcct{[]byte(synthAccount(i)), []byte(synthJurisdictions[i%len(synthJurisdictions)].npa), 2000000 + 100*i})
		}
		for _, n := range synthDomesticNPAs() {
			t.npas = append(t.npas, []byte(n))
		}
		for k := range t.accountPick {
			u := (float64(k) + 0.5) / float64(len(t.accountPick))
			t.accountPick[k] = uint16(float64(SynthAccounts) * u * u) // density ∝ 1/sqrt(i)
		}
		weekday := []float64{1, 1, 1, 1, 1, 2, 4, 8, 20, 30, 30, 28, 22, 26, 30, 30, 26, 18, 8, 5, 4, 3, 2, 1}
		weekend := []float64{2, 1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 8, 8, 7, 7, 6, 5, 4, 4, 3, 3, 2}
		fillPick(t.hourWeekday[:], weekday)
		fillPick(t.hourWeekend[:], weekend)
		var cw []float64
		for i := range synthCountries {
			cw = append(cw, 1/float64(i+2)) // Mexico and the UK most called
		}
		fillPick(t.countryPick[:], cw)
		synthTab = t
	})
	return synthTab
}

// fillPick fills a lookup table so that a uniform index picks value i with probability
// proportional to weights[i].
func fillPick(table []uint8, weights []float64) {
	var total float64
	for _, w := range weights {
		total += w
	}
	i, acc := 0, weights[0]
	for k := range table {
		x := (float64(k) + 0.5) / float64(len(table)) * total
		for x > acc && i < len(weights)-1 {
			i++
			acc += weights[i]
		}
		table[k] = uint8(i)
	}
}

// writeSynthCDRs writes the CDR files, several at once (each file has its own random stream, so
// the bytes do not depend on the parallelism).
func writeSynthCDRs(dir string, rows int, seed int64) error {
	files := synthLayout(rows)
	root := filepath.Dir(filepath.Dir(dir))
	workers := min(runtime.GOMAXPROCS(0), len(files))
	jobs := make(chan int)
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				errs[i] = writeSynthCDRFile(files[i].path(root), files[i], i, seed)
			}
		})
	}
	for i := range files {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return errors.Join(errs...)
}

// CDRHeader is the generic format's header row.
const CDRHeader = "call_id,account,direction,origin,destination,start,duration,usage_type,bytes"

// writeSynthCDRFile writes file f, the fileIndex-th (its random stream).
func writeSynthCDRFile(path string, f synthFile, fileIndex int, seed int64) error {
	t := synthTablesGet()
	r := newRNG(seed, uint64(fileIndex))
	fw := createSynth(path)
	if fw.err != nil {
		return fw.err
	}
	w := fw.w
	w.WriteString(CDRHeader + "\n")
	buf := make([]byte, 0, 256)
	day := f.day
	hours := &t.hourWeekday
	if synthWeekend(day) {
		hours = &t.hourWeekend
	}
	for k := 0; k < f.rows; k++ {
		seq := f.first + k
		b := buf[:0]
		b = append(b, 'g')
		b = appendPadded(b, seq, 9)
		b = append(b, ',')
		acct := &t.accounts[t.accountPick[r.next()>>48]]
		b = append(b, acct.account...)
		kind := r.intn(100)
		switch {
		case kind < 70: // domestic outbound
			b = append(b, ",outbound,"...)
			b = appendDID(b, acct, r)
			b = append(b, ",+1"...)
			b = append(b, t.npas[r.intn(len(t.npas))]...)
			b = appendPadded(b, 200+r.intn(800), 3)
			b = appendPadded(b, r.intn(10000), 4)
		case kind < 90: // international outbound
			b = append(b, ",outbound,"...)
			b = appendDID(b, acct, r)
			c := synthCountries[t.countryPick[r.next()>>54]]
			b = append(b, ",+"...)
			b = append(b, c.cc...)
			b = append(b, byte('1'+r.intn(9)))
			for j := 1; j < c.len; j++ {
				b = append(b, byte('0'+r.intn(10)))
			}
		default: // inbound from a fictional 375-379 number
			b = append(b, ",inbound,+1"...)
			b = appendPadded(b, 375+r.intn(5), 3)
			b = appendPadded(b, 2000000+r.intn(8000000), 7)
			b = append(b, ',')
			b = appendDID(b, acct, r)
		}
		hour := int(hours[r.next()>>54])
		secs := r.intn(3600)
		b = append(b, ",2025-10-"...)
		b = appendPadded(b, day, 2)
		b = append(b, 'T')
		b = appendPadded(b, hour, 2)
		b = append(b, ':')
		b = appendPadded(b, secs/60, 2)
		b = append(b, ':')
		b = appendPadded(b, secs%60, 2)
		b = append(b, "-04:00,"...) // EDT all of October 2025
		// Billable seconds: 3 % unanswered (0), else exponential with a mean of 3 minutes, at
		// most 4 hours.
		dur := 0
		if r.intn(100) >= 3 {
			dur = 1 + int(-180*math.Log(r.float()))
			dur = min(dur, 4*3600)
		}
		b = strconv.AppendInt(b, int64(dur), 10)
		b = append(b, ",voice,\n"...)
		if _, err := w.Write(b); err != nil {
			fw.err = err
			break
		}
	}
	return fw.close()
}

// appendDID appends one of the customer's 100 numbers: +1, its NPA, then 2000000 + 100 × its
// index + 0..99.
func appendDID(b []byte, a *synthAcct, r *rng) []byte {
	b = append(b, "+1"...)
	b = append(b, a.npa...)
	return appendPadded(b, a.block+r.intn(100), 7)
}

// appendPadded appends v (>= 0) in decimal, zero-padded to width digits.
func appendPadded(b []byte, v, width int) []byte {
	var tmp [20]byte
	i := len(tmp)
	for v > 0 || i == len(tmp) {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	for n := len(tmp) - i; n < width; n++ {
		b = append(b, '0')
	}
	return append(b, tmp[i:]...)
}
