package pipeline

import (
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// ValidateTaxRates checks ref_tax_rates as a whole (the loader checks each cell) and returns an
// InputError naming tax_rates.csv, the line and the column of the first problem (by line), with
// the count of the others:
//   - exactly one of percent and amount_per_line is set;
//   - no negative rate or amount, base_percent within 0..100;
//   - tax_class is a tax_class of products.csv or 'all';
//   - base_includes names tax codes of the table, only on percentage taxes, and forms no cycle;
//   - rows of the same jurisdiction and tax_code have no overlapping effective ranges.
func ValidateTaxRates(ctx context.Context, db *sql.DB) error {
	rows, err := readTaxRateRows(ctx, db)
	if err != nil {
		return err
	}
	classes := map[string]bool{"all": true}
	cr, err := db.QueryContext(ctx, "SELECT DISTINCT tax_class FROM ref_products")
	if err != nil {
		return fmt.Errorf("tax_rates: %w", err)
	}
	for cr.Next() {
		var c string
		if err := cr.Scan(&c); err != nil {
			cr.Close()
			return err
		}
		classes[c] = true
	}
	cr.Close()
	if err := cr.Err(); err != nil {
		return err
	}

	var problems []taxProblem
	add := func(row taxRateRow, col, format string, args ...any) {
		problems = append(problems, taxProblem{row, col, fmt.Sprintf(format, args...)})
	}
	codes := map[string]bool{}
	for _, row := range rows {
		codes[row.code] = true
	}
	hundred := decimal.NewFromInt(100)
	for _, row := range rows {
		switch {
		case row.percent != nil && row.perLine != nil:
			add(row, "percent", "both percent and amount_per_line are set; a tax is one or the other")
		case row.percent == nil && row.perLine == nil:
			add(row, "percent", "neither percent nor amount_per_line is set")
		}
		if row.percent != nil && row.percent.IsNegative() {
			add(row, "percent", "%s is negative", row.percent)
		}
		if row.perLine != nil && row.perLine.IsNegative() {
			add(row, "amount_per_line", "%s is negative", row.perLine)
		}
		if row.basePercent.IsNegative() || row.basePercent.GreaterThan(hundred) {
			add(row, "base_percent", "%s is not between 0 and 100", row.basePercent)
		}
		if !classes[row.class] {
			add(row, "tax_class", "%q is not a tax_class of products.csv (have %s) nor 'all'",
				row.class, strings.Join(sortedKeys(classes), ", "))
		}
		if len(row.includes) > 0 && row.percent == nil {
			add(row, "base_includes", "only a percentage tax has a base to include other taxes in")
		}
		for _, inc := range row.includes {
			if inc == row.code {
				add(row, "base_includes", "%s includes itself", inc)
			} else if !codes[inc] {
				add(row, "base_includes", "%q is not a tax_code of tax_rates.csv", inc)
			}
		}
		if row.to != nil && row.to.Before(row.from) {
			add(row, "effective_to", "%s is before effective_from %s", row.to.Format(time.DateOnly), row.from.Format(time.DateOnly))
		}
	}

	// Overlapping effective ranges of one jurisdiction and tax_code.
	byKey := map[string][]taxRateRow{}
	for _, row := range rows {
		k := row.jurisdiction + "\x00" + row.code
		byKey[k] = append(byKey[k], row)
	}
	for _, k := range sortedKeys(byKey) {
		g := byKey[k]
		sort.SliceStable(g, func(i, j int) bool { return g[i].from.Before(g[j].from) })
		for i := 1; i < len(g); i++ {
			prev := g[i-1]
			if prev.to == nil || !prev.to.Before(g[i].from) {
				add(g[i], "effective_from", "%s %s from %s overlaps line %d (in effect %s to %s)",
					g[i].jurisdiction, g[i].code, g[i].from.Format(time.DateOnly), prev.line,
					prev.from.Format(time.DateOnly), dateOrOpen(prev.to))
			}
		}
	}

	// Cycles in base_includes (self-inclusion is reported above).
	if cycle := taxIncludeCycle(rows); cycle != nil {
		// Report the first row of the cycle's first code that includes the next code.
		for _, row := range rows {
			if row.code == cycle[0] && containsString(row.includes, cycle[1]) {
				add(row, "base_includes", "tax on tax forms a cycle: %s", strings.Join(cycle, " → "))
				break
			}
		}
	}

	if len(problems) == 0 {
		return nil
	}
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].row.line < problems[j].row.line })
	p := problems[0]
	msg := p.col + ": " + p.msg
	if len(problems) > 1 {
		msg += fmt.Sprintf(" (and %d more problems in the file)", len(problems)-1)
	}
	return Inputf(p.row.file, p.row.line, csvColumnOf(p.row.file, p.row.line, p.col), "%s", msg)
}

type taxProblem struct {
	row taxRateRow
	col string
	msg string
}

type taxRateRow struct {
	file               string
	line               int
	jurisdiction, code string
	class              string
	percent, perLine   *decimal.Decimal
	basePercent        decimal.Decimal
	includes           []string
	from               time.Time
	to                 *time.Time
}

func readTaxRateRows(ctx context.Context, db *sql.DB) ([]taxRateRow, error) {
	rows, err := db.QueryContext(ctx, `SELECT coalesce(file, 'tax_rates.csv'), coalesce(line, 0), jurisdiction,
		tax_code, tax_class, CAST(percent AS VARCHAR), CAST(amount_per_line AS VARCHAR),
		CAST(base_percent AS VARCHAR), array_to_string(base_includes, ';'), effective_from, effective_to
		FROM ref_tax_rates ORDER BY line, jurisdiction, tax_code, effective_from`)
	if err != nil {
		return nil, fmt.Errorf("tax_rates: %w", err)
	}
	defer rows.Close()
	var out []taxRateRow
	for rows.Next() {
		var r taxRateRow
		var pct, perLine sql.NullString
		var base, inc string
		var to sql.NullTime
		if err := rows.Scan(&r.file, &r.line, &r.jurisdiction, &r.code, &r.class, &pct, &perLine, &base, &inc,
			&r.from, &to); err != nil {
			return nil, fmt.Errorf("tax_rates: %w", err)
		}
		if pct.Valid {
			d := decimal.RequireFromString(pct.String)
			r.percent = &d
		}
		if perLine.Valid {
			d := decimal.RequireFromString(perLine.String)
			r.perLine = &d
		}
		r.basePercent = decimal.RequireFromString(base)
		for _, s := range strings.Split(inc, ";") {
			if s = strings.TrimSpace(s); s != "" {
				r.includes = append(r.includes, s)
			}
		}
		if to.Valid {
			t := to.Time
			r.to = &t
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// taxIncludeCycle returns a cycle of codes through base_includes (first code repeated at the end),
// or nil. Self-inclusion is left to the row check.
func taxIncludeCycle(rows []taxRateRow) []string {
	g := map[string][]string{}
	for _, r := range rows {
		if _, ok := g[r.code]; !ok {
			g[r.code] = nil
		}
		for _, inc := range r.includes {
			if inc != r.code && !containsString(g[r.code], inc) {
				g[r.code] = append(g[r.code], inc)
			}
		}
	}
	for _, k := range sortedKeys(g) {
		sort.Strings(g[k])
	}
	state := map[string]int{}
	var stack []string
	var found []string
	var visit func(c string) bool
	visit = func(c string) bool {
		state[c] = 1
		stack = append(stack, c)
		for _, n := range g[c] {
			if state[n] == 1 {
				for i, s := range stack {
					if s == n {
						found = append(append([]string{}, stack[i:]...), n)
						return true
					}
				}
			}
			if state[n] == 0 && visit(n) {
				return true
			}
		}
		stack = stack[:len(stack)-1]
		state[c] = 2
		return false
	}
	for _, k := range sortedKeys(g) {
		if state[k] == 0 && visit(k) {
			return found
		}
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func dateOrOpen(t *time.Time) string {
	if t == nil {
		return "open end"
	}
	return t.Format(time.DateOnly)
}

// csvColumnOf is the 1-based byte column where the named column's field starts on a line of a
// CSV file with a header row, or 0 when the file cannot be read (the message still names it).
func csvColumnOf(path string, line int, name string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return 0
	}
	idx := -1
	for i, h := range header {
		h = strings.TrimPrefix(h, "\ufeff")
		if strings.EqualFold(strings.TrimSpace(h), name) {
			idx = i
		}
	}
	if idx < 0 {
		return 0
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF || err != nil {
			return 0
		}
		if l, _ := cr.FieldPos(0); l == line {
			if idx >= len(rec) {
				return 0
			}
			_, col := cr.FieldPos(idx)
			return col
		}
	}
}
