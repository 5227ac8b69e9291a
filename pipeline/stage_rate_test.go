package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rtStagedDDL is staged_cdrs as TABLES.md describes it; tests create it as a table.
const rtStagedDDL = `CREATE OR REPLACE TABLE staged_cdrs (
	cdr_id VARCHAR, source VARCHAR, account VARCHAR, direction VARCHAR, origin VARCHAR,
	destination VARCHAR, origin_raw VARCHAR, destination_raw VARCHAR, start_utc TIMESTAMP,
	usage_date DATE, usage_type VARCHAR, duration BIGINT, bytes BIGINT, source_file VARCHAR,
	source_line BIGINT, file_sha256 VARCHAR)`

// tier is one tier of a test rate: from start, rate per unit, billed in increments.
type rtTier struct {
	start int64
	rate  string
	unit  int64
	inc   int64
}

// rtRate is a rate row group for rtAddRate.
type rtRate struct {
	id                   int
	plan, product, usage string
	direction, prefix    string
	band                 string
	from, to             string // to "" = open
	connect, min, max    string // min, max "" = none
	tiers                []rtTier
}

func rtAddRate(t testing.TB, r *Run, x rtRate) {
	t.Helper()
	if x.usage == "" {
		x.usage = "voice"
	}
	if x.direction == "" {
		x.direction = "any"
	}
	if x.product == "" {
		x.product = "usage-" + strings.ToLower(x.plan)
	}
	if x.from == "" {
		x.from = "2025-01-01"
	}
	if x.connect == "" {
		x.connect = "0"
	}
	null := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	for i, tr := range x.tiers {
		var end any
		if i+1 < len(x.tiers) {
			end = x.tiers[i+1].start
		}
		mustExec(t, r, `INSERT INTO ref_rates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS DECIMAL(18,9)), ?, ?,
			CAST(? AS DECIMAL(18,9)), CAST(? AS DECIMAL(18,9)), CAST(? AS DECIMAL(18,9)), CAST(? AS DATE), CAST(? AS DATE), 'rates.csv', ?)`,
			x.id, x.plan, x.product, x.usage, x.direction, x.prefix, x.band, tr.start, end, tr.rate, tr.unit, tr.inc,
			x.connect, null(x.min), null(x.max), x.from, null(x.to), x.id*10+i)
	}
}

func rtAddPlan(t testing.TB, r *Run, plan, method string, decimals int) {
	t.Helper()
	mustExec(t, r, `INSERT INTO ref_plans VALUES (?, ?, ?, 'USD', 'plans.csv', 1)`, plan, method, decimals)
}

func rtAddCustomer(t testing.TB, r *Run, account, plan, from, to string) {
	t.Helper()
	var end any
	if to != "" {
		end = to
	}
	mustExec(t, r, `INSERT INTO ref_customers VALUES (?, 1000 + length(?), ?, ?, 77, ?, 'US-FL-MIAMI', 1, []::VARCHAR[], NULL,
		CAST(? AS DATE), CAST(? AS DATE), 'customers.csv', 2)`, account, account, "C-"+account, "Company "+account, plan, from, end)
}

// rtCall is one staged CDR.
type rtCall struct {
	id, account, direction, dest string
	start                        string // RFC 3339 UTC
	usage                        string // "" = voice
	duration, bytes              int64
}

func rtAddCall(t testing.TB, r *Run, c rtCall) {
	t.Helper()
	if c.usage == "" {
		c.usage = "voice"
	}
	if c.direction == "" {
		c.direction = "outbound"
	}
	st, err := time.Parse(time.RFC3339, c.start)
	if err != nil {
		t.Fatal(err)
	}
	day := st.In(r.Cfg.Location).Format(time.DateOnly)
	mustExec(t, r, `INSERT INTO staged_cdrs VALUES (?, 'pbx1', ?, ?, '+13055550100', ?, '3055550100', ?, CAST(? AS TIMESTAMP),
		CAST(? AS DATE), ?, ?, ?, 'pbx1/cdr.csv', 7, 'abc')`,
		c.id, c.account, c.direction, c.dest, c.dest, st.UTC().Format("2006-01-02 15:04:05"), day, c.usage, c.duration, c.bytes)
}

// rtDeck is the shared fixture of the rating rule tests; each plan isolates one rule.
func rtDeck(t testing.TB, r *Run) {
	t.Helper()
	mustExec(t, r, rtStagedDDL)
	plans := []struct {
		plan, method string
		dec          int
	}{
		{"CONTRACT", "up", 4}, {"SUBC", "half_even", 4}, {"PUP", "up", 2}, {"PHU", "half_up", 2},
		{"PHE", "half_even", 2}, {"PDN", "down", 2}, {"MINMAX", "half_up", 2}, {"S306", "up", 4},
		{"EFF", "down", 2}, {"P1", "half_up", 2}, {"P2", "half_up", 2}, {"BAND", "half_up", 2},
		{"DATA", "half_up", 2}, {"LPM", "half_up", 2}, {"DIR", "half_up", 2}, {"PASS", "up", 4},
		{"MIXU", "up", 6},
	}
	for _, p := range plans {
		rtAddPlan(t, r, p.plan, p.method, p.dec)
		if p.plan != "P1" && p.plan != "P2" {
			rtAddCustomer(t, r, "ACCT-"+p.plan, p.plan, "2025-01-01", "")
		}
	}
	rtAddCustomer(t, r, "ACCT-PC", "P1", "2025-10-01", "2025-10-14")
	rtAddCustomer(t, r, "ACCT-PC", "P2", "2025-10-15", "")
	rtAddCustomer(t, r, "ACCT-GHOST", "NOPLAN", "2025-01-01", "")

	// peak Mon-Fri 08:00-18:00; night 22:00-06:00 every day, split over midnight as the loader does.
	for d := 1; d <= 7; d++ {
		if d <= 5 {
			mustExec(t, r, `INSERT INTO ref_time_bands VALUES ('peak', ?, 480, 1080, 'time_bands.csv', 2)`, d)
		}
		mustExec(t, r, `INSERT INTO ref_time_bands VALUES ('night', ?, 1320, 1440, 'time_bands.csv', 3)`, d)
		mustExec(t, r, `INSERT INTO ref_time_bands VALUES ('night', ?, 0, 360, 'time_bands.csv', 3)`, d)
	}

	rates := []rtRate{
		{id: 1, plan: "CONTRACT", connect: "0.4", tiers: []rtTier{{0, "0.2", 60, 60}, {60, "0.1", 60, 1}}},
		{id: 2, plan: "SUBC", direction: "outbound", tiers: []rtTier{{0, "0.0045", 60, 6}}},
		{id: 3, plan: "PUP", tiers: []rtTier{{0, "0.125", 1, 1}}},
		{id: 4, plan: "PHU", tiers: []rtTier{{0, "0.125", 1, 1}}},
		{id: 5, plan: "PHE", tiers: []rtTier{{0, "0.125", 1, 1}}},
		{id: 6, plan: "PDN", tiers: []rtTier{{0, "0.125", 1, 1}}},
		{id: 7, plan: "MINMAX", min: "0.05", max: "0.50", tiers: []rtTier{{0, "0.01", 60, 60}}},
		{id: 8, plan: "S306", tiers: []rtTier{{0, "0.06", 60, 30}, {30, "0.06", 60, 6}}},
		{id: 9, plan: "EFF", prefix: "1305", to: "2025-10-15", tiers: []rtTier{{0, "0.10", 60, 60}}},
		{id: 10, plan: "EFF", prefix: "1305", from: "2025-10-16", tiers: []rtTier{{0, "0.20", 60, 60}}},
		{id: 11, plan: "P1", tiers: []rtTier{{0, "0.01", 60, 60}}},
		{id: 12, plan: "P2", tiers: []rtTier{{0, "0.02", 60, 60}}},
		{id: 13, plan: "BAND", prefix: "1", band: "peak", product: "band-peak", tiers: []rtTier{{0, "0.10", 60, 60}}},
		{id: 14, plan: "BAND", prefix: "1", band: "night", product: "band-night", tiers: []rtTier{{0, "0.02", 60, 60}}},
		{id: 15, plan: "BAND", prefix: "1", product: "band-any", tiers: []rtTier{{0, "0.05", 60, 60}}},
		{id: 16, plan: "DATA", usage: "data", tiers: []rtTier{{0, "10.00", 1000000000, 1000000}}},
		{id: 17, plan: "LPM", prefix: "1", direction: "outbound", product: "lpm-short", tiers: []rtTier{{0, "0.01", 60, 60}}},
		{id: 18, plan: "LPM", prefix: "+1305555", direction: "outbound", product: "lpm-long", tiers: []rtTier{{0, "0.50", 60, 60}}},
		{id: 19, plan: "DIR", prefix: "", product: "dir-any-fallback", tiers: []rtTier{{0, "0.01", 60, 60}}},
		{id: 20, plan: "DIR", prefix: "1305", direction: "outbound", product: "dir-out", tiers: []rtTier{{0, "0.10", 60, 60}}},
		{id: 21, plan: "DIR", prefix: "1305", direction: "any", product: "dir-any", tiers: []rtTier{{0, "0.30", 60, 60}}},
		{id: 22, plan: "PASS", tiers: []rtTier{{0, "0.06", 60, 60}, {30, "0.12", 60, 6}}},
		{id: 23, plan: "MIXU", tiers: []rtTier{{0, "0.05", 60, 60}, {60, "0.001", 7, 1}}},
	}
	for _, x := range rates {
		rtAddRate(t, r, x)
	}
}

// rtEmpty in rateCase.prefix or .band expects the empty string; a field left "" is not checked.
const rtEmpty = "(empty)"

// rateCase is one staged call and what rating must make of it (hand-computed).
type rateCase struct {
	name string
	call rtCall
	// rated
	amount, billed, prefix, band, plan, product string
	// or not
	errKind string
}

var rateCases = []rateCase{
	// Contract example: (0 s: 0.2/60 s, inc 60), (60 s: 0.1/60 s, inc 1), connect 0.4, up to 4 dp.
	{name: "contract 120s", call: rtCall{account: "ACCT-CONTRACT", dest: "+13055550123", duration: 120}, amount: "0.7000", billed: "120", prefix: rtEmpty, plan: "CONTRACT"},
	{name: "contract 130s", call: rtCall{account: "ACCT-CONTRACT", dest: "+13055550123", duration: 130}, amount: "0.7167", billed: "130"},
	{name: "0s not charged", call: rtCall{account: "ACCT-CONTRACT", dest: "+13055550123", duration: 0}, amount: "0.0000", billed: "0"},
	{name: "1s bills first block", call: rtCall{account: "ACCT-CONTRACT", dest: "+13055550123", duration: 1}, amount: "0.6000", billed: "60"},
	{name: "exactly on tier boundary", call: rtCall{account: "ACCT-CONTRACT", dest: "+13055550123", duration: 60}, amount: "0.6000", billed: "60"},
	// 0.2 + 1*0.1/60 + 0.4 = 0.601666… -> up 0.6017
	{name: "one second into tier 2", call: rtCall{account: "ACCT-CONTRACT", dest: "+13055550123", duration: 61}, amount: "0.6017", billed: "61"},
	// 0.2 + 35940*0.1/60 (= 59.9) + 0.4 = 60.5
	{name: "10 hour call", call: rtCall{account: "ACCT-CONTRACT", dest: "+13055550123", duration: 36000}, amount: "60.5000", billed: "36000"},
	// 0.0045/60 s in 6 s increments: 7 s bills 12 s = 0.0009; 37 s bills 42 s = 0.00315 -> half_even 0.0032
	{name: "sub-cent rate", call: rtCall{account: "ACCT-SUBC", dest: "+13055550123", duration: 7}, amount: "0.0009", billed: "12"},
	{name: "sub-cent half_even tie up to even", call: rtCall{account: "ACCT-SUBC", dest: "+13055550123", duration: 37}, amount: "0.0032", billed: "42"},
	// 18 s = 0.00135 -> tie, 3 is odd -> 0.0014
	{name: "sub-cent half_even tie 0.00135", call: rtCall{account: "ACCT-SUBC", dest: "+13055550123", duration: 13}, amount: "0.0014", billed: "18"},
	// 0.125 and 0.375: ties at 2 dp
	{name: "tie 0.125 up", call: rtCall{account: "ACCT-PUP", dest: "+13055550123", duration: 1}, amount: "0.13", billed: "1"},
	{name: "tie 0.125 half_up", call: rtCall{account: "ACCT-PHU", dest: "+13055550123", duration: 1}, amount: "0.13", billed: "1"},
	{name: "tie 0.125 half_even", call: rtCall{account: "ACCT-PHE", dest: "+13055550123", duration: 1}, amount: "0.12", billed: "1"},
	{name: "tie 0.125 down", call: rtCall{account: "ACCT-PDN", dest: "+13055550123", duration: 1}, amount: "0.12", billed: "1"},
	{name: "tie 0.375 up", call: rtCall{account: "ACCT-PUP", dest: "+13055550123", duration: 3}, amount: "0.38", billed: "3"},
	{name: "tie 0.375 half_up", call: rtCall{account: "ACCT-PHU", dest: "+13055550123", duration: 3}, amount: "0.38", billed: "3"},
	{name: "tie 0.375 half_even", call: rtCall{account: "ACCT-PHE", dest: "+13055550123", duration: 3}, amount: "0.38", billed: "3"},
	{name: "tie 0.375 down", call: rtCall{account: "ACCT-PDN", dest: "+13055550123", duration: 3}, amount: "0.37", billed: "3"},
	// 0.01/60 s, min 0.05, max 0.50
	{name: "minimum charge", call: rtCall{account: "ACCT-MINMAX", dest: "+13055550123", duration: 60}, amount: "0.05", billed: "60"},
	{name: "between min and max", call: rtCall{account: "ACCT-MINMAX", dest: "+13055550123", duration: 1800}, amount: "0.30", billed: "1800"},
	{name: "maximum charge", call: rtCall{account: "ACCT-MINMAX", dest: "+13055550123", duration: 3600}, amount: "0.50", billed: "3600"},
	// 30/6 at 0.06/60 s (0.001 per s)
	{name: "30/6 45s bills 48s", call: rtCall{account: "ACCT-S306", dest: "+13055550123", duration: 45}, amount: "0.0480", billed: "48"},
	{name: "30/6 20s bills 30s", call: rtCall{account: "ACCT-S306", dest: "+13055550123", duration: 20}, amount: "0.0300", billed: "30"},
	{name: "30/6 31s bills 36s", call: rtCall{account: "ACCT-S306", dest: "+13055550123", duration: 31}, amount: "0.0360", billed: "36"},
	// rate change 0.10 -> 0.20 on 2025-10-16 (billing day, America/New_York)
	{name: "old rate", call: rtCall{account: "ACCT-EFF", dest: "+13055550123", start: "2025-10-15T14:00:00Z", duration: 60}, amount: "0.10", billed: "60", prefix: "1305"},
	{name: "old rate, late evening local", call: rtCall{account: "ACCT-EFF", dest: "+13055550123", start: "2025-10-16T03:30:00Z", duration: 60}, amount: "0.10", billed: "60"},
	{name: "new rate", call: rtCall{account: "ACCT-EFF", dest: "+13055550123", start: "2025-10-16T14:00:00Z", duration: 60}, amount: "0.20", billed: "60"},
	{name: "no rate outside the deck", call: rtCall{account: "ACCT-EFF", dest: "+12125550123", duration: 60}, errKind: "unrated"},
	// plan P1 until 2025-10-14, P2 from 2025-10-15
	{name: "plan before change", call: rtCall{account: "ACCT-PC", dest: "+13055550123", start: "2025-10-14T14:00:00Z", duration: 60}, amount: "0.01", plan: "P1", billed: "60"},
	{name: "plan after change", call: rtCall{account: "ACCT-PC", dest: "+13055550123", start: "2025-10-15T14:00:00Z", duration: 60}, amount: "0.02", plan: "P2", billed: "60"},
	{name: "customer not yet in effect", call: rtCall{account: "ACCT-PC", dest: "+13055550123", start: "2025-10-01T02:00:00Z", duration: 60}, errKind: "unmapped_account"},
	{name: "unknown account", call: rtCall{account: "NOBODY", dest: "+13055550123", duration: 60}, errKind: "unmapped_account"},
	{name: "plan missing from plans.csv", call: rtCall{account: "ACCT-GHOST", dest: "+13055550123", duration: 60}, errKind: "unrated"},
	// bands: 2025-10-06 is a Monday; EDT = UTC-4
	{name: "peak Monday 09:00", call: rtCall{account: "ACCT-BAND", dest: "+13055550123", start: "2025-10-06T13:00:00Z", duration: 60}, amount: "0.10", band: "peak", product: "band-peak", billed: "60"},
	{name: "peak starts 08:00", call: rtCall{account: "ACCT-BAND", dest: "+13055550123", start: "2025-10-06T12:00:00Z", duration: 60}, amount: "0.10", band: "peak", billed: "60"},
	{name: "peak ends at 18:00", call: rtCall{account: "ACCT-BAND", dest: "+13055550123", start: "2025-10-06T22:00:00Z", duration: 60}, amount: "0.05", band: rtEmpty, product: "band-any", billed: "60"},
	{name: "night Monday 23:30", call: rtCall{account: "ACCT-BAND", dest: "+13055550123", start: "2025-10-07T03:30:00Z", duration: 60}, amount: "0.02", band: "night", billed: "60"},
	{name: "night past midnight Tuesday 01:00", call: rtCall{account: "ACCT-BAND", dest: "+13055550123", start: "2025-10-07T05:00:00Z", duration: 60}, amount: "0.02", band: "night", billed: "60"},
	{name: "Saturday 09:00 no band", call: rtCall{account: "ACCT-BAND", dest: "+13055550123", start: "2025-10-11T13:00:00Z", duration: 60}, amount: "0.05", band: rtEmpty, billed: "60"},
	// data: 10.00 per 1e9 bytes in 1e6-byte increments
	{name: "data on bytes", call: rtCall{account: "ACCT-DATA", usage: "data", bytes: 1500000001}, amount: "15.01", billed: "1501000000", product: "usage-data"},
	{name: "data 0 bytes", call: rtCall{account: "ACCT-DATA", usage: "data", bytes: 0}, amount: "0.00", billed: "0"},
	{name: "voice on a data-only plan", call: rtCall{account: "ACCT-DATA", dest: "+13055550123", duration: 60}, errKind: "unrated"},
	{name: "longest prefix beats cheaper shorter", call: rtCall{account: "ACCT-LPM", dest: "+13055550123", duration: 60}, amount: "0.50", prefix: "+1305555", product: "lpm-long", billed: "60"},
	{name: "shorter prefix elsewhere", call: rtCall{account: "ACCT-LPM", dest: "+12125550123", duration: 60}, amount: "0.01", prefix: "1", product: "lpm-short", billed: "60"},
	// calls are matched on the destination cut to the deck's longest prefix (7 digits here): a
	// shorter destination is its own cut, and one that differs only after the cut shares it
	{name: "destination shorter than the deck's longest prefix", call: rtCall{account: "ACCT-LPM", dest: "+1305", duration: 60}, amount: "0.01", prefix: "1", product: "lpm-short", billed: "60"},
	{name: "same cut, other digits after it", call: rtCall{account: "ACCT-LPM", dest: "+13055559999", duration: 60}, amount: "0.50", prefix: "+1305555", product: "lpm-long", billed: "60"},
	{name: "no fallback prefix", call: rtCall{account: "ACCT-LPM", dest: "+447700900123", duration: 60}, errKind: "unrated"},
	{name: "outbound inbound-only deck", call: rtCall{account: "ACCT-LPM", direction: "inbound", dest: "+13055550123", duration: 60}, errKind: "unrated"},
	{name: "own direction beats any", call: rtCall{account: "ACCT-DIR", dest: "+13055550123", duration: 60}, amount: "0.10", product: "dir-out", billed: "60"},
	{name: "inbound takes any", call: rtCall{account: "ACCT-DIR", direction: "inbound", dest: "+13055550123", duration: 60}, amount: "0.30", product: "dir-any", billed: "60"},
	// tier 1 bills 60 s although tier 2 starts at 30 s: t = 60 is past the call, tier 2 bills nothing
	{name: "billing passes into the next tier", call: rtCall{account: "ACCT-PASS", dest: "+13055550123", duration: 45}, amount: "0.0600", billed: "60"},
	// 75 s: 30 s of tier 2 from t = 60 -> 60 + 18 (increment 6) = 78 s: 0.06 + 18*0.12/60 = 0.096
	{name: "tier 2 counts from where tier 1 billing ended", call: rtCall{account: "ACCT-PASS", dest: "+13055550123", duration: 75}, amount: "0.0960", billed: "78"},
	// rate units 60 and 7 in one rate: 0.05 + 14*0.001/7 = 0.052
	{name: "tiers with different rate units", call: rtCall{account: "ACCT-MIXU", dest: "+13055550123", duration: 74}, amount: "0.052000", billed: "74"},
	// 61 s: 0.05 + 0.001/7 = 0.050142857… -> up 0.050143
	{name: "non-terminating exact amount", call: rtCall{account: "ACCT-MIXU", dest: "+13055550123", duration: 61}, amount: "0.050143", billed: "61"},
	{name: "inbound fallback", call: rtCall{account: "ACCT-DIR", direction: "inbound", dest: "+12125550123", duration: 60}, amount: "0.01", prefix: rtEmpty, product: "dir-any-fallback", billed: "60"},
}

func TestRateStage(t *testing.T) {
	ctx := context.Background()
	r := newTestRun(t)
	rtDeck(t, r)
	for i := range rateCases {
		c := rateCases[i].call
		c.id = fmt.Sprintf("cdr-%03d", i)
		if c.start == "" {
			c.start = "2025-10-08T15:00:00Z" // a Wednesday, 11:00 local
		}
		rtAddCall(t, r, c)
	}
	if err := (RateStage{}).Run(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got := (RateStage{}).String(); got != "rate" {
		t.Errorf("String() = %q", got)
	}
	// the join-side setting of the rating models does not outlive them
	var disabled string
	if err := r.DB.QueryRowContext(ctx, `SELECT current_setting('disabled_optimizers')`).Scan(&disabled); err != nil || disabled != "" {
		t.Errorf("disabled_optimizers after rating = %q (%v), want empty", disabled, err)
	}
	for i, tc := range rateCases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("cdr-%03d", i)
			var amount, billed, prefix, band, plan, product string
			var n int
			err := r.DB.QueryRowContext(ctx, `SELECT count(*) OVER (), amount::VARCHAR, billed_quantity::VARCHAR,
				matched_prefix, time_band, plan, product FROM rated_usage WHERE cdr_id = ?`, id).
				Scan(&n, &amount, &billed, &prefix, &band, &plan, &product)
			var kind string
			kerr := r.DB.QueryRowContext(ctx, `SELECT kind FROM rating_errors WHERE cdr_id = ?`, id).Scan(&kind)
			if tc.errKind != "" {
				if err == nil {
					t.Fatalf("rated as %s, want %s", amount, tc.errKind)
				}
				if kerr != nil || kind != tc.errKind {
					t.Fatalf("error kind %q (%v), want %q", kind, kerr, tc.errKind)
				}
				return
			}
			if err != nil {
				t.Fatalf("not rated (%v); rating_errors kind %q", err, kind)
			}
			if kerr == nil {
				t.Errorf("also in rating_errors as %s", kind)
			}
			// amount is DECIMAL(18,6): compare at the plan's decimals
			if want := tc.amount; !rtDecimalEqual(amount, want) {
				t.Errorf("amount %s, want %s", amount, want)
			}
			if billed != tc.billed {
				t.Errorf("billed %s, want %s", billed, tc.billed)
			}
			if tc.prefix != "" && prefix != strings.TrimPrefix(tc.prefix, rtEmpty) {
				t.Errorf("prefix %q, want %q", prefix, tc.prefix)
			}
			if tc.band != "" && band != strings.TrimPrefix(tc.band, rtEmpty) {
				t.Errorf("band %q, want %q", band, tc.band)
			}
			if tc.plan != "" && plan != tc.plan {
				t.Errorf("plan %q, want %q", plan, tc.plan)
			}
			if tc.product != "" && product != tc.product {
				t.Errorf("product %q, want %q", product, tc.product)
			}
		})
	}
	// the contract's column list and types (TABLES.md)
	for table, want := range map[string]string{
		"rated_usage": "cdr_id VARCHAR, account VARCHAR, company_id BIGINT, company_identifier VARCHAR, company_name VARCHAR, " +
			"agreement_id BIGINT, jurisdiction VARCHAR, invoice_mode VARCHAR, usage_date DATE, start_utc TIMESTAMP, " +
			"direction VARCHAR, origin VARCHAR, destination VARCHAR, usage_type VARCHAR, plan VARCHAR, product VARCHAR, " +
			"matched_prefix VARCHAR, time_band VARCHAR, duration BIGINT, quantity BIGINT, billed_quantity BIGINT, " +
			"amount DECIMAL(18,6), amount_decimals INTEGER, source_file VARCHAR, source_line BIGINT",
		"rating_errors": "kind VARCHAR, cdr_id VARCHAR, account VARCHAR, key VARCHAR, detail VARCHAR, source_file VARCHAR, source_line BIGINT",
	} {
		var got string
		if err := r.DB.QueryRowContext(ctx, `SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position)
			FROM information_schema.columns WHERE table_name = ?`, table).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s columns\n got %s\nwant %s", table, got, want)
		}
	}
	// every staged CDR ends in exactly one place
	var staged, rated, errs int64
	if err := r.DB.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM staged_cdrs), (SELECT count(*) FROM rated_usage),
		(SELECT count(*) FROM rating_errors)`).Scan(&staged, &rated, &errs); err != nil {
		t.Fatal(err)
	}
	if staged != rated+errs || staged != int64(len(rateCases)) {
		t.Errorf("staged %d, rated %d + errors %d", staged, rated, errs)
	}
	if r.Counts["unrated"] != 5 || r.Counts["unmapped_account"] != 2 {
		t.Errorf("counts %v", r.Counts)
	}
	// The export stage owns the error queue's review items; rating only counts.
	if len(r.Review) != 0 {
		t.Errorf("review %v", r.Review)
	}
	// rated_usage is a view of Parquet files in the run's scratch folder, one per first character
	// of cdr_id (all "c" here); Close removes them
	var kind string
	var files int64
	if err := r.DB.QueryRowContext(ctx, `SELECT table_type FROM information_schema.tables WHERE table_name = 'rated_usage'`).
		Scan(&kind); err != nil || kind != "VIEW" {
		t.Errorf("rated_usage is a %q (%v), want a VIEW", kind, err)
	}
	shards, _ := filepath.Glob(filepath.Join(r.ScratchDir(), "rated_usage-*", "shards", "*", "*.parquet"))
	if err := r.DB.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet("+sqlList(shards)+")").Scan(&files); err != nil ||
		len(shards) != 1 || files != rated {
		t.Errorf("rated_usage files %v hold %d rows (%v), want one file of %d", shards, files, err, rated)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.ScratchDir()); !os.IsNotExist(err) {
		t.Errorf("scratch folder left after Close: %v", err)
	}
}

// rtDecimalEqual compares two decimal strings numerically ("0.130000" = "0.13").
func rtDecimalEqual(a, b string) bool {
	trim := func(s string) string {
		if strings.Contains(s, ".") {
			s = strings.TrimRight(s, "0")
			s = strings.TrimSuffix(s, ".")
		}
		return s
	}
	return trim(a) == trim(b)
}
