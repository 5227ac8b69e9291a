package pipeline

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	models "cdrbill/sql"
)

// Communications taxes (CONTRACT.md "Tax semantics").
//
// The tax stage builds a TaxRequest from the run's tables (sql/tax_request.sql), hands it to a
// TaxEngine and stores the engine's TaxLines in the table tax_lines and the file tax_lines.csv.
// The default engine, SQLTaxEngine, evaluates tax_rates.csv in DuckDB; an adapter for an external
// engine (Avalara AvaTax for Communications, CCH SureTax) implements the same interface: it maps
// each TaxCharge to a line item (jurisdiction, service type from TaxClass, charge, lines, date) and
// each returned tax to a TaxLine.

// TaxEngine computes the taxes of one period's taxable charges.
type TaxEngine interface {
	String() string
	// Calculate returns one line per customer and tax that applies, including a zero-amount line
	// for each tax an exemption removed (Exempt set, the reason in Note). Amounts have 2 decimals.
	Calculate(ctx context.Context, req *TaxRequest) ([]TaxLine, error)
}

// TaxRequest is what a tax engine is asked to tax.
type TaxRequest struct {
	Period Period
	// Rounding is "invoice" (round once per customer and tax) or "line" (once per summary line).
	Rounding  string
	Customers []TaxCustomer
	Charges   []TaxCharge
}

// TaxCustomer is a customer with taxable charges in the period.
type TaxCustomer struct {
	CompanyID         int64
	CompanyIdentifier string
	Jurisdiction      string // e.g. US-FL-MIAMI
	Lines             int    // lines or trunk paths, for per-line fees
	Exempt            []string
	ExemptSource      string // where the exemption comes from, e.g. customers.csv:4
}

// TaxCharge is a taxable charge of one customer's summary line over a date range. The stage cuts a
// product's charges at every date where a tax rate starts or ends, so each charge falls under one
// set of rates; the charges of a product add up exactly to its usage_summary amount.
type TaxCharge struct {
	CompanyID int64
	Product   string
	TaxClass  string
	From, To  time.Time // usage dates, inclusive
	Amount    decimal.Decimal
}

// TaxLine is one tax on one customer's invoice.
type TaxLine struct {
	CompanyID         int64
	CompanyIdentifier string
	Jurisdiction      string // the taxing jurisdiction (the tax row's), e.g. US-FL
	TaxCode           string
	TaxName           string
	Level             string
	TaxableBase       decimal.Decimal // charges × base_percent/100 (+ included taxes); lines for a per-line fee
	TaxAmount         decimal.Decimal
	CatalogIdentifier string
	Note              string
	Basis             string          // "percent" or "per_line"
	Rate              decimal.Decimal // 7.44 for 7.44 %, or the amount per line
	Exempt            bool
}

// TaxStage computes the period's taxes with Engine (the embedded SQLTaxEngine when nil).
// reads: usage_summary, rated_usage, ref_customers, ref_tax_rates (via the engine), ref_products.
// writes: table tax_lines and tax_lines.csv.
type TaxStage struct {
	Engine TaxEngine
}

func (TaxStage) String() string { return "tax" }

// taxLinesCSVQuery writes tax_lines.csv: the contract's columns, sorted on the table's key.
const taxLinesCSVQuery = `SELECT company_identifier, jurisdiction, tax_code, tax_name, level,
	taxable_base, tax_amount, catalog_identifier, note
FROM tax_lines ORDER BY company_identifier, company_id, tax_code`

func (s TaxStage) Run(ctx context.Context, r *Run) error {
	if err := ValidateTaxRates(ctx, r.DB); err != nil {
		return err
	}
	req, err := BuildTaxRequest(ctx, r)
	if err != nil {
		return err
	}
	engine := s.Engine
	if engine == nil {
		engine = &SQLTaxEngine{DB: r.DB}
	}
	lines, err := engine.Calculate(ctx, req)
	if err != nil {
		return fmt.Errorf("tax engine %s: %w", engine, err)
	}
	if err := ExecModel(ctx, r.DB, "tax_lines.sql"); err != nil {
		return err
	}
	if err := insertTaxLines(ctx, r.DB, lines); err != nil {
		return err
	}
	n, err := WriteQueryCSV(ctx, r.DB, r.OutPath("tax_lines.csv"), taxLinesCSVQuery)
	if err != nil {
		return err
	}
	r.Count("tax_lines", n)
	// A customer with taxable charges and no tax line at all usually has a jurisdiction that no row
	// of tax_rates.csv covers (a mis-mapped code): someone should look before the invoices go out.
	taxed := map[int64]bool{}
	for _, l := range lines {
		taxed[l.CompanyID] = true
	}
	var untaxed int64
	for _, c := range req.Customers {
		if !taxed[c.CompanyID] {
			untaxed++
			r.Log.Warn("customer with taxable charges and no tax", "company", c.CompanyIdentifier, "jurisdiction", c.Jurisdiction)
		}
	}
	r.NeedsReview("untaxed_customer", untaxed)
	var conflicts int64
	if err := r.DB.QueryRowContext(ctx,
		"SELECT count(*) FROM tax_request_customers WHERE jurisdictions > 1").Scan(&conflicts); err != nil {
		return fmt.Errorf("tax: %w", err)
	}
	// A company whose accounts lie in different jurisdictions is taxed in the first of them.
	r.NeedsReview("tax_jurisdiction_conflict", conflicts)
	return nil
}

// BuildTaxRequest runs sql/tax_request.sql and reads its tables into a TaxRequest.
func BuildTaxRequest(ctx context.Context, r *Run) (*TaxRequest, error) {
	if err := ExecModel(ctx, r.DB, "tax_request.sql"); err != nil {
		return nil, err
	}
	req := &TaxRequest{Period: r.Period, Rounding: r.Cfg.Billing.TaxRounding}
	rows, err := r.DB.QueryContext(ctx, `SELECT company_id, company_identifier, jurisdiction, lines,
		array_to_string(tax_exempt, ';'), exempt_source FROM tax_request_customers ORDER BY company_id`)
	if err != nil {
		return nil, fmt.Errorf("tax request: %w", err)
	}
	for rows.Next() {
		var c TaxCustomer
		var exempt string
		if err := rows.Scan(&c.CompanyID, &c.CompanyIdentifier, &c.Jurisdiction, &c.Lines, &exempt, &c.ExemptSource); err != nil {
			rows.Close()
			return nil, fmt.Errorf("tax request: %w", err)
		}
		if exempt != "" {
			c.Exempt = strings.Split(exempt, ";")
		}
		req.Customers = append(req.Customers, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tax request: %w", err)
	}
	rows, err = r.DB.QueryContext(ctx, `SELECT company_id, product, tax_class, date_from, date_to,
		CAST(amount AS VARCHAR) FROM tax_request_charges ORDER BY company_id, product, segment`)
	if err != nil {
		return nil, fmt.Errorf("tax request: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c TaxCharge
		var amount string
		if err := rows.Scan(&c.CompanyID, &c.Product, &c.TaxClass, &c.From, &c.To, &amount); err != nil {
			return nil, fmt.Errorf("tax request: %w", err)
		}
		if c.Amount, err = decimal.NewFromString(amount); err != nil {
			return nil, fmt.Errorf("tax request: amount %q: %w", amount, err)
		}
		req.Charges = append(req.Charges, c)
	}
	return req, rows.Err()
}

// SQLTaxEngine is the embedded engine: the rows of ref_tax_rates (tax_rates.csv) evaluated in
// DuckDB on the run's database. Rules (CONTRACT.md "Tax semantics"):
//   - a row applies to a customer whose jurisdiction equals it or lies under it, segment by
//     segment (US and US-FL apply to US-FL-MIAMI; US-F does not apply to US-FL); where rows of
//     the same tax_code match at several depths, the deepest one applies;
//   - each charge is taxed at the row in effect on its first date; the stage cuts charges at every
//     date where a row starts or ends, so a rate that changes mid-period applies by usage date;
//   - a row applies to the charges of its tax_class, or of every taxable class for 'all';
//   - per-line amounts (amount_per_line × the customer's lines) first, then percentage taxes in
//     dependency order: base = charges × base_percent/100 + the rounded amounts of the taxes in
//     base_includes (at the rate of the row in effect for the customer's latest charge);
//   - rounding half-up to 2 decimals once per customer and tax (invoice) or once per summary line
//     (line; a per-line fee counts as a line of its own);
//   - a customer whose tax_exempt lists the code or 'all' gets the line at 0.00 with the reason.
type SQLTaxEngine struct {
	DB *sql.DB
}

func (e *SQLTaxEngine) String() string { return "embedded" }

// Calculate implements TaxEngine.
func (e *SQLTaxEngine) Calculate(ctx context.Context, req *TaxRequest) ([]TaxLine, error) {
	if req.Rounding != "invoice" && req.Rounding != "line" {
		return nil, fmt.Errorf("tax rounding %q: want invoice or line", req.Rounding)
	}
	if err := e.load(ctx, req); err != nil {
		return nil, err
	}
	levels, err := taxLevels(ctx, e.DB)
	if err != nil {
		return nil, err
	}
	maxLevel := 0
	var levelRows [][]any
	for code, l := range levels {
		levelRows = append(levelRows, []any{code, strconv.Itoa(l)})
		maxLevel = max(maxLevel, l)
	}
	if err := appendRows(ctx, e.DB, "tax_engine_levels", []string{"tax_code", "level"}, levelRows); err != nil {
		return nil, err
	}
	if err := ExecModel(ctx, e.DB, "tax_engine_prepare.sql"); err != nil {
		return nil, err
	}
	for k := 0; k <= maxLevel; k++ {
		if _, err := e.DB.ExecContext(ctx, "SET VARIABLE tax_level = ?", k); err != nil {
			return nil, fmt.Errorf("tax engine: %w", err)
		}
		if err := ExecModel(ctx, e.DB, "tax_engine_level.sql"); err != nil {
			return nil, err
		}
	}
	return e.result(ctx)
}

// load puts the request into the engine's tables and variables.
func (e *SQLTaxEngine) load(ctx context.Context, req *TaxRequest) error {
	ddl := []string{
		`CREATE OR REPLACE TEMP TABLE tax_engine_customers (company_id BIGINT, company_identifier VARCHAR,
			jurisdiction VARCHAR, lines INTEGER, exempt_source VARCHAR)`,
		`CREATE OR REPLACE TEMP TABLE tax_engine_exemptions (company_id BIGINT, code VARCHAR)`,
		`CREATE OR REPLACE TEMP TABLE tax_engine_charges (charge_id INTEGER, company_id BIGINT, product VARCHAR,
			tax_class VARCHAR, date_from DATE, date_to DATE, amount DECIMAL(18, 2))`,
		`CREATE OR REPLACE TEMP TABLE tax_engine_levels (tax_code VARCHAR, level INTEGER)`,
	}
	for _, q := range ddl {
		if _, err := e.DB.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("tax engine: %w", err)
		}
	}
	vars := []struct {
		name string
		val  any
		cast string
	}{
		{"tax_from", req.Period.From.Format(time.DateOnly), "::DATE"},
		{"tax_to", req.Period.To.Format(time.DateOnly), "::DATE"},
		{"tax_mode", req.Rounding, ""},
	}
	for _, v := range vars {
		if _, err := e.DB.ExecContext(ctx, fmt.Sprintf("SET VARIABLE %s = ?%s", v.name, v.cast), v.val); err != nil {
			return fmt.Errorf("tax engine: set %s: %w", v.name, err)
		}
	}
	var cust, exempt, charges [][]any
	for _, c := range req.Customers {
		id := strconv.FormatInt(c.CompanyID, 10)
		cust = append(cust, []any{id, c.CompanyIdentifier, c.Jurisdiction, strconv.Itoa(c.Lines), c.ExemptSource})
		for _, x := range c.Exempt {
			exempt = append(exempt, []any{id, x})
		}
	}
	for i, c := range req.Charges {
		charges = append(charges, []any{strconv.Itoa(i + 1), strconv.FormatInt(c.CompanyID, 10), c.Product, c.TaxClass,
			c.From.Format(time.DateOnly), c.To.Format(time.DateOnly), c.Amount.String()})
	}
	if err := appendRows(ctx, e.DB, "tax_engine_customers",
		[]string{"company_id", "company_identifier", "jurisdiction", "lines", "exempt_source"}, cust); err != nil {
		return fmt.Errorf("tax engine: %w", err)
	}
	if err := appendRows(ctx, e.DB, "tax_engine_exemptions", []string{"company_id", "code"}, exempt); err != nil {
		return fmt.Errorf("tax engine: %w", err)
	}
	if err := appendRows(ctx, e.DB, "tax_engine_charges",
		[]string{"charge_id", "company_id", "product", "tax_class", "date_from", "date_to", "amount"}, charges); err != nil {
		return fmt.Errorf("tax engine: %w", err)
	}
	return nil
}

// result reads the engine's answer and writes each line's note.
func (e *SQLTaxEngine) result(ctx context.Context) ([]TaxLine, error) {
	rows, err := e.DB.QueryContext(ctx, models.MustModel("tax_engine_result.sql"))
	if err != nil {
		return nil, fmt.Errorf("sql/tax_engine_result.sql: %w", err)
	}
	defer rows.Close()
	var out []TaxLine
	for rows.Next() {
		var l TaxLine
		var base, amount, class, baseIncludes, history string
		var pct, perLine, basePct, exemptCode, exemptSource sql.NullString
		var lines int64
		if err := rows.Scan(&l.CompanyID, &l.CompanyIdentifier, &l.Jurisdiction, &l.TaxCode, &l.TaxName,
			&l.Level, &base, &amount, &l.CatalogIdentifier, &class, &pct, &perLine, &basePct, &baseIncludes,
			&exemptCode, &exemptSource, &lines, &history); err != nil {
			return nil, fmt.Errorf("tax engine result: %w", err)
		}
		l.TaxableBase = decimal.RequireFromString(base)
		l.TaxAmount = decimal.RequireFromString(amount)
		if pct.Valid {
			l.Basis, l.Rate = "percent", decimal.RequireFromString(pct.String)
		} else {
			l.Basis, l.Rate = "per_line", decimal.RequireFromString(perLine.String)
		}
		l.Exempt = exemptCode.Valid
		if !l.Exempt && l.TaxAmount.IsZero() && l.TaxableBase.IsZero() {
			continue // nothing to tax (e.g. no lines, or charges of 0.00)
		}
		l.Note = taxNote(l, class, basePct.String, baseIncludes, exemptCode.String, exemptSource.String, lines, history)
		if l.Exempt {
			l.TaxableBase = decimal.Zero
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// taxNote explains a tax line in words an auditor can check against its amount.
func taxNote(l TaxLine, class, basePct, includes, exemptCode, exemptSource string, lines int64, history string) string {
	if l.Exempt {
		reason := "tax_exempt lists " + exemptCode
		if strings.EqualFold(exemptCode, "all") {
			reason = "tax_exempt = all"
		}
		if exemptSource != "" {
			reason += " (" + exemptSource + ")"
		}
		return fmt.Sprintf("exempt: %s; exempt base %s", reason, l.TaxableBase.StringFixed(2))
	}
	if l.Basis == "per_line" {
		return fmt.Sprintf("%d lines × %s", lines, moneyString(l.Rate))
	}
	what := class + " charges"
	if class == "all" {
		what = "taxable charges"
	}
	if bp := decimal.RequireFromString(basePct); !bp.Equal(decimal.NewFromInt(100)) {
		what = bp.String() + " % of " + what
	}
	if includes != "" {
		what += " + " + strings.ReplaceAll(includes, ";", " + ")
	}
	note := l.Rate.String() + " % of " + what
	if parts := strings.Split(history, ";"); len(parts) > 1 {
		sort.Strings(parts)
		var rates []string
		for _, p := range parts {
			from, rate, _ := strings.Cut(p, "=")
			rates = append(rates, decimal.RequireFromString(rate).String()+" % from "+from)
		}
		note += "; rate changed in the period: " + strings.Join(rates, ", ") + " (by usage date)"
	}
	return note
}

// taxLevels gives each tax code its dependency level: 0 without base_includes, else one more than
// the highest level it includes. A cycle is an error (ValidateTaxRates reports it with its line).
func taxLevels(ctx context.Context, db *sql.DB) (map[string]int, error) {
	g, err := readTaxGraph(ctx, db)
	if err != nil {
		return nil, err
	}
	levels := map[string]int{}
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(code string) error
	visit = func(code string) error {
		switch state[code] {
		case 1:
			return fmt.Errorf("tax_rates: base_includes forms a cycle through %s", code)
		case 2:
			return nil
		}
		state[code] = 1
		l := 0
		for _, inc := range g[code] {
			if err := visit(inc); err != nil {
				return err
			}
			l = max(l, levels[inc]+1)
		}
		levels[code] = l
		state[code] = 2
		return nil
	}
	for _, code := range sortedKeys(g) {
		if err := visit(code); err != nil {
			return nil, err
		}
	}
	return levels, nil
}

// readTaxGraph is code → the codes any of its rows includes (sorted, distinct).
func readTaxGraph(ctx context.Context, db *sql.DB) (map[string][]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT tax_code, coalesce(array_to_string(list_sort(list_distinct(flatten(list(base_includes)))), ';'), '')
		FROM ref_tax_rates GROUP BY tax_code`)
	if err != nil {
		return nil, fmt.Errorf("tax_rates: %w", err)
	}
	defer rows.Close()
	g := map[string][]string{}
	for rows.Next() {
		var code, inc string
		if err := rows.Scan(&code, &inc); err != nil {
			return nil, err
		}
		g[code] = nil
		if inc != "" {
			g[code] = strings.Split(inc, ";")
		}
	}
	return g, rows.Err()
}

// moneyString shows an amount with at least 2 decimals (0.40, 0.125).
func moneyString(d decimal.Decimal) string {
	if d.Equal(d.Round(2)) {
		return d.StringFixed(2)
	}
	return d.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// insertTaxLines appends an engine's lines to the table tax_lines.
func insertTaxLines(ctx context.Context, db *sql.DB, lines []TaxLine) error {
	rows := make([][]any, len(lines))
	for i, l := range lines {
		rows[i] = []any{strconv.FormatInt(l.CompanyID, 10), l.CompanyIdentifier, l.Jurisdiction, l.TaxCode,
			l.TaxName, l.Level, l.TaxableBase.StringFixed(2), l.TaxAmount.StringFixed(2), l.CatalogIdentifier,
			l.Note, l.Basis, l.Rate.String(), strconv.FormatBool(l.Exempt)}
	}
	cols := []string{"company_id", "company_identifier", "jurisdiction", "tax_code", "tax_name", "level",
		"taxable_base", "tax_amount", "catalog_identifier", "note", "basis", "rate", "exempt"}
	if err := appendRows(ctx, db, "tax_lines", cols, rows); err != nil {
		return fmt.Errorf("tax_lines: %w", err)
	}
	return nil
}

// TaxSampleInvoice is one customer's taxes in one of the busiest jurisdictions, for preflight
// step 5: each line with its base, rate and amount.
type TaxSampleInvoice struct {
	Jurisdiction      string // the customer's jurisdiction
	Calls             int64  // calls in the jurisdiction this period
	CompanyIdentifier string // the sample customer (the busiest in the jurisdiction)
	Charges           decimal.Decimal
	Lines             []TaxLine
}

// String renders the sample as preflight evidence.
func (s TaxSampleInvoice) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d calls): %s, taxable charges %s", s.Jurisdiction, s.Calls, s.CompanyIdentifier, s.Charges.StringFixed(2))
	if len(s.Lines) == 0 {
		b.WriteString("; no tax")
	}
	for _, l := range s.Lines {
		rate := l.Rate.String() + " %"
		if l.Basis == "per_line" {
			rate = moneyString(l.Rate) + "/line"
		}
		fmt.Fprintf(&b, "; %s %s × %s = %s", l.TaxCode, rate, l.TaxableBase.StringFixed(2), l.TaxAmount.StringFixed(2))
		if l.Exempt {
			b.WriteString(" (exempt)")
		}
	}
	return b.String()
}

// TaxSample returns, for the n busiest customer jurisdictions of the period (by calls in
// usage_summary), the tax lines of the jurisdiction's busiest customer. It reads usage_summary and
// tax_lines (the tax stage must have run).
func TaxSample(ctx context.Context, r *Run, n int) ([]TaxSampleInvoice, error) {
	rows, err := r.DB.QueryContext(ctx, `
		WITH cust AS (
		    SELECT jurisdiction, company_id, min(company_identifier) AS company_identifier,
		           sum(calls) AS calls,
		           CAST(coalesce(sum(amount) FILTER (WHERE taxable), 0) AS VARCHAR) AS charges
		    FROM usage_summary GROUP BY jurisdiction, company_id
		), jur AS (
		    SELECT jurisdiction, sum(calls) AS calls FROM cust GROUP BY jurisdiction
		    ORDER BY calls DESC, jurisdiction LIMIT ?
		)
		SELECT j.jurisdiction, CAST(j.calls AS BIGINT), c.company_id, c.company_identifier, c.charges
		FROM jur j JOIN cust c USING (jurisdiction)
		QUALIFY row_number() OVER (PARTITION BY j.jurisdiction ORDER BY c.calls DESC, c.company_identifier, c.company_id) = 1
		ORDER BY j.calls DESC, j.jurisdiction`, n)
	if err != nil {
		return nil, fmt.Errorf("tax sample: %w", err)
	}
	var out []TaxSampleInvoice
	var ids []int64
	for rows.Next() {
		var s TaxSampleInvoice
		var id int64
		var charges string
		if err := rows.Scan(&s.Jurisdiction, &s.Calls, &id, &s.CompanyIdentifier, &charges); err != nil {
			rows.Close()
			return nil, fmt.Errorf("tax sample: %w", err)
		}
		s.Charges = decimal.RequireFromString(charges)
		out = append(out, s)
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tax sample: %w", err)
	}
	for i, id := range ids {
		lines, err := readTaxLines(ctx, r.DB, id)
		if err != nil {
			return nil, err
		}
		out[i].Lines = lines
	}
	return out, nil
}

// readTaxLines reads one company's rows of tax_lines.
func readTaxLines(ctx context.Context, db *sql.DB, companyID int64) ([]TaxLine, error) {
	rows, err := db.QueryContext(ctx, `SELECT company_id, company_identifier, jurisdiction, tax_code, tax_name,
		level, CAST(taxable_base AS VARCHAR), CAST(tax_amount AS VARCHAR), catalog_identifier, note, basis,
		CAST(rate AS VARCHAR), exempt
		FROM tax_lines WHERE company_id = ? ORDER BY tax_code`, companyID)
	if err != nil {
		return nil, fmt.Errorf("tax lines: %w", err)
	}
	defer rows.Close()
	var out []TaxLine
	for rows.Next() {
		var l TaxLine
		var base, amount string
		var rate sql.NullString
		if err := rows.Scan(&l.CompanyID, &l.CompanyIdentifier, &l.Jurisdiction, &l.TaxCode, &l.TaxName, &l.Level,
			&base, &amount, &l.CatalogIdentifier, &l.Note, &l.Basis, &rate, &l.Exempt); err != nil {
			return nil, fmt.Errorf("tax lines: %w", err)
		}
		l.TaxableBase = decimal.RequireFromString(base)
		l.TaxAmount = decimal.RequireFromString(amount)
		if rate.Valid {
			l.Rate = decimal.RequireFromString(rate.String)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}
