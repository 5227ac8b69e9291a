package pipeline

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/shopspring/decimal"
)

// ReferenceFiles are the reference CSVs, in load order (later files are checked against earlier).
var ReferenceFiles = []string{"plans.csv", "products.csv", "time_bands.csv", "customers.csv", "rates.csv", "tax_rates.csv"}

// LoadReference validates the reference CSVs in dir and loads them into the ref_* tables of
// sql/reference_tables.sql. Any problem is an InputError naming file, line and column.
func LoadReference(ctx context.Context, db *sql.DB, dir, currency string) error {
	if err := ExecModel(ctx, db, "reference_tables.sql"); err != nil {
		return err
	}
	l := &refLoader{dir: dir, currency: currency, plans: map[string]bool{}, bands: map[string]bool{}, classes: map[string]bool{}}
	steps := []struct {
		file  string
		table string
		read  func(*refCSV) ([]string, [][]any, error)
		req   []string
	}{
		{"plans.csv", "ref_plans", l.plans_, []string{"plan", "rounding_method", "rounding_decimals"}},
		{"products.csv", "ref_products", l.products, []string{"product", "catalog_identifier", "description", "tax_class"}},
		{"time_bands.csv", "ref_time_bands", l.timeBands, []string{"band", "days", "start", "end"}},
		{"customers.csv", "ref_customers", l.customers, []string{"account", "company_id", "company_identifier", "company_name", "rate_plan", "jurisdiction", "effective_from"}},
		{"rates.csv", "ref_rates", l.rates, []string{"plan", "product", "usage_type", "direction", "prefix", "tier_start", "rate", "rate_unit", "increment", "effective_from"}},
		{"tax_rates.csv", "ref_tax_rates", l.taxRates, []string{"jurisdiction", "tax_code", "tax_name", "level", "tax_class", "percent", "amount_per_line", "catalog_identifier", "effective_from"}},
	}
	for _, s := range steps {
		path := filepath.Join(dir, s.file)
		f, err := readRefCSV(path, s.req)
		if err != nil {
			return err
		}
		cols, rows, err := s.read(f)
		if err != nil {
			return err
		}
		if err := appendRows(ctx, db, s.table, cols, rows); err != nil {
			return fmt.Errorf("load %s: %w", path, err)
		}
	}
	return nil
}

type refLoader struct {
	dir      string
	currency string
	plans    map[string]bool
	bands    map[string]bool
	classes  map[string]bool
}

// str renders optional values for the loading table: nil stays NULL.
func str(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case *decimal.Decimal:
		if x == nil {
			return nil
		}
		return x.String()
	case *time.Time:
		if x == nil {
			return nil
		}
		return x.Format(time.DateOnly)
	case string:
		return x
	case int64:
		return fmt.Sprint(x)
	case bool:
		return fmt.Sprint(x)
	case []string:
		return strings.Join(x, ";")
	}
	panic(fmt.Sprintf("reference value of type %T", v))
}

func (l *refLoader) plans_(f *refCSV) ([]string, [][]any, error) {
	cols := []string{"plan", "rounding_method", "rounding_decimals", "currency", "file", "line"}
	var rows [][]any
	seen := map[string]int{}
	for i := range f.rows {
		plan, err := f.cell(i, "plan").text(true)
		if err != nil {
			return nil, nil, err
		}
		if prev, dup := seen[plan]; dup {
			return nil, nil, f.cell(i, "plan").errorf("plan %q is also on line %d", plan, prev)
		}
		seen[plan] = f.lines[i]
		method, err := f.cell(i, "rounding_method").oneOf("up", "half_up", "half_even", "down")
		if err != nil {
			return nil, nil, err
		}
		dec, err := f.cell(i, "rounding_decimals").integer(nil, 0)
		if err != nil {
			return nil, nil, err
		}
		if dec > 6 {
			return nil, nil, f.cell(i, "rounding_decimals").errorf("%d is above 6", dec)
		}
		cur, _ := f.cell(i, "currency").text(false)
		if cur == "" {
			cur = l.currency
		}
		if cur != l.currency {
			return nil, nil, f.cell(i, "currency").errorf("%s differs from billing.currency %s", cur, l.currency)
		}
		l.plans[plan] = true
		rows = append(rows, []any{plan, method, str(dec), cur, f.path, str(int64(f.lines[i]))})
	}
	return cols, rows, nil
}

func (l *refLoader) products(f *refCSV) ([]string, [][]any, error) {
	cols := []string{"product", "catalog_identifier", "description", "taxable", "tax_class", "gl_account", "file", "line"}
	var rows [][]any
	seen := map[string]int{}
	for i := range f.rows {
		product, err := f.cell(i, "product").text(true)
		if err != nil {
			return nil, nil, err
		}
		if prev, dup := seen[product]; dup {
			return nil, nil, f.cell(i, "product").errorf("product %q is also on line %d", product, prev)
		}
		seen[product] = f.lines[i]
		catalog, _ := f.cell(i, "catalog_identifier").text(false)
		if len(catalog) > 60 {
			return nil, nil, f.cell(i, "catalog_identifier").errorf("longer than ConnectWise's 60 characters")
		}
		desc, err := f.cell(i, "description").text(true)
		if err != nil {
			return nil, nil, err
		}
		taxable, err := f.cell(i, "taxable").boolean()
		if err != nil {
			return nil, nil, err
		}
		class, err := f.cell(i, "tax_class").text(true)
		if err != nil {
			return nil, nil, err
		}
		l.classes[class] = true
		gl, _ := f.cell(i, "gl_account").text(false)
		rows = append(rows, []any{product, nilIfEmpty(catalog), desc, str(taxable), class, nilIfEmpty(gl), f.path, str(int64(f.lines[i]))})
	}
	return cols, rows, nil
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

var weekdays = map[string]int{"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}

// parseDays reads "Mon", "Mon-Fri" or a wrapping range such as "Fri-Mon" into ISO weekdays.
func parseDays(s string) ([]int, bool) {
	parts := strings.Split(strings.ToLower(strings.ReplaceAll(s, " ", "")), "-")
	if len(parts) > 2 {
		return nil, false
	}
	from, ok := weekdays[parts[0]]
	if !ok {
		return nil, false
	}
	to := from
	if len(parts) == 2 {
		if to, ok = weekdays[parts[1]]; !ok {
			return nil, false
		}
	}
	var days []int
	for d := from; ; d = d%7 + 1 {
		days = append(days, d)
		if d == to {
			return days, true
		}
	}
}

var clock = regexp.MustCompile(`^([0-9]{1,2}):([0-9]{2})$`)

// minuteOfDay reads HH:MM (24:00 allowed when end is true).
func minuteOfDay(c cell, end bool) (int, error) {
	m := clock.FindStringSubmatch(c.raw())
	if m == nil {
		return 0, c.errorf("%q is not a time (HH:MM)", c.raw())
	}
	h, _ := strconv.Atoi(m[1])
	mm, _ := strconv.Atoi(m[2])
	v := h*60 + mm
	if mm > 59 || v > 1440 || (v == 1440 && !end) {
		return 0, c.errorf("%q is not a time of day", c.raw())
	}
	return v, nil
}

func (l *refLoader) timeBands(f *refCSV) ([]string, [][]any, error) {
	cols := []string{"band", "isodow", "start_minute", "end_minute", "file", "line"}
	type span struct{ day, start, end, line int }
	var spans []span
	var rows [][]any
	for i := range f.rows {
		band, err := f.cell(i, "band").text(true)
		if err != nil {
			return nil, nil, err
		}
		days, ok := parseDays(f.cell(i, "days").raw())
		if !ok {
			return nil, nil, f.cell(i, "days").errorf("%q is not a day or a range such as Mon-Fri", f.cell(i, "days").raw())
		}
		start, err := minuteOfDay(f.cell(i, "start"), false)
		if err != nil {
			return nil, nil, err
		}
		end, err := minuteOfDay(f.cell(i, "end"), true)
		if err != nil {
			return nil, nil, err
		}
		if end == start {
			return nil, nil, f.cell(i, "end").errorf("equals start; a band lasts at least a minute")
		}
		l.bands[band] = true
		for _, d := range days {
			pieces := []span{{d, start, end, f.lines[i]}}
			if end < start { // past midnight: the rest of this day and the start of the next
				pieces = []span{{d, start, 1440, f.lines[i]}, {d%7 + 1, 0, end, f.lines[i]}}
			}
			for _, p := range pieces {
				if p.end == p.start {
					continue
				}
				for _, o := range spans {
					if o.day == p.day && p.start < o.end && o.start < p.end {
						return nil, nil, f.cell(i, "start").errorf("overlaps the band on line %d", o.line)
					}
				}
				spans = append(spans, p)
				rows = append(rows, []any{band, str(int64(p.day)), str(int64(p.start)), str(int64(p.end)), f.path, str(int64(f.lines[i]))})
			}
		}
	}
	return cols, rows, nil
}

var jurisdictionCode = regexp.MustCompile(`^[A-Z]{2}(-[A-Z0-9]+)*$`)

func (l *refLoader) customers(f *refCSV) ([]string, [][]any, error) {
	cols := []string{"account", "company_id", "company_identifier", "company_name", "agreement_id", "rate_plan",
		"jurisdiction", "lines", "tax_exempt", "invoice_mode", "effective_from", "effective_to", "file", "line"}
	var rows [][]any
	ranges := map[string][]effRange{}
	one := int64(1)
	for i := range f.rows {
		account, err := f.cell(i, "account").text(true)
		if err != nil {
			return nil, nil, err
		}
		companyID, err := f.cell(i, "company_id").integer(nil, 1)
		if err != nil {
			return nil, nil, err
		}
		ident, err := f.cell(i, "company_identifier").text(true)
		if err != nil {
			return nil, nil, err
		}
		if len(ident) > 30 {
			return nil, nil, f.cell(i, "company_identifier").errorf("longer than ConnectWise's 30 characters")
		}
		name, err := f.cell(i, "company_name").text(true)
		if err != nil {
			return nil, nil, err
		}
		var agreement any
		if f.cell(i, "agreement_id").raw() != "" {
			a, err := f.cell(i, "agreement_id").integer(nil, 1)
			if err != nil {
				return nil, nil, err
			}
			agreement = str(a)
		}
		plan, err := f.cell(i, "rate_plan").text(true)
		if err != nil {
			return nil, nil, err
		}
		if !l.plans[plan] {
			return nil, nil, f.cell(i, "rate_plan").errorf("plan %q is not in plans.csv", plan)
		}
		jur := f.cell(i, "jurisdiction").raw()
		if !jurisdictionCode.MatchString(jur) {
			return nil, nil, f.cell(i, "jurisdiction").errorf("%q is not a code such as US-FL-MIAMI", jur)
		}
		lines, err := f.cell(i, "lines").integer(&one, 0)
		if err != nil {
			return nil, nil, err
		}
		mode := f.cell(i, "invoice_mode").raw()
		if mode != "" {
			if _, err := f.cell(i, "invoice_mode").oneOf("summary", "detail"); err != nil {
				return nil, nil, err
			}
		}
		from, to, err := effective(f, i)
		if err != nil {
			return nil, nil, err
		}
		if err := checkOverlap(f, i, ranges, account, from, to); err != nil {
			return nil, nil, err
		}
		rows = append(rows, []any{account, str(companyID), ident, name, agreement, plan, jur, str(lines),
			str(f.cell(i, "tax_exempt").list()), nilIfEmpty(mode), str(from), str(to), f.path, str(int64(f.lines[i]))})
	}
	return cols, rows, nil
}

// effRange is an effective-dated row's range (to nil = open-ended) and its line.
type effRange struct {
	from, to *time.Time
	line     int
}

func effective(f *refCSV, i int) (from, to *time.Time, err error) {
	if from, err = f.cell(i, "effective_from").date(true); err != nil {
		return
	}
	if to, err = f.cell(i, "effective_to").date(false); err != nil {
		return
	}
	if to != nil && to.Before(*from) {
		err = f.cell(i, "effective_to").errorf("%s is before effective_from", to.Format(time.DateOnly))
	}
	return
}

// checkOverlap refuses a row whose effective range overlaps another row of the same key.
func checkOverlap(f *refCSV, i int, seen map[string][]effRange, key string, from, to *time.Time) error {
	for _, o := range seen[key] {
		startsBeforeOtherEnds := o.to == nil || !from.After(*o.to)
		otherStartsBeforeEnd := to == nil || !o.from.After(*to)
		if startsBeforeOtherEnds && otherStartsBeforeEnd {
			return f.cell(i, "effective_from").errorf("overlaps the row on line %d for the same key", o.line)
		}
	}
	seen[key] = append(seen[key], effRange{from, to, f.lines[i]})
	return nil
}

var digits = regexp.MustCompile(`^[0-9]*$`)

func (l *refLoader) rates(f *refCSV) ([]string, [][]any, error) {
	cols := []string{"rate_id", "plan", "product", "usage_type", "direction", "prefix", "time_band", "tier_start", "tier_end",
		"rate", "rate_unit", "increment", "connect_fee", "min_charge", "max_charge", "effective_from", "effective_to", "file", "line"}
	type tier struct {
		row   int
		start int64
		vals  []any
	}
	type group struct {
		key   string
		tiers []tier
	}
	groups := map[string]*group{}
	var order []string
	ranges := map[string][]effRange{}
	for i := range f.rows {
		plan, err := f.cell(i, "plan").text(true)
		if err != nil {
			return nil, nil, err
		}
		if !l.plans[plan] {
			return nil, nil, f.cell(i, "plan").errorf("plan %q is not in plans.csv", plan)
		}
		product, err := f.cell(i, "product").text(true)
		if err != nil {
			return nil, nil, err
		}
		usage, err := f.cell(i, "usage_type").oneOf("voice", "data")
		if err != nil {
			return nil, nil, err
		}
		dir, err := f.cell(i, "direction").oneOf("outbound", "inbound", "any")
		if err != nil {
			return nil, nil, err
		}
		prefix := strings.TrimPrefix(f.cell(i, "prefix").raw(), "+")
		if !digits.MatchString(prefix) {
			return nil, nil, f.cell(i, "prefix").errorf("%q is not digits", prefix)
		}
		band := f.cell(i, "time_band").raw()
		if band != "" && !l.bands[band] {
			return nil, nil, f.cell(i, "time_band").errorf("band %q is not in time_bands.csv", band)
		}
		tierStart, err := f.cell(i, "tier_start").integer(nil, 0)
		if err != nil {
			return nil, nil, err
		}
		rate, err := f.cell(i, "rate").amount(true, 9)
		if err != nil {
			return nil, nil, err
		}
		unit, err := f.cell(i, "rate_unit").integer(nil, 1)
		if err != nil {
			return nil, nil, err
		}
		inc, err := f.cell(i, "increment").integer(nil, 1)
		if err != nil {
			return nil, nil, err
		}
		fee, err := f.cell(i, "connect_fee").amount(false, 9)
		if err != nil {
			return nil, nil, err
		}
		if fee == nil {
			zero := decimal.Zero
			fee = &zero
		}
		minC, err := f.cell(i, "min_charge").amount(false, 9)
		if err != nil {
			return nil, nil, err
		}
		maxC, err := f.cell(i, "max_charge").amount(false, 9)
		if err != nil {
			return nil, nil, err
		}
		if minC != nil && maxC != nil && minC.GreaterThan(*maxC) {
			return nil, nil, f.cell(i, "min_charge").errorf("%s is above max_charge %s", minC, maxC)
		}
		from, to, err := effective(f, i)
		if err != nil {
			return nil, nil, err
		}
		rateKey := strings.Join([]string{plan, usage, dir, prefix, band}, "\x00")
		key := strings.Join([]string{rateKey, str(from).(string), fmt.Sprint(str(to))}, "\x00")
		g, ok := groups[key]
		if !ok {
			if err := checkOverlap(f, i, ranges, rateKey, from, to); err != nil {
				return nil, nil, err
			}
			g = &group{key: key}
			groups[key] = g
			order = append(order, key)
		}
		for _, t := range g.tiers {
			if t.start == tierStart {
				return nil, nil, f.cell(i, "tier_start").errorf("tier %d is also on line %d", tierStart, f.lines[t.row])
			}
		}
		if len(g.tiers) > 0 {
			if first := g.tiers[0].vals[1]; first != product {
				return nil, nil, f.cell(i, "product").errorf("tiers of one rate name different products (%s on line %d)", first, f.lines[g.tiers[0].row])
			}
		}
		vals := []any{plan, product, usage, dir, prefix, band, str(tierStart), nil, rate.String(), str(unit), str(inc),
			fee.String(), str(minC), str(maxC), str(from), str(to), f.path, str(int64(f.lines[i]))}
		g.tiers = append(g.tiers, tier{row: i, start: tierStart, vals: vals})
	}
	var rows [][]any
	for id, key := range order {
		g := groups[key]
		sort.Slice(g.tiers, func(a, b int) bool { return g.tiers[a].start < g.tiers[b].start })
		first := g.tiers[0]
		if first.start != 0 {
			return nil, nil, f.cell(first.row, "tier_start").errorf("the rate's tiers must start at 0 (lowest is %d)", first.start)
		}
		for t, tr := range g.tiers {
			var end any
			if t+1 < len(g.tiers) {
				end = str(g.tiers[t+1].start)
			}
			v := tr.vals
			// connect fee, minimum and maximum are read from the tier 0 row.
			row := []any{str(int64(id + 1)), v[0], v[1], v[2], v[3], v[4], v[5], v[6], end, v[8], v[9], v[10],
				first.vals[11], first.vals[12], first.vals[13], v[14], v[15], v[16], v[17]}
			rows = append(rows, row)
		}
	}
	return cols, rows, nil
}

func (l *refLoader) taxRates(f *refCSV) ([]string, [][]any, error) {
	cols := []string{"jurisdiction", "tax_code", "tax_name", "level", "tax_class", "percent", "amount_per_line",
		"base_percent", "base_includes", "catalog_identifier", "effective_from", "effective_to", "file", "line"}
	var rows [][]any
	hundred := decimal.NewFromInt(100)
	for i := range f.rows {
		jur := f.cell(i, "jurisdiction").raw()
		if !jurisdictionCode.MatchString(jur) {
			return nil, nil, f.cell(i, "jurisdiction").errorf("%q is not a code such as US-FL", jur)
		}
		var text [4]string
		for k, name := range []string{"tax_code", "tax_name", "level", "tax_class"} {
			v, err := f.cell(i, name).text(true)
			if err != nil {
				return nil, nil, err
			}
			text[k] = v
		}
		pct, err := f.cell(i, "percent").amount(false, 6)
		if err != nil {
			return nil, nil, err
		}
		perLine, err := f.cell(i, "amount_per_line").amount(false, 6)
		if err != nil {
			return nil, nil, err
		}
		base, err := f.cell(i, "base_percent").amount(false, 4)
		if err != nil {
			return nil, nil, err
		}
		if base == nil {
			base = &hundred
		}
		if base.GreaterThan(hundred) {
			return nil, nil, f.cell(i, "base_percent").errorf("%s is above 100", base)
		}
		catalog, err := f.cell(i, "catalog_identifier").text(true)
		if err != nil {
			return nil, nil, err
		}
		from, to, err := effective(f, i)
		if err != nil {
			return nil, nil, err
		}
		rows = append(rows, []any{jur, text[0], text[1], text[2], text[3], str(pct), str(perLine), base.String(),
			str(f.cell(i, "base_includes").list()), catalog, str(from), str(to), f.path, str(int64(f.lines[i]))})
	}
	return cols, rows, nil
}

// appendRows loads validated rows (strings or nil) into a table through a VARCHAR loading table
// and DuckDB's appender; the casts cannot fail because Go has checked every value.
func appendRows(ctx context.Context, db *sql.DB, table string, cols []string, rows [][]any) error {
	load := "load_" + table
	defs := make([]string, len(cols))
	casts := make([]string, len(cols))
	for i, c := range cols {
		defs[i] = c + " VARCHAR"
		casts[i] = c
	}
	types, err := columnTypes(ctx, db, table)
	if err != nil {
		return err
	}
	for i, c := range cols {
		switch t := types[c]; {
		case t == "VARCHAR[]":
			casts[i] = fmt.Sprintf("CASE WHEN coalesce(%s, '') = '' THEN []::VARCHAR[] ELSE string_split(%s, ';') END", c, c)
		case t != "VARCHAR":
			casts[i] = fmt.Sprintf("CAST(%s AS %s)", c, t)
		}
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE OR REPLACE TEMP TABLE %s (%s)", load, strings.Join(defs, ", "))); err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	err = conn.Raw(func(dc any) error {
		a, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", load)
		if err != nil {
			return err
		}
		for _, r := range rows {
			vals := make([]driver.Value, len(r))
			for i, v := range r {
				vals[i] = v
			}
			if err := a.AppendRow(vals...); err != nil {
				a.Close()
				return err
			}
		}
		return a.Close()
	})
	conn.Close()
	if err != nil {
		return err
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s; DROP TABLE %s",
		table, strings.Join(cols, ", "), strings.Join(casts, ", "), load, load)
	_, err = db.ExecContext(ctx, q)
	return err
}

func columnTypes(ctx context.Context, db *sql.DB, table string) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?", table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types := map[string]string{}
	for rows.Next() {
		var n, t string
		if err := rows.Scan(&n, &t); err != nil {
			return nil, err
		}
		types[n] = t
	}
	return types, rows.Err()
}
