package pipeline

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/shopspring/decimal"
)

// TraceRequest is one call to explain (cdrbill trace).
type TraceRequest struct {
	Account     string
	Destination string // as dialled; normalised to E.164 as ingest does when it can be
	Start       time.Time
	Duration    int64  // billable seconds (voice)
	Direction   string // outbound (default) or inbound
	Bytes       int64  // data records: bytes; > 0 makes the record data unless UsageType says otherwise
	UsageType   string // voice or data; "" = data when Bytes > 0, else voice
}

// TraceResult explains the rating of one call, step by step. Amounts are decimal strings; exact
// amounts that do not terminate in decimal are also given as fractions.
type TraceResult struct {
	Account     string `json:"account"`
	Destination string `json:"destination"`
	Direction   string `json:"direction"`
	UsageType   string `json:"usage_type"`
	StartUTC    string `json:"start_utc"`
	StartLocal  string `json:"start_local"`
	Zone        string `json:"billing_timezone"`
	UsageDate   string `json:"usage_date"`
	Quantity    int64  `json:"quantity"`
	Unit        string `json:"unit"`

	Customer     *TraceCustomer   `json:"customer,omitempty"`
	Plan         *TracePlan       `json:"plan,omitempty"`
	BandsInForce []string         `json:"time_bands_in_force"`
	Candidates   []TraceCandidate `json:"candidates"`
	Matched      *TraceCandidate  `json:"matched,omitempty"`

	Tiers          []TraceTier `json:"tiers"`
	BilledQuantity int64       `json:"billed_quantity"`
	TiersTotal     TraceAmount `json:"tiers_total"`
	ConnectFee     string      `json:"connect_fee,omitempty"`
	Subtotal       TraceAmount `json:"subtotal"`
	MinCharge      string      `json:"min_charge,omitempty"`
	MaxCharge      string      `json:"max_charge,omitempty"`
	Limit          string      `json:"limit_applied"` // "min", "max" or ""
	Exact          TraceAmount `json:"exact_amount"`
	Amount         string      `json:"amount,omitempty"` // rounded once, the plan's decimals: rated_usage.amount
	Charged        bool        `json:"charged"`

	Error *TraceError `json:"error,omitempty"`
}

// TraceCustomer is the customers.csv row in effect on the usage date.
type TraceCustomer struct {
	CompanyID         int64  `json:"company_id"`
	CompanyIdentifier string `json:"company_identifier"`
	CompanyName       string `json:"company_name"`
	RatePlan          string `json:"rate_plan"`
	EffectiveFrom     string `json:"effective_from"`
	EffectiveTo       string `json:"effective_to,omitempty"`
	Source            string `json:"source"`
}

// TracePlan is the plans.csv row of the customer's plan.
type TracePlan struct {
	Plan             string `json:"plan"`
	RoundingMethod   string `json:"rounding_method"`
	RoundingDecimals int    `json:"rounding_decimals"`
	Currency         string `json:"currency"`
}

// TraceCandidate is a rate of the plan whose prefix the destination starts with.
type TraceCandidate struct {
	RateID        int64  `json:"rate_id"`
	Prefix        string `json:"prefix"`
	Product       string `json:"product"`
	Direction     string `json:"direction"`
	TimeBand      string `json:"time_band"`
	EffectiveFrom string `json:"effective_from"`
	EffectiveTo   string `json:"effective_to,omitempty"`
	Source        string `json:"source"`
	Eligible      bool   `json:"eligible"`
	Chosen        bool   `json:"chosen"`
	Note          string `json:"note"`
	prefixLen     int
	ownDirection  bool
}

// TraceTier is one tier of the matched rate as applied to this call.
type TraceTier struct {
	TierNo    int         `json:"tier_no"`
	TierStart int64       `json:"tier_start"`
	TierEnd   *int64      `json:"tier_end"`
	Rate      string      `json:"rate"`
	RateUnit  int64       `json:"rate_unit"`
	Increment int64       `json:"increment"`
	From      int64       `json:"from"`
	To        int64       `json:"to"`
	Billed    int64       `json:"billed"`
	Amount    TraceAmount `json:"amount"`
}

// TraceAmount is an exact amount: decimal (exact when it terminates, else 12 decimals and "…")
// and the reduced fraction.
type TraceAmount struct {
	Decimal  string `json:"decimal"`
	Fraction string `json:"fraction"`
	Exact    bool   `json:"terminates"`
}

// TraceError is why the call was not rated (rating_errors).
type TraceError struct {
	Kind   string `json:"kind"`
	Key    string `json:"key"`
	Detail string `json:"detail"`
}

// Trace rates one call with the rate stage's own models and reads back every step. It uses r.DB
// as a scratch database: it replaces staged_cdrs with a one-row table and rewrites rated_usage and
// rating_errors, so run it on a Run whose database holds only the reference tables (what
// `cdrbill trace` builds), never on a nightly run's. The amount it reports is rated_usage.amount.
func Trace(ctx context.Context, r *Run, req TraceRequest) (*TraceResult, error) {
	req, err := normaliseTrace(r, req)
	if err != nil {
		return nil, err
	}
	var kind string
	err = r.DB.QueryRowContext(ctx, `SELECT table_type FROM information_schema.tables WHERE table_name = 'staged_cdrs'`).Scan(&kind)
	if err == nil && kind != "BASE TABLE" && kind != "LOCAL TEMPORARY" {
		return nil, fmt.Errorf("trace: the database already has staged CDRs (%s staged_cdrs); trace needs a scratch run", kind)
	}
	loc := r.Cfg.Location
	if loc == nil {
		if loc, err = time.LoadLocation(r.Cfg.Billing.Timezone); err != nil {
			return nil, fmt.Errorf("trace: billing timezone: %w", err)
		}
	}
	local := req.Start.In(loc)
	res := &TraceResult{
		Account: req.Account, Destination: req.Destination, Direction: req.Direction, UsageType: req.UsageType,
		StartUTC: req.Start.UTC().Format("2006-01-02T15:04:05Z"), StartLocal: local.Format("2006-01-02 15:04:05 Mon MST"),
		Zone: loc.String(), UsageDate: local.Format(time.DateOnly), Unit: "s",
		BandsInForce: []string{}, Candidates: []TraceCandidate{}, Tiers: []TraceTier{},
	}
	res.Quantity = req.Duration
	if req.UsageType == "data" {
		res.Quantity, res.Unit = req.Bytes, "bytes"
	}

	if _, err := r.DB.ExecContext(ctx, `CREATE OR REPLACE TABLE staged_cdrs AS
		SELECT 'trace' AS cdr_id, 'trace' AS source, CAST(? AS VARCHAR) AS account, CAST(? AS VARCHAR) AS direction,
		       '' AS origin, CAST(? AS VARCHAR) AS destination, '' AS origin_raw, CAST(? AS VARCHAR) AS destination_raw,
		       CAST(? AS TIMESTAMP) AS start_utc, CAST(? AS DATE) AS usage_date, CAST(? AS VARCHAR) AS usage_type,
		       CAST(? AS BIGINT) AS duration, CAST(? AS BIGINT) AS bytes, 'trace' AS source_file,
		       CAST(0 AS BIGINT) AS source_line, '' AS file_sha256`,
		req.Account, req.Direction, req.Destination, req.Destination, req.Start.UTC().Format("2006-01-02 15:04:05"),
		res.UsageDate, req.UsageType, req.Duration, req.Bytes); err != nil {
		return nil, fmt.Errorf("trace: stage the call: %w", err)
	}
	if err := runRateModels(ctx, r, true); err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	defer dropRateTempTables(context.WithoutCancel(ctx), r.DB)

	if err := traceCustomer(ctx, r.DB, res); err != nil {
		return nil, err
	}
	if err := traceMatch(ctx, r.DB, res); err != nil {
		return nil, err
	}
	if res.Matched != nil {
		if err := traceAmount(ctx, r.DB, res); err != nil {
			return nil, err
		}
	}
	var e TraceError
	err = r.DB.QueryRowContext(ctx, `SELECT kind, coalesce(key, ''), detail FROM rating_errors WHERE cdr_id = 'trace'`).
		Scan(&e.Kind, &e.Key, &e.Detail)
	switch {
	case err == nil:
		res.Error = &e
	case err != sql.ErrNoRows:
		return nil, fmt.Errorf("trace: read rating_errors: %w", err)
	}
	return res, nil
}

func normaliseTrace(r *Run, req TraceRequest) (TraceRequest, error) {
	if req.Account == "" {
		return req, Inputf("", 0, 0, "trace: --account is required")
	}
	if req.Start.IsZero() {
		return req, Inputf("", 0, 0, "trace: --start is required")
	}
	if req.Direction == "" {
		req.Direction = "outbound"
	}
	if req.Direction != "outbound" && req.Direction != "inbound" {
		return req, Inputf("", 0, 0, "trace: direction %q: want outbound or inbound", req.Direction)
	}
	if req.UsageType == "" {
		req.UsageType = "voice"
		if req.Bytes > 0 {
			req.UsageType = "data"
		}
	}
	if req.UsageType != "voice" && req.UsageType != "data" {
		return req, Inputf("", 0, 0, "trace: usage type %q: want voice or data", req.UsageType)
	}
	if req.Duration < 0 || req.Bytes < 0 {
		return req, Inputf("", 0, 0, "trace: duration and bytes must not be negative")
	}
	if req.UsageType == "voice" && req.Destination == "" {
		return req, Inputf("", 0, 0, "trace: --destination is required for a voice call")
	}
	region := "US"
	if len(r.Cfg.Sources) > 0 && r.Cfg.Sources[0].Country != "" {
		region = r.Cfg.Sources[0].Country
	}
	req.Destination = normaliseNumber(req.Destination, region)
	return req, nil
}

// normaliseNumber is E.164 when the number parses as a possible number of region (or carries its
// own +country), else its digits.
func normaliseNumber(s, region string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	if n, err := phonenumbers.Parse(s, region); err == nil && phonenumbers.IsPossibleNumber(n) {
		return phonenumbers.Format(n, phonenumbers.E164)
	}
	var b strings.Builder
	for _, c := range s {
		if c >= '0' && c <= '9' || c == '+' && b.Len() == 0 {
			b.WriteRune(c)
		}
	}
	return b.String()
}

func traceCustomer(ctx context.Context, db *sql.DB, res *TraceResult) error {
	var c TraceCustomer
	var to sql.NullString
	var file sql.NullString
	var line sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT company_id, company_identifier, company_name, rate_plan,
			strftime(effective_from, '%Y-%m-%d'), strftime(effective_to, '%Y-%m-%d'), file, line
		FROM ref_customers
		WHERE account = ? AND effective_from <= CAST(? AS DATE) AND (effective_to IS NULL OR CAST(? AS DATE) <= effective_to)
		ORDER BY effective_from LIMIT 1`, res.Account, res.UsageDate, res.UsageDate).
		Scan(&c.CompanyID, &c.CompanyIdentifier, &c.CompanyName, &c.RatePlan, &c.EffectiveFrom, &to, &file, &line)
	if err == sql.ErrNoRows {
		return nil
	}
	if err != nil {
		return fmt.Errorf("trace: customer: %w", err)
	}
	c.EffectiveTo = to.String
	c.Source = traceSource(file, line)
	res.Customer = &c
	var p TracePlan
	err = db.QueryRowContext(ctx, `SELECT plan, rounding_method, rounding_decimals, currency FROM ref_plans WHERE plan = ?`, c.RatePlan).
		Scan(&p.Plan, &p.RoundingMethod, &p.RoundingDecimals, &p.Currency)
	if err == nil {
		res.Plan = &p
	} else if err != sql.ErrNoRows {
		return fmt.Errorf("trace: plan: %w", err)
	}
	return nil
}

func traceSource(file sql.NullString, line sql.NullInt64) string {
	if !file.Valid {
		return ""
	}
	if !line.Valid {
		return file.String
	}
	return fmt.Sprintf("%s:%d", file.String, line.Int64)
}

func traceMatch(ctx context.Context, db *sql.DB, res *TraceResult) error {
	var bandKey sql.NullString
	var rateID sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT band_key, rate_id FROM rating_call_rates WHERE cdr_id = 'trace' AND mapped`).Scan(&bandKey, &rateID)
	if err == sql.ErrNoRows {
		return nil // unmapped account
	}
	if err != nil {
		return fmt.Errorf("trace: match: %w", err)
	}
	if bandKey.String != "" {
		res.BandsInForce = strings.Split(bandKey.String, ",")
	}
	rows, err := db.QueryContext(ctx, `SELECT h.rate_id, h.prefix, x.len, h.product, h.direction, h.time_band,
			strftime(h.effective_from, '%Y-%m-%d'), strftime(h.effective_to, '%Y-%m-%d'), h.file, h.line,
			h.direction IN (c.direction, 'any'), h.direction = c.direction,
			h.effective_from <= c.usage_date AND (h.effective_to IS NULL OR c.usage_date <= h.effective_to),
			h.time_band = '' OR list_contains(string_split(c.band_key, ','), h.time_band)
		FROM rating_calls c
		JOIN rating_prefix_hits x ON x.plan = c.plan AND x.usage_type = c.usage_type AND x.cut = c.cut
		JOIN rating_heads h ON h.plan = x.plan AND h.usage_type = x.usage_type AND h.pkey = x.pkey
		WHERE c.cdr_id = 'trace'
		ORDER BY x.len DESC, h.rate_id`)
	if err != nil {
		return fmt.Errorf("trace: candidates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k TraceCandidate
		var to, file sql.NullString
		var line sql.NullInt64
		var dirOK, dateOK, bandOK bool
		if err := rows.Scan(&k.RateID, &k.Prefix, &k.prefixLen, &k.Product, &k.Direction, &k.TimeBand, &k.EffectiveFrom,
			&to, &file, &line, &dirOK, &k.ownDirection, &dateOK, &bandOK); err != nil {
			return fmt.Errorf("trace: candidates: %w", err)
		}
		k.EffectiveTo = to.String
		k.Source = traceSource(file, line)
		var why []string
		if !dirOK {
			why = append(why, "direction "+k.Direction)
		}
		if !dateOK {
			why = append(why, "not in effect on "+res.UsageDate)
		}
		if !bandOK {
			why = append(why, "band "+k.TimeBand+" not in force")
		}
		k.Eligible = len(why) == 0
		k.Chosen = rateID.Valid && rateID.Int64 == k.RateID
		k.Note = strings.Join(why, "; ")
		res.Candidates = append(res.Candidates, k)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("trace: candidates: %w", err)
	}
	var chosen *TraceCandidate
	for i := range res.Candidates {
		if res.Candidates[i].Chosen {
			chosen = &res.Candidates[i]
		}
	}
	for i := range res.Candidates {
		k := &res.Candidates[i]
		switch {
		case k.Chosen:
			k.Note = "chosen"
		case !k.Eligible || chosen == nil:
		case k.prefixLen < chosen.prefixLen:
			k.Note = "shorter prefix"
		case k.ownDirection != chosen.ownDirection:
			k.Note = "direction any loses to " + res.Direction
		case (k.TimeBand == "") != (chosen.TimeBand == ""):
			k.Note = "no time band loses to band " + chosen.TimeBand
		default:
			k.Note = "higher rate_id"
		}
	}
	sort.SliceStable(res.Candidates, func(i, j int) bool { return res.Candidates[i].prefixLen > res.Candidates[j].prefixLen })
	for i := range res.Candidates {
		if res.Candidates[i].Chosen {
			m := res.Candidates[i]
			res.Matched = &m
		}
	}
	return nil
}

func traceAmount(ctx context.Context, db *sql.DB, res *TraceResult) error {
	id, q := res.Matched.RateID, res.Quantity
	rows, err := db.QueryContext(ctx, `SELECT t.tier_no, t.tier_start, t.tier_end, t.rate::VARCHAR, t.rate_unit, t.increment,
			s.from_q, s.to_q, s.billed, s.tier_num::VARCHAR, s.tier_den::VARCHAR
		FROM rating_tier_steps s JOIN rating_tiers t USING (rate_id, tier_no)
		WHERE s.rate_id = ? AND s.quantity = ? ORDER BY t.tier_no`, id, q)
	if err != nil {
		return fmt.Errorf("trace: tiers: %w", err)
	}
	defer rows.Close()
	total := new(big.Rat)
	for rows.Next() {
		var t TraceTier
		var end sql.NullInt64
		var num, den string
		if err := rows.Scan(&t.TierNo, &t.TierStart, &end, &t.Rate, &t.RateUnit, &t.Increment, &t.From, &t.To, &t.Billed, &num, &den); err != nil {
			return fmt.Errorf("trace: tiers: %w", err)
		}
		if end.Valid {
			t.TierEnd = &end.Int64
		}
		t.Rate = trimDecimal(t.Rate)
		a, err := traceRatio(num, den)
		if err != nil {
			return err
		}
		total.Add(total, a)
		t.Amount = traceAmountOf(a)
		res.Tiers = append(res.Tiers, t)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("trace: tiers: %w", err)
	}
	res.TiersTotal = traceAmountOf(total)

	var fee string
	var minC, maxC sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT connect_fee::VARCHAR, min_charge::VARCHAR, max_charge::VARCHAR FROM rating_heads WHERE rate_id = ?`, id).
		Scan(&fee, &minC, &maxC); err != nil {
		return fmt.Errorf("trace: rate %d: %w", id, err)
	}
	res.ConnectFee = trimDecimal(fee)
	if minC.Valid {
		res.MinCharge = trimDecimal(minC.String)
	}
	if maxC.Valid {
		res.MaxCharge = trimDecimal(maxC.String)
	}
	sub := new(big.Rat).Set(total)
	if q > 0 {
		f, ok := new(big.Rat).SetString(res.ConnectFee)
		if !ok {
			return fmt.Errorf("trace: connect fee %q", fee)
		}
		sub.Add(sub, f)
	}
	res.Subtotal = traceAmountOf(sub)

	var num, den, amount string
	var decimals int
	err = db.QueryRowContext(ctx, `SELECT a.billed_quantity, a.charge_limit, a.exact_num::VARCHAR, a.exact_den::VARCHAR,
			u.amount::VARCHAR, u.amount_decimals
		FROM rated_usage u JOIN rating_amounts a ON a.rate_id = ? AND a.quantity = u.quantity
		WHERE u.cdr_id = 'trace'`, id).Scan(&res.BilledQuantity, &res.Limit, &num, &den, &amount, &decimals)
	if err == sql.ErrNoRows {
		return nil
	}
	if err != nil {
		return fmt.Errorf("trace: amount: %w", err)
	}
	exact, err := traceRatio(num, den)
	if err != nil {
		return err
	}
	res.Exact = traceAmountOf(exact)
	d, err := decimal.NewFromString(amount)
	if err != nil {
		return fmt.Errorf("trace: amount %q: %w", amount, err)
	}
	res.Amount = d.StringFixed(int32(decimals))
	res.Charged = q > 0
	return nil
}

func traceRatio(num, den string) (*big.Rat, error) {
	n, ok1 := new(big.Int).SetString(num, 10)
	d, ok2 := new(big.Int).SetString(den, 10)
	if !ok1 || !ok2 || d.Sign() == 0 {
		return nil, fmt.Errorf("trace: bad fraction %s/%s", num, den)
	}
	return new(big.Rat).SetFrac(n, d), nil
}

// traceAmountOf writes an exact rational as a decimal (exact when it terminates) and a fraction.
func traceAmountOf(r *big.Rat) TraceAmount {
	d := new(big.Int).Set(r.Denom())
	digits := 0
	for _, p := range []int64{2, 5} {
		n := 0
		bp := big.NewInt(p)
		m := new(big.Int)
		for {
			q, rem := new(big.Int).QuoRem(d, bp, m)
			if rem.Sign() != 0 {
				break
			}
			d = q
			n++
		}
		digits = max(digits, n)
	}
	a := TraceAmount{Fraction: r.RatString(), Exact: d.Cmp(big.NewInt(1)) == 0}
	if a.Exact {
		a.Decimal = r.FloatString(digits)
	} else {
		a.Decimal = r.FloatString(12) + "…"
	}
	return a
}

// trimDecimal drops trailing zeros after the point ("0.400000000" -> "0.4").
func trimDecimal(s string) string {
	if d, err := decimal.NewFromString(s); err == nil {
		return d.String()
	}
	return s
}

// WriteJSON writes the trace as indented JSON.
func (t *TraceResult) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(t)
}

// WriteText writes the trace for a person, one step per line.
func (t *TraceResult) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-12s %s\n", label, fmt.Sprintf(format, args...))
	}
	p("Call", "%s %s to %s, account %s", t.Direction, t.UsageType, t.Destination, t.Account)
	p("Start", "%s = %s %s (usage date %s)", t.StartUTC, t.StartLocal, t.Zone, t.UsageDate)
	p("Quantity", "%d %s", t.Quantity, t.Unit)
	if t.Customer == nil {
		p("Customer", "none in effect on %s", t.UsageDate)
	} else {
		c := t.Customer
		p("Customer", "%s %s (company id %d), %s..%s, %s", c.CompanyIdentifier, c.CompanyName, c.CompanyID, c.EffectiveFrom, c.EffectiveTo, c.Source)
		if t.Plan == nil {
			p("Plan", "%s (not in plans.csv)", c.RatePlan)
		} else {
			p("Plan", "%s: rounded %s to %d decimals, once per call, %s", t.Plan.Plan, t.Plan.RoundingMethod, t.Plan.RoundingDecimals, t.Plan.Currency)
		}
	}
	if t.Customer != nil {
		bands := strings.Join(t.BandsInForce, ", ")
		if bands == "" {
			bands = "none"
		}
		p("Time bands", "in force at the start: %s", bands)
		p("Candidates", "%d rate(s) whose prefix begins %q (longest first):", len(t.Candidates), t.Destination)
		for _, k := range t.Candidates {
			prefix, band, to := k.Prefix, k.TimeBand, k.EffectiveTo
			if prefix == "" {
				prefix = "(fallback)"
			}
			if band == "" {
				band = "any band"
			}
			fmt.Fprintf(&b, "%-12s   %-12s rate %-5d %-16s %-8s %-10s %s..%-10s %-18s %s\n", "", prefix, k.RateID, k.Product, k.Direction, band, k.EffectiveFrom, to, k.Source, k.Note)
		}
	}
	if m := t.Matched; m != nil {
		band := m.TimeBand
		if band == "" {
			band = "any band"
		}
		p("Matched", "prefix %q, rate %d (%s), product %s, %s, %s", m.Prefix, m.RateID, m.Source, m.Product, m.Direction, band)
		for _, tr := range t.Tiers {
			end := "end"
			if tr.TierEnd != nil {
				end = fmt.Sprintf("%d", *tr.TierEnd)
			}
			p(fmt.Sprintf("Tier %d", tr.TierNo), "[%d, %s) at %s per %d %s, increment %d: part %d..%d billed %d = %s (%s)",
				tr.TierStart, end, tr.Rate, tr.RateUnit, t.Unit, tr.Increment, tr.From, tr.To, tr.Billed, tr.Amount.Decimal, tr.Amount.Fraction)
		}
		p("Billed", "%d %s", t.BilledQuantity, t.Unit)
		p("Tiers total", "%s (%s)", t.TiersTotal.Decimal, t.TiersTotal.Fraction)
		if t.Quantity == 0 {
			p("Not charged", "quantity 0: no connect fee, no minimum")
		} else {
			p("Connect fee", "%s", t.ConnectFee)
			p("Subtotal", "%s (%s)", t.Subtotal.Decimal, t.Subtotal.Fraction)
		}
		minC, maxC := t.MinCharge, t.MaxCharge
		if minC == "" {
			minC = "none"
		}
		if maxC == "" {
			maxC = "none"
		}
		applied := "neither applies"
		switch t.Limit {
		case "min":
			applied = "raised to the minimum"
		case "max":
			applied = "capped at the maximum"
		}
		p("Min / max", "%s / %s: %s", minC, maxC, applied)
		p("Exact", "%s = %s", t.Exact.Decimal, t.Exact.Fraction)
		if t.Plan != nil {
			p("Amount", "%s (%s to %d decimals)", t.Amount, t.Plan.RoundingMethod, t.Plan.RoundingDecimals)
		}
	}
	if t.Error != nil {
		p("NOT RATED", "%s: %s", t.Error.Kind, t.Error.Detail)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
