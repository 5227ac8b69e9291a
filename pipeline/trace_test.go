package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func rtTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The contract's example, through trace: 120 s costs 0.7000 and 130 s 0.7167.
func TestTraceContractExample(t *testing.T) {
	ctx := context.Background()
	r := newTestRun(t)
	rtDeck(t, r)
	cases := []struct {
		seconds              int64
		amount, exact, total string
		billed               []int64
		tierAmounts          []string
	}{
		{120, "0.7000", "7/10", "0.7", []int64{60, 60}, []string{"1/5", "1/10"}},
		{130, "0.7167", "43/60", "0.716666666667…", []int64{60, 70}, []string{"1/5", "7/60"}},
		{1, "0.6000", "3/5", "0.6", []int64{60}, []string{"1/5"}},
		{0, "0.0000", "0", "0", nil, nil},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.seconds), func(t *testing.T) {
			res, err := Trace(ctx, r, TraceRequest{Account: "ACCT-CONTRACT", Destination: "+1 305 555 0123",
				Start: rtTime(t, "2025-10-08T15:00:00Z"), Duration: c.seconds})
			if err != nil {
				t.Fatal(err)
			}
			if res.Amount != c.amount || res.Exact.Fraction != c.exact || res.Exact.Decimal != c.total {
				t.Errorf("amount %s exact %s = %s, want %s, %s = %s", res.Amount, res.Exact.Decimal, res.Exact.Fraction, c.amount, c.total, c.exact)
			}
			if res.Destination != "+13055550123" {
				t.Errorf("destination %q", res.Destination)
			}
			if len(res.Tiers) != len(c.billed) {
				t.Fatalf("tiers %+v", res.Tiers)
			}
			for i, tr := range res.Tiers {
				if tr.Billed != c.billed[i] || tr.Amount.Fraction != c.tierAmounts[i] {
					t.Errorf("tier %d billed %d amount %s, want %d %s", i+1, tr.Billed, tr.Amount.Fraction, c.billed[i], c.tierAmounts[i])
				}
			}
			if res.Plan == nil || res.Plan.RoundingMethod != "up" || res.Plan.RoundingDecimals != 4 {
				t.Errorf("plan %+v", res.Plan)
			}
			if res.ConnectFee != "0.4" || res.Charged != (c.seconds > 0) {
				t.Errorf("connect fee %q charged %v", res.ConnectFee, res.Charged)
			}
			var text bytes.Buffer
			if err := res.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"Amount       " + c.amount + " (up to 4 decimals)", "Exact        " + c.total + " = " + c.exact, "Plan         CONTRACT"} {
				if !strings.Contains(text.String(), want) {
					t.Errorf("text lacks %q:\n%s", want, text.String())
				}
			}
			var js bytes.Buffer
			if err := res.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			var back struct {
				Amount string                    `json:"amount"`
				Exact  struct{ Fraction string } `json:"exact_amount"`
				Tiers  []struct{ Billed int64 }
			}
			if err := json.Unmarshal(js.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
			if back.Amount != c.amount || back.Exact.Fraction != c.exact || len(back.Tiers) != len(c.billed) {
				t.Errorf("json %s", js.String())
			}
		})
	}
}

// Trace and the rate stage give the same answer for every rule case (same models, same tables).
func TestTraceEqualsJob(t *testing.T) {
	ctx := context.Background()
	job := newTestRun(t)
	rtDeck(t, job)
	for i := range rateCases {
		c := rateCases[i].call
		c.id = fmt.Sprintf("cdr-%03d", i)
		if c.start == "" {
			c.start = "2025-10-08T15:00:00Z"
		}
		rtAddCall(t, job, c)
	}
	if err := (RateStage{}).Run(ctx, job); err != nil {
		t.Fatal(err)
	}
	tr := newTestRun(t)
	rtDeck(t, tr)
	for i, tc := range rateCases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.call
			if c.start == "" {
				c.start = "2025-10-08T15:00:00Z"
			}
			res, err := Trace(ctx, tr, TraceRequest{Account: c.account, Destination: c.dest, Start: rtTime(t, c.start),
				Duration: c.duration, Direction: c.direction, Bytes: c.bytes, UsageType: c.usage})
			if err != nil {
				t.Fatal(err)
			}
			var amount, kind string
			var dec int32
			err = job.DB.QueryRowContext(ctx, `SELECT amount::VARCHAR, amount_decimals FROM rated_usage WHERE cdr_id = ?`,
				fmt.Sprintf("cdr-%03d", i)).Scan(&amount, &dec)
			if err == nil {
				amount = decimal.RequireFromString(amount).StringFixed(dec)
			}
			job.DB.QueryRowContext(ctx, `SELECT kind FROM rating_errors WHERE cdr_id = ?`, fmt.Sprintf("cdr-%03d", i)).Scan(&kind)
			gotKind := ""
			if res.Error != nil {
				gotKind = res.Error.Kind
			}
			if res.Amount != amount || gotKind != kind || kind != tc.errKind {
				t.Errorf("trace %q/%q, job %q/%q, want %q/%q", res.Amount, gotKind, amount, kind, tc.amount, tc.errKind)
			}
			if tc.errKind == "" && !rtDecimalEqual(res.Amount, tc.amount) {
				t.Errorf("trace amount %s, want %s", res.Amount, tc.amount)
			}
		})
	}
}

// The candidate list explains why the longest prefix won and why others did not apply.
func TestTraceCandidates(t *testing.T) {
	ctx := context.Background()
	r := newTestRun(t)
	rtDeck(t, r)
	cases := []struct {
		name, account, direction, start string
		want                            []string // "prefix rate_id note" in order
		bands                           string
	}{
		{"longest prefix", "ACCT-LPM", "outbound", "2025-10-08T15:00:00Z",
			[]string{"+1305555 18 chosen", "1 17 shorter prefix"}, "peak"},
		{"direction", "ACCT-DIR", "inbound", "2025-10-08T15:00:00Z",
			[]string{"1305 20 direction outbound", "1305 21 chosen", " 19 shorter prefix"}, "peak"},
		{"own direction", "ACCT-DIR", "outbound", "2025-10-08T15:00:00Z",
			[]string{"1305 20 chosen", "1305 21 direction any loses to outbound", " 19 shorter prefix"}, "peak"},
		{"bands at night", "ACCT-BAND", "outbound", "2025-10-07T05:00:00Z",
			[]string{"1 13 band peak not in force", "1 14 chosen", "1 15 no time band loses to band night"}, "night"},
		{"rate not yet in effect", "ACCT-EFF", "outbound", "2025-10-10T15:00:00Z",
			[]string{"1305 9 chosen", "1305 10 not in effect on 2025-10-10"}, "peak"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Trace(ctx, r, TraceRequest{Account: c.account, Destination: "+13055550123", Direction: c.direction,
				Start: rtTime(t, c.start), Duration: 60})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range res.Candidates {
				got = append(got, fmt.Sprintf("%s %d %s", k.Prefix, k.RateID, k.Note))
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("candidates\n got %q\nwant %q", got, c.want)
			}
			if strings.Join(res.BandsInForce, ",") != c.bands {
				t.Errorf("bands %v, want %s", res.BandsInForce, c.bands)
			}
		})
	}
}

func TestTraceNotRated(t *testing.T) {
	ctx := context.Background()
	r := newTestRun(t)
	rtDeck(t, r)
	cases := []struct {
		account, dest, kind, detail string
	}{
		{"NOBODY", "+13055550123", "unmapped_account", "no customers.csv row for account NOBODY in effect on 2025-10-08"},
		{"ACCT-LPM", "+447700900123", "unrated", "no voice rate in plan LPM for outbound to +447700900123 in effect on 2025-10-08 (time bands in force: peak)"},
	}
	for _, c := range cases {
		res, err := Trace(ctx, r, TraceRequest{Account: c.account, Destination: c.dest, Start: rtTime(t, "2025-10-08T15:00:00Z"), Duration: 60})
		if err != nil {
			t.Fatal(err)
		}
		if res.Error == nil || res.Error.Kind != c.kind || res.Error.Detail != c.detail || res.Amount != "" {
			t.Errorf("%s: %+v amount %q", c.account, res.Error, res.Amount)
		}
		var text bytes.Buffer
		res.WriteText(&text)
		if !strings.Contains(text.String(), "NOT RATED    "+c.kind) {
			t.Errorf("text:\n%s", text.String())
		}
	}
	if _, err := Trace(ctx, r, TraceRequest{Account: "A", Destination: "1", Start: time.Now(), Direction: "sideways"}); !IsInputError(err) {
		t.Errorf("bad direction: %v", err)
	}
}
