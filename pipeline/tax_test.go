package pipeline

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

const taxHeader = "jurisdiction,tax_code,tax_name,level,tax_class,percent,amount_per_line,base_percent,base_includes,catalog_identifier,effective_from,effective_to\n"

// loadTaxRates writes text (rows after taxHeader) as tax_rates.csv and inserts its rows into
// ref_tax_rates with their file and line, as the reference loader would.
func loadTaxRates(t testing.TB, r *Run, rows string) string {
	t.Helper()
	path := filepath.Join(r.Cfg.Dir, "tax_rates.csv")
	if err := os.WriteFile(path, []byte(taxHeader+rows), 0o644); err != nil {
		t.Fatal(err)
	}
	cr := csv.NewReader(strings.NewReader(taxHeader + rows))
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for i, rec := range recs[1:] {
		v := func(k int) any {
			if rec[k] == "" {
				return nil
			}
			return rec[k]
		}
		mustExec(t, r, `INSERT INTO ref_tax_rates VALUES (?, ?, ?, ?, ?, CAST(? AS DECIMAL(18,6)),
			CAST(? AS DECIMAL(18,6)), coalesce(CAST(? AS DECIMAL(9,4)), 100),
			CASE WHEN ? IS NULL THEN []::VARCHAR[] ELSE string_split(?, ';') END, ?, CAST(? AS DATE),
			CAST(? AS DATE), ?, ?)`, v(0), v(1), v(2), v(3), v(4), v(5), v(6), v(7), v(8), v(8), v(9), v(10), v(11),
			path, i+2)
	}
	return path
}

// taxWorld sets up products and the tables the tax stage reads.
func taxWorld(t testing.TB, r *Run) {
	t.Helper()
	mustExec(t, r, `INSERT INTO ref_products VALUES
		('VOICE-OUT', 'USAGE-VOICE-OUT', 'Outbound voice', true, 'voice', '4100', 'products.csv', 2),
		('VOICE-IN', 'USAGE-VOICE-IN', 'Inbound voice', true, 'voice', '4120', 'products.csv', 3),
		('DATA', 'USAGE-DATA', 'Data', false, 'data', '4200', 'products.csv', 4),
		('FAX', 'USAGE-FAX', 'Fax', true, 'fax', '4300', 'products.csv', 5)`)
	taxWorldTables(t, r)
}

// taxWorldTables creates usage_summary and rated_usage (columns of sql/TABLES.md), empty.
func taxWorldTables(t testing.TB, r *Run) {
	t.Helper()
	mustExec(t, r, `CREATE OR REPLACE TABLE usage_summary (company_id BIGINT, company_identifier VARCHAR,
		company_name VARCHAR, agreement_id BIGINT, jurisdiction VARCHAR, invoice_mode VARCHAR, product VARCHAR,
		catalog_identifier VARCHAR, description VARCHAR, taxable BOOLEAN, tax_class VARCHAR, gl_account VARCHAR,
		usage_type VARCHAR, calls BIGINT, billed_quantity BIGINT, amount DECIMAL(18,2))`)
	mustExec(t, r, `CREATE OR REPLACE TABLE rated_usage (cdr_id VARCHAR, account VARCHAR, company_id BIGINT,
		company_identifier VARCHAR, company_name VARCHAR, agreement_id BIGINT, jurisdiction VARCHAR,
		invoice_mode VARCHAR, usage_date DATE, start_utc TIMESTAMP, direction VARCHAR, origin VARCHAR,
		destination VARCHAR, usage_type VARCHAR, plan VARCHAR, product VARCHAR, matched_prefix VARCHAR,
		time_band VARCHAR, duration BIGINT, quantity BIGINT, billed_quantity BIGINT, amount DECIMAL(18,6),
		amount_decimals INTEGER, source_file VARCHAR, source_line BIGINT)`)
}

type taxCustomer struct {
	account, ident, jur string
	id                  int64
	lines               int
	exempt              string // ';'-separated
}

type taxSummary struct {
	id     int64
	ident  string
	jur    string
	prod   string
	amount string
	calls  int64
}

type taxRated struct {
	id     int64
	prod   string
	date   string
	amount string
}

func addTaxCustomers(t testing.TB, r *Run, cs []taxCustomer) {
	t.Helper()
	for i, c := range cs {
		mustExec(t, r, `INSERT INTO ref_customers VALUES (?, ?, ?, ?, NULL, 'STANDARD', ?, ?,
			CASE WHEN ? = '' THEN []::VARCHAR[] ELSE string_split(?, ';') END, NULL, DATE '2025-01-01', NULL,
			'/ref/customers.csv', ?)`, c.account, c.id, c.ident, c.ident+" Inc", c.jur, c.lines, c.exempt, c.exempt, i+2)
	}
}

func addTaxSummary(t testing.TB, r *Run, ss []taxSummary) {
	t.Helper()
	for _, s := range ss {
		mustExec(t, r, `INSERT INTO usage_summary SELECT ?, ?, ?, NULL, ?, 'summary', p.product,
			p.catalog_identifier, p.description, p.taxable, p.tax_class, p.gl_account, 'voice', ?, 0,
			CAST(? AS DECIMAL(18,2)) FROM ref_products p WHERE p.product = ?`,
			s.id, s.ident, s.ident+" Inc", s.jur, s.calls, s.amount, s.prod)
	}
}

func addTaxRated(t testing.TB, r *Run, rs []taxRated) {
	t.Helper()
	for i, x := range rs {
		mustExec(t, r, `INSERT INTO rated_usage (cdr_id, company_id, product, usage_date, amount)
			VALUES (?, ?, ?, CAST(? AS DATE), CAST(? AS DECIMAL(18,6)))`, i, x.id, x.prod, x.date, x.amount)
	}
}

// runTax runs the tax stage with a rounding mode and returns "COMPANY CODE base amount" per line,
// and the notes by "COMPANY CODE".
func runTax(t *testing.T, r *Run, mode string) ([]string, map[string]string) {
	t.Helper()
	ctx := context.Background()
	r.Cfg.Billing.TaxRounding = mode
	if err := (TaxStage{}).Run(ctx, r); err != nil {
		t.Fatalf("tax stage: %v", err)
	}
	rows, err := r.DB.QueryContext(ctx, `SELECT company_identifier, tax_code, CAST(taxable_base AS VARCHAR),
		CAST(tax_amount AS VARCHAR), note FROM tax_lines ORDER BY company_identifier, tax_code`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	notes := map[string]string{}
	for rows.Next() {
		var c, code, base, amount, note string
		if err := rows.Scan(&c, &code, &base, &amount, &note); err != nil {
			t.Fatal(err)
		}
		got = append(got, c+" "+code+" "+base+" "+amount)
		notes[c+" "+code] = note
	}
	return got, notes
}

const (
	rowsHierarchy = `US,FED,Federal,federal,voice,1,,,,TAX-FED,2025-01-01,
US-FL,ST,Florida state,state,voice,2,,,,TAX-FL-ST,2025-01-01,
US-FL-MIAMI,CITY,Miami,local,voice,3,,,,TAX-MIA,2025-01-01,
US-F,BOGUS,Not a prefix by segment,state,voice,50,,,,TAX-BOGUS,2025-01-01,
US-FL-MIAMIBEACH,BEACH,Other city,local,voice,9,,,,TAX-BEACH,2025-01-01,
US-TX,TXST,Texas,state,voice,4,,,,TAX-TX,2025-01-01,
US-FL,E911,E911 state,state,voice,,0.40,,,TAX-911,2025-01-01,
US-FL-MIAMI,E911,E911 Miami override,local,voice,,0.45,,,TAX-911,2025-01-01,
`
	rowsTaxOnTax = `US-TX,ST,State,state,voice,6.25,,,,TAX-ST,2025-01-01,
US-TX-AUSTIN,CT,City,local,voice,2,,,ST,TAX-CT,2025-01-01,
`
	rowsUSF = `US,USF,Federal USF,federal,voice,38.1,,64.9,,TAX-USF,2025-10-01,2025-12-31
US,USF,Federal USF,federal,voice,36.0,,64.9,,TAX-USF,2025-07-01,2025-09-30
US-FL,ST,State,state,voice,2,,,,TAX-ST,2025-01-01,
`
)

func TestTaxRules(t *testing.T) {
	cases := []struct {
		name      string
		rates     string
		customers []taxCustomer
		summary   []taxSummary
		rated     []taxRated
		mode      string
		want      []string
		notes     map[string]string // substrings
	}{{
		name:  "hierarchy by segment, deepest row of a code wins",
		rates: rowsHierarchy,
		customers: []taxCustomer{
			{"1", "MIA", "US-FL-MIAMI", 1, 2, ""},
			{"2", "FLX", "US-FLX", 2, 2, ""},
		},
		summary: []taxSummary{{1, "MIA", "US-FL-MIAMI", "VOICE-OUT", "100.00", 1}, {2, "FLX", "US-FLX", "VOICE-OUT", "100.00", 1}},
		mode:    "invoice",
		// FLX lies under US only: US-FL is not a prefix of US-FLX by segments.
		want: []string{"FLX FED 100.00 1.00",
			"MIA CITY 100.00 3.00", "MIA E911 2.00 0.90", "MIA FED 100.00 1.00", "MIA ST 100.00 2.00"},
		notes: map[string]string{"MIA E911": "2 lines × 0.45"},
	}, {
		name:      "USF safe harbour: 38.1 % of 64.9 % of 100.00",
		rates:     rowsUSF,
		customers: []taxCustomer{{"1", "MIA", "US-FL-MIAMI", 1, 2, ""}},
		summary:   []taxSummary{{1, "MIA", "US-FL-MIAMI", "VOICE-OUT", "100.00", 1}},
		mode:      "invoice",
		want:      []string{"MIA ST 100.00 2.00", "MIA USF 64.90 24.73"},
		notes:     map[string]string{"MIA USF": "38.1 % of 64.9 % of voice charges"},
	}, {
		name: "per-line fees use the lines of every account of the company",
		rates: `US-FL,FL-911,FL 911,state,voice,,0.40,,,TAX-FL-911,2025-01-01,
US-TX,TX-911,TX 911,state,voice,,0.50,,,TAX-TX-911,2025-01-01,
US-CA,CA-PPP,CA public purpose,state,all,,1.11,,,TAX-CA-PPP,2023-04-01,
`,
		customers: []taxCustomer{
			{"1a", "MIA", "US-FL-MIAMI", 1, 5, ""}, {"1b", "MIA", "US-FL-MIAMI", 1, 7, ""},
			{"2", "AUS", "US-TX-AUSTIN", 2, 3, ""}, {"3", "SFO", "US-CA-SANFRANCISCO", 3, 2, ""},
			{"4", "DATAONLY", "US-TX-AUSTIN", 4, 9, ""},
		},
		summary: []taxSummary{
			{1, "MIA", "US-FL-MIAMI", "VOICE-OUT", "10.00", 1}, {2, "AUS", "US-TX-AUSTIN", "VOICE-OUT", "10.00", 1},
			{3, "SFO", "US-CA-SANFRANCISCO", "FAX", "10.00", 1}, {4, "DATAONLY", "US-TX-AUSTIN", "DATA", "10.00", 1},
		},
		mode: "invoice",
		want: []string{"AUS TX-911 3.00 1.50", "MIA FL-911 12.00 4.80", "SFO CA-PPP 2.00 2.22"},
	}, {
		name:      "tax on tax, invoice rounding: CT = 2 % of (20.02 + 1.25)",
		rates:     rowsTaxOnTax,
		customers: []taxCustomer{{"1", "AUS", "US-TX-AUSTIN", 1, 1, ""}},
		summary:   []taxSummary{{1, "AUS", "US-TX-AUSTIN", "VOICE-OUT", "10.01", 1}, {1, "AUS", "US-TX-AUSTIN", "VOICE-IN", "10.01", 1}},
		mode:      "invoice",
		want:      []string{"AUS CT 21.27 0.43", "AUS ST 20.02 1.25"},
		notes:     map[string]string{"AUS CT": "2 % of voice charges + ST"},
	}, {
		name:      "tax on tax, line rounding: ST 0.63 per line, CT 2 % of (10.01 + 0.63) per line",
		rates:     rowsTaxOnTax,
		customers: []taxCustomer{{"1", "AUS", "US-TX-AUSTIN", 1, 1, ""}},
		summary:   []taxSummary{{1, "AUS", "US-TX-AUSTIN", "VOICE-OUT", "10.01", 1}, {1, "AUS", "US-TX-AUSTIN", "VOICE-IN", "10.01", 1}},
		mode:      "line",
		want:      []string{"AUS CT 21.28 0.42", "AUS ST 20.02 1.26"},
	}, {
		name: "tax on a per-line fee, invoice: 7.5 % of (20.12 + 2.22) = 1.6755",
		rates: `US-CA,CA-PPP,CA public purpose,state,voice,,1.11,,,TAX-CA-PPP,2023-04-01,
US-CA-SANFRANCISCO,SF-UUT,SF utility users,local,voice,7.5,,,CA-PPP,TAX-SF-UUT,2025-01-01,
`,
		customers: []taxCustomer{{"1", "SFO", "US-CA-SANFRANCISCO", 1, 2, ""}},
		summary:   []taxSummary{{1, "SFO", "US-CA-SANFRANCISCO", "VOICE-OUT", "10.06", 1}, {1, "SFO", "US-CA-SANFRANCISCO", "VOICE-IN", "10.06", 1}},
		mode:      "invoice",
		want:      []string{"SFO CA-PPP 2.00 2.22", "SFO SF-UUT 22.34 1.68"},
	}, {
		name: "tax on a per-line fee, line: 0.75 + 0.75 on the usage lines + 0.17 on the fee line",
		rates: `US-CA,CA-PPP,CA public purpose,state,voice,,1.11,,,TAX-CA-PPP,2023-04-01,
US-CA-SANFRANCISCO,SF-UUT,SF utility users,local,voice,7.5,,,CA-PPP,TAX-SF-UUT,2025-01-01,
`,
		customers: []taxCustomer{{"1", "SFO", "US-CA-SANFRANCISCO", 1, 2, ""}},
		summary:   []taxSummary{{1, "SFO", "US-CA-SANFRANCISCO", "VOICE-OUT", "10.06", 1}, {1, "SFO", "US-CA-SANFRANCISCO", "VOICE-IN", "10.06", 1}},
		mode:      "line",
		want:      []string{"SFO CA-PPP 2.00 2.22", "SFO SF-UUT 22.34 1.67"},
	}, {
		name:      "exemption by code",
		rates:     rowsUSF,
		customers: []taxCustomer{{"1", "MIA", "US-FL-MIAMI", 1, 2, "USF"}},
		summary:   []taxSummary{{1, "MIA", "US-FL-MIAMI", "VOICE-OUT", "100.00", 1}},
		mode:      "invoice",
		want:      []string{"MIA ST 100.00 2.00", "MIA USF 0.00 0.00"},
		notes:     map[string]string{"MIA USF": "exempt: tax_exempt lists USF (customers.csv:2); exempt base 64.90"},
	}, {
		name:      "exemption from all",
		rates:     rowsUSF,
		customers: []taxCustomer{{"1", "MIA", "US-FL-MIAMI", 1, 2, "all"}},
		summary:   []taxSummary{{1, "MIA", "US-FL-MIAMI", "VOICE-OUT", "100.00", 1}},
		mode:      "invoice",
		want:      []string{"MIA ST 0.00 0.00", "MIA USF 0.00 0.00"},
		notes:     map[string]string{"MIA ST": "exempt: tax_exempt = all (customers.csv:2); exempt base 100.00"},
	}, {
		name:      "an exempt tax adds nothing to an including tax's base",
		rates:     rowsTaxOnTax,
		customers: []taxCustomer{{"1", "AUS", "US-TX-AUSTIN", 1, 1, "ST"}},
		summary:   []taxSummary{{1, "AUS", "US-TX-AUSTIN", "VOICE-OUT", "10.01", 1}, {1, "AUS", "US-TX-AUSTIN", "VOICE-IN", "10.01", 1}},
		mode:      "invoice",
		want:      []string{"AUS CT 20.02 0.40", "AUS ST 0.00 0.00"},
	}, {
		name: "rate change on 2025-10-16 applies by usage date: 60.00 × 7.44 % + 40.00 × 8 %",
		rates: `US-FL,ST,State,state,voice,7.44,,,,TAX-ST,2025-01-01,2025-10-15
US-FL,ST,State,state,voice,8,,,,TAX-ST,2025-10-16,
`,
		customers: []taxCustomer{{"1", "MIA", "US-FL-MIAMI", 1, 2, ""}},
		summary:   []taxSummary{{1, "MIA", "US-FL-MIAMI", "VOICE-OUT", "100.00", 2}},
		rated:     []taxRated{{1, "VOICE-OUT", "2025-10-05", "60.004"}, {1, "VOICE-OUT", "2025-10-20", "39.996"}},
		mode:      "invoice",
		want:      []string{"MIA ST 100.00 7.66"},
		notes:     map[string]string{"MIA ST": "rate changed in the period: 7.44 % from 2025-01-01, 8 % from 2025-10-16"},
	}, {
		name: "usage only before the rate change: the old rate, shown as such",
		rates: `US-FL,ST,State,state,voice,7.44,,,,TAX-ST,2025-01-01,2025-10-15
US-FL,ST,State,state,voice,8,,,,TAX-ST,2025-10-16,
`,
		customers: []taxCustomer{{"1", "MIA", "US-FL-MIAMI", 1, 2, ""}},
		summary:   []taxSummary{{1, "MIA", "US-FL-MIAMI", "VOICE-OUT", "60.00", 1}},
		rated:     []taxRated{{1, "VOICE-OUT", "2025-10-05", "60.00"}},
		mode:      "invoice",
		want:      []string{"MIA ST 60.00 4.46"},
		notes:     map[string]string{"MIA ST": "7.44 % of voice charges"},
	}, {
		name: "class filter: voice, all (taxable classes only), data is not taxable",
		rates: `US,VT,Voice tax,federal,voice,10,,,,TAX-VT,2025-01-01,
US,AT,All tax,federal,all,1,,,,TAX-AT,2025-01-01,
US,DT,Data tax,federal,data,5,,,,TAX-DT,2025-01-01,
`,
		customers: []taxCustomer{{"1", "MIA", "US-FL-MIAMI", 1, 2, ""}},
		summary: []taxSummary{{1, "MIA", "US-FL-MIAMI", "VOICE-OUT", "50.00", 1}, {1, "MIA", "US-FL-MIAMI", "DATA", "30.00", 1},
			{1, "MIA", "US-FL-MIAMI", "FAX", "20.00", 1}},
		mode: "invoice",
		want: []string{"MIA AT 70.00 0.70", "MIA VT 50.00 5.00"},
	}, {
		name:      "two 25.00 lines at 8.25 %, invoice: 4.125 rounds to 4.13",
		rates:     "US-TX,ST,State,state,voice,8.25,,,,TAX-ST,2025-01-01,\n",
		customers: []taxCustomer{{"1", "AUS", "US-TX-AUSTIN", 1, 1, ""}},
		summary:   []taxSummary{{1, "AUS", "US-TX-AUSTIN", "VOICE-OUT", "25.00", 1}, {1, "AUS", "US-TX-AUSTIN", "VOICE-IN", "25.00", 1}},
		mode:      "invoice",
		want:      []string{"AUS ST 50.00 4.13"},
	}, {
		name:      "two 25.00 lines at 8.25 %, line: 2.0625 rounds to 2.06 twice",
		rates:     "US-TX,ST,State,state,voice,8.25,,,,TAX-ST,2025-01-01,\n",
		customers: []taxCustomer{{"1", "AUS", "US-TX-AUSTIN", 1, 1, ""}},
		summary:   []taxSummary{{1, "AUS", "US-TX-AUSTIN", "VOICE-OUT", "25.00", 1}, {1, "AUS", "US-TX-AUSTIN", "VOICE-IN", "25.00", 1}},
		mode:      "line",
		want:      []string{"AUS ST 50.00 4.12"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newTestRun(t)
			taxWorld(t, r)
			loadTaxRates(t, r, c.rates)
			addTaxCustomers(t, r, c.customers)
			addTaxSummary(t, r, c.summary)
			addTaxRated(t, r, c.rated)
			got, notes := runTax(t, r, c.mode)
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("tax lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			for k, want := range c.notes {
				if !strings.Contains(notes[k], want) {
					t.Errorf("note of %s = %q, want it to contain %q", k, notes[k], want)
				}
			}
		})
	}
}

// TestTaxRequestSplitsAtRateChanges checks the engine input: a product's charges are cut where a
// tax row starts or ends and add up exactly to the summary amount (cumulative rounding).
func TestTaxRequestSplitsAtRateChanges(t *testing.T) {
	r := newTestRun(t)
	taxWorld(t, r)
	loadTaxRates(t, r, `US-FL,ST,State,state,voice,7.44,,,,TAX-ST,2025-01-01,2025-10-10
US-FL,ST,State,state,voice,8,,,,TAX-ST,2025-10-11,2025-10-20
US-FL,ST,State,state,voice,9,,,,TAX-ST,2025-10-21,
`)
	addTaxCustomers(t, r, []taxCustomer{{"1", "MIA", "US-FL-MIAMI", 1, 2, ""}})
	addTaxSummary(t, r, []taxSummary{{1, "MIA", "US-FL-MIAMI", "VOICE-OUT", "1.01", 3}, {1, "MIA", "US-FL-MIAMI", "VOICE-IN", "5.00", 0}})
	addTaxRated(t, r, []taxRated{{1, "VOICE-OUT", "2025-10-02", "0.3349"}, {1, "VOICE-OUT", "2025-10-12", "0.3349"},
		{1, "VOICE-OUT", "2025-10-30", "0.3349"}})
	req, err := BuildTaxRequest(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range req.Charges {
		got = append(got, c.Product+" "+c.From.Format("01-02")+".."+c.To.Format("01-02")+" "+c.Amount.StringFixed(2))
	}
	sort.Strings(got)
	// Cumulative: 0.3349 → 0.33, 0.6698 → 0.67 (+0.34), 1.0047 → 1.00 (+0.33), then +0.01 to reach
	// the summary's 1.01. VOICE-IN has no rated usage: all of it on the last segment.
	want := []string{"VOICE-IN 10-21..10-31 5.00",
		"VOICE-OUT 10-01..10-10 0.33", "VOICE-OUT 10-11..10-20 0.34", "VOICE-OUT 10-21..10-31 0.34"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("charges:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(req.Customers) != 1 || req.Customers[0].Lines != 2 || req.Customers[0].Jurisdiction != "US-FL-MIAMI" {
		t.Errorf("customers = %+v", req.Customers)
	}
}

type fakeEngine struct{ lines []TaxLine }

func (fakeEngine) String() string { return "fake" }
func (f fakeEngine) Calculate(ctx context.Context, req *TaxRequest) ([]TaxLine, error) {
	return f.lines, nil
}

// TestTaxStageWithAnotherEngine: an external engine's lines land in tax_lines.csv, sorted, with
// spreadsheet-safe text.
func TestTaxStageWithAnotherEngine(t *testing.T) {
	r := newTestRun(t)
	taxWorld(t, r)
	d := decimal.RequireFromString
	engine := fakeEngine{[]TaxLine{
		{CompanyID: 2, CompanyIdentifier: "ZED", Jurisdiction: "US-TX", TaxCode: "TX-911", TaxName: "Texas 911", Level: "state",
			TaxableBase: d("3"), TaxAmount: d("1.5"), CatalogIdentifier: "TAX-TX-911", Note: "3 lines × 0.50", Basis: "per_line", Rate: d("0.5")},
		{CompanyID: 1, CompanyIdentifier: "ACME", Jurisdiction: "US", TaxCode: "USF", TaxName: "=USF", Level: "federal",
			TaxableBase: d("64.9"), TaxAmount: d("24.73"), CatalogIdentifier: "TAX-USF", Basis: "percent", Rate: d("38.1")},
	}}
	if err := (TaxStage{Engine: engine}).Run(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(r.OutPath("tax_lines.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := `company_identifier,jurisdiction,tax_code,tax_name,level,taxable_base,tax_amount,catalog_identifier,note
ACME,US,USF,'=USF,federal,64.90,24.73,TAX-USF,
ZED,US-TX,TX-911,Texas 911,state,3.00,1.50,TAX-TX-911,3 lines × 0.50
`
	if string(b) != want {
		t.Errorf("tax_lines.csv:\n%s\nwant:\n%s", b, want)
	}
	if r.Counts["tax_lines"] != 2 {
		t.Errorf("count = %d, want 2", r.Counts["tax_lines"])
	}
}

func TestTaxSample(t *testing.T) {
	r := newTestRun(t)
	taxWorld(t, r)
	loadTaxRates(t, r, rowsUSF+"US-TX,TX-911,TX 911,state,voice,,0.50,,,TAX-TX-911,2025-01-01,\n")
	addTaxCustomers(t, r, []taxCustomer{{"1", "MIA", "US-FL-MIAMI", 1, 2, ""}, {"2", "AUS1", "US-TX-AUSTIN", 2, 3, ""},
		{"3", "AUS2", "US-TX-AUSTIN", 3, 1, ""}, {"4", "SFO", "US-CA-SANFRANCISCO", 4, 1, "all"}})
	addTaxSummary(t, r, []taxSummary{{1, "MIA", "US-FL-MIAMI", "VOICE-OUT", "100.00", 50},
		{2, "AUS1", "US-TX-AUSTIN", "VOICE-OUT", "10.00", 40}, {3, "AUS2", "US-TX-AUSTIN", "VOICE-OUT", "10.00", 30},
		{4, "SFO", "US-CA-SANFRANCISCO", "VOICE-OUT", "10.00", 5}})
	runTax(t, r, "invoice")
	samples, err := TaxSample(context.Background(), r, 2)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range samples {
		got = append(got, s.String())
	}
	want := []string{
		"US-TX-AUSTIN (70 calls): AUS1, taxable charges 10.00; TX-911 0.50/line × 3.00 = 1.50; USF 38.1 % × 6.49 = 2.47",
		"US-FL-MIAMI (50 calls): MIA, taxable charges 100.00; ST 2 % × 100.00 = 2.00; USF 38.1 % × 64.90 = 24.73",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("samples:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestTaxDemoTable runs the demo's reference data (fixtures/demo/reference, tax_rates.csv being
// SAMPLE rates) on a hand-made October 2025 summary: taxes for all three demo jurisdictions.
func TestTaxDemoTable(t *testing.T) {
	for _, mode := range []string{"invoice", "line"} {
		t.Run(mode, func(t *testing.T) {
			r := newTestRun(t)
			ctx := context.Background()
			if err := LoadReference(ctx, r.DB, filepath.Join("..", "fixtures", "demo", "reference"), "USD"); err != nil {
				t.Fatal(err)
			}
			if err := ValidateTaxRates(ctx, r.DB); err != nil {
				t.Fatalf("demo tax table refused: %v", err)
			}
			taxWorldTables(t, r)
			addTaxSummary(t, r, []taxSummary{
				{250, "ACMEDENTAL", "US-FL-MIAMI", "VOICE-OUT", "100.00", 10}, {250, "ACMEDENTAL", "US-FL-MIAMI", "DATA", "20.00", 1},
				{251, "BLUEBIRDLAW", "US-TX-AUSTIN", "VOICE-OUT", "40.00", 8}, {251, "BLUEBIRDLAW", "US-TX-AUSTIN", "VOICE-INTL", "10.00", 1},
				{253, "DELTAMED", "US-CA-SANFRANCISCO", "VOICE-OUT", "80.00", 5},
			})
			runTax(t, r, mode)
			b, err := os.ReadFile(r.OutPath("tax_lines.csv"))
			if err != nil {
				t.Fatal(err)
			}
			// USF 38.1 % × 64.9 % × 100.00 = 24.7269; × 50.00 = 12.36345; DELTAMED is exempt (64.9 % of 80.00 = 51.92).
			// SF-UUT 7.5 % × (80.00 + 3 × 1.11) = 6.24975 (line mode: 6.00 + 0.24975 → 0.25).
			want := `company_identifier,jurisdiction,tax_code,tax_name,level,taxable_base,tax_amount,catalog_identifier,note
ACMEDENTAL,US-FL,FL-911,Florida E911 fee,state,4.00,1.60,TAX-FL-911,4 lines × 0.40
ACMEDENTAL,US-FL,FL-CST,Florida communications services tax (state),state,100.00,7.44,TAX-FL-CST,7.44 % of voice charges
ACMEDENTAL,US-FL-MIAMI,MIAMI-CST,Miami local communications services tax,local,100.00,5.22,TAX-MIAMI-CST,5.22 % of voice charges
ACMEDENTAL,US,USF,Federal Universal Service Fund recovery,federal,64.90,24.73,TAX-USF,38.1 % of 64.9 % of voice charges
BLUEBIRDLAW,US-TX,TX-911,Texas 911 emergency service fee,state,2.00,1.00,TAX-TX-911,2 lines × 0.50
BLUEBIRDLAW,US-TX,TX-SALES,Texas state sales tax on telecommunications,state,50.00,3.13,TAX-TX-SALES,6.25 % of voice charges
BLUEBIRDLAW,US,USF,Federal Universal Service Fund recovery,federal,32.45,12.36,TAX-USF,38.1 % of 64.9 % of voice charges
DELTAMED,US-CA,CA-PPP,California public purpose programs surcharge,state,3.00,3.33,TAX-CA-PPP,3 lines × 1.11
DELTAMED,US-CA-SANFRANCISCO,SF-UUT,San Francisco utility users tax,local,83.33,6.25,TAX-SF-UUT,7.5 % of voice charges + CA-PPP
DELTAMED,US,USF,Federal Universal Service Fund recovery,federal,0.00,0.00,TAX-USF,exempt: tax_exempt lists USF (customers.csv:6); exempt base 51.92
`
			if string(b) != want {
				t.Errorf("tax_lines.csv:\n%s\nwant:\n%s", b, want)
			}
		})
	}
}

// TestSQLTaxEngineDirect drives the engine through the TaxEngine interface alone, as the stage
// would drive an external adapter: charges already split by date range, lines, exemptions.
func TestSQLTaxEngineDirect(t *testing.T) {
	r := newTestRun(t)
	taxWorld(t, r)
	loadTaxRates(t, r, `US-FL,ST,State,state,voice,7.44,,,,TAX-ST,2025-01-01,2025-10-15
US-FL,ST,State,state,voice,8,,,,TAX-ST,2025-10-16,
US-FL,FL-911,FL 911,state,voice,,0.40,,,TAX-FL-911,2025-01-01,
US-FL-MIAMI,MIA,Miami,local,all,5,,,ST;FL-911,TAX-MIA,2025-01-01,
`)
	d := decimal.RequireFromString
	day := func(s string) time.Time { v, _ := time.Parse(time.DateOnly, s); return v }
	req := &TaxRequest{Period: r.Period, Rounding: "invoice",
		Customers: []TaxCustomer{
			{CompanyID: 7, CompanyIdentifier: "SEVEN", Jurisdiction: "US-FL-MIAMI", Lines: 3},
			{CompanyID: 8, CompanyIdentifier: "EIGHT", Jurisdiction: "US-FL-MIAMI", Lines: 1, Exempt: []string{"FL-911"}, ExemptSource: "x.csv:9"},
		},
		Charges: []TaxCharge{
			{CompanyID: 7, Product: "VOICE-OUT", TaxClass: "voice", From: day("2025-10-01"), To: day("2025-10-15"), Amount: d("50.00")},
			{CompanyID: 7, Product: "VOICE-OUT", TaxClass: "voice", From: day("2025-10-16"), To: day("2025-10-31"), Amount: d("25.00")},
			{CompanyID: 7, Product: "FAX", TaxClass: "fax", From: day("2025-10-16"), To: day("2025-10-31"), Amount: d("10.00")},
			{CompanyID: 8, Product: "VOICE-OUT", TaxClass: "voice", From: day("2025-10-16"), To: day("2025-10-31"), Amount: d("10.00")},
		}}
	lines, err := (&SQLTaxEngine{DB: r.DB}).Calculate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		got = append(got, fmt.Sprintf("%s %s %s %s %s %s %v", l.CompanyIdentifier, l.TaxCode, l.Basis, l.Rate,
			l.TaxableBase.StringFixed(2), l.TaxAmount.StringFixed(2), l.Exempt))
	}
	// SEVEN: ST 50.00 × 7.44 % + 25.00 × 8 % = 3.72 + 2.00 = 5.72; FL-911 3 × 0.40 = 1.20;
	// MIA 5 % of (85.00 + 5.72 + 1.20) = 91.92 × 5 % = 4.596 → 4.60.
	// EIGHT: ST 0.80; FL-911 exempt; MIA 5 % of (10.00 + 0.80) = 0.54.
	want := []string{
		"EIGHT FL-911 per_line 0.4 0.00 0.00 true", "EIGHT MIA percent 5 10.80 0.54 false", "EIGHT ST percent 8 10.00 0.80 false",
		"SEVEN FL-911 per_line 0.4 3.00 1.20 false", "SEVEN MIA percent 5 91.92 4.60 false", "SEVEN ST percent 8 75.00 5.72 false",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestTaxFlagsUntaxedCustomers: taxable charges in a jurisdiction no row covers need review.
func TestTaxFlagsUntaxedCustomers(t *testing.T) {
	r := newTestRun(t)
	taxWorld(t, r)
	loadTaxRates(t, r, "US-FL,ST,State,state,voice,2,,,,TAX-ST,2025-01-01,\n")
	addTaxCustomers(t, r, []taxCustomer{{"1", "MIA", "US-FL-MIAMI", 1, 1, ""}, {"2", "TYPO", "US-LF-MIAMI", 2, 1, ""}})
	addTaxSummary(t, r, []taxSummary{{1, "MIA", "US-FL-MIAMI", "VOICE-OUT", "10.00", 1}, {2, "TYPO", "US-LF-MIAMI", "VOICE-OUT", "10.00", 1}})
	got, _ := runTax(t, r, "invoice")
	if strings.Join(got, ";") != "MIA ST 10.00 0.20" {
		t.Errorf("lines = %v", got)
	}
	if len(r.Review) != 1 || r.Review[0] != (ReviewItem{"untaxed_customer", 1}) {
		t.Errorf("review = %+v, want one untaxed_customer", r.Review)
	}
}
