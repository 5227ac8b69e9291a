package pipeline

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/shopspring/decimal"
)

// preflightSample is how many rows of each source step 3 parses, and how many offending rows a
// step lists.
const (
	preflightSample = 20
	preflightFirst  = 3
)

// rows runs a query and calls fn for each row.
func (pr *preflightRun) rows(ctx context.Context, q string, fn func(*sql.Rows) error, args ...any) error {
	rows, err := pr.r.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// tableExists reports whether the scratch database has a table or view.
func (pr *preflightRun) tableExists(ctx context.Context, name string) bool {
	var n int
	err := pr.r.DB.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", name).Scan(&n)
	return err == nil && n > 0
}

// Step 1: every CDR account maps to a company.
func (pr *preflightRun) checkEntities(ctx context.Context) error {
	st := pr.rep.step(1)
	if !pr.ready(1, "rate") {
		return nil
	}
	var cdrs, accounts, unmapped, companies int64
	err := pr.r.DB.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM staged_cdrs), (SELECT count(DISTINCT account) FROM staged_cdrs),
		(SELECT count(*) FROM rating_errors WHERE kind = 'unmapped_account'),
		(SELECT count(DISTINCT company_id) FROM (SELECT company_id FROM rated_usage
		     UNION ALL SELECT c.company_id FROM rating_errors e JOIN ref_customers c ON c.account = e.account
		     WHERE e.kind <> 'unmapped_account'))`).
		Scan(&cdrs, &accounts, &unmapped, &companies)
	if err != nil {
		return err
	}
	st.add("%d CDRs staged for %s from %d accounts; %d CDRs' accounts map to %d ConnectWise companies (customers.csv)",
		cdrs, pr.period, accounts, cdrs-unmapped, companies)
	if cdrs == 0 {
		st.raise(PreflightWarn, fmt.Sprintf("No CDR is staged for %s: drop a month of CDR files into the sources' folders and rerun.", pr.period))
	}
	var bad int
	err = pr.rows(ctx, `SELECT account, count(*), arg_min(source_file || ':' || source_line, (source_file, source_line)),
			arg_min(detail, (source_file, source_line))
		FROM rating_errors WHERE kind = 'unmapped_account'
		GROUP BY account ORDER BY count(*) DESC, account`, func(rows *sql.Rows) error {
		var acct, first, detail string
		var n int64
		if err := rows.Scan(&acct, &n, &first, &detail); err != nil {
			return err
		}
		bad++
		if bad <= preflightFirst {
			st.add("unmapped account %s: %d CDR(s), first %s (%s)", acct, n, first, detail)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if bad > preflightFirst {
		st.add("... and %d more unmapped accounts (errors/export_errors.csv, kind unmapped_account)", bad-preflightFirst)
	}
	if bad > 0 {
		st.raise(PreflightFail, "Add a customers.csv row for each unmapped account (company_id and company_identifier as in ConnectWise, in effect from the first usage date), or correct the account code the PBX writes.")
	}
	var idle []string
	err = pr.rows(ctx, `SELECT DISTINCT c.company_identifier FROM ref_customers c
		WHERE c.effective_from <= getvariable('period_to') AND (c.effective_to IS NULL OR c.effective_to >= getvariable('period_from'))
		  AND c.company_id NOT IN (SELECT company_id FROM rated_usage)
		ORDER BY 1`, func(rows *sql.Rows) error {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		idle = append(idle, s)
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case len(idle) > preflightFirst:
		st.add("%d customers with no rated usage in %s (no invoice): %s, ...", len(idle), pr.period, strings.Join(idle[:preflightFirst], ", "))
	case len(idle) > 0:
		st.add("customers with no rated usage in %s (no invoice): %s", pr.period, strings.Join(idle, ", "))
	}
	// ConnectWise's limits and one identity per company (DOMAIN.md: company identifier ≤ 30, name ≤ 50)
	var clash int
	err = pr.rows(ctx, `SELECT company_id, string_agg(DISTINCT company_identifier, ', ' ORDER BY company_identifier),
			arg_min(file || ':' || line, line)
		FROM ref_customers GROUP BY company_id HAVING count(DISTINCT company_identifier) > 1 ORDER BY company_id`,
		func(rows *sql.Rows) error {
			var id int64
			var idents, first string
			if err := rows.Scan(&id, &idents, &first); err != nil {
				return err
			}
			clash++
			st.add("company_id %d has several company_identifiers in customers.csv: %s (first %s)", id, idents, pr.rel(first))
			return nil
		})
	if err != nil {
		return err
	}
	if clash > 0 {
		st.raise(PreflightFail, "Give each ConnectWise company (company_id) exactly one company_identifier, as ConnectWise shows it.")
	}
	var long int
	err = pr.rows(ctx, `SELECT file, line, company_identifier, company_name FROM ref_customers
		WHERE length(company_identifier) > 30 OR length(company_name) > 50 ORDER BY file, line`, func(rows *sql.Rows) error {
		var file, ident, name string
		var line int64
		if err := rows.Scan(&file, &line, &ident, &name); err != nil {
			return err
		}
		long++
		if long <= preflightFirst {
			st.add("%s:%d: company_identifier %q or company_name %q is longer than ConnectWise allows (30 and 50 characters)",
				pr.rel(file), line, ident, name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if long > 0 {
		st.raise(PreflightWarn, "Use the company identifier and name exactly as ConnectWise has them.")
	}
	return nil
}

// Step 2: every rated product maps to a catalog identifier; the fallback SKU is in the catalog.
func (pr *preflightRun) checkCatalog(ctx context.Context) error {
	st := pr.rep.step(2)
	if !pr.ready(2, "summarize") {
		return nil
	}
	fallback := pr.cfg.Billing.FallbackSKU
	var fbProduct sql.NullString
	err := pr.r.DB.QueryRowContext(ctx, "SELECT min(product) FROM ref_products WHERE catalog_identifier = ?", fallback).Scan(&fbProduct)
	if err != nil {
		return err
	}
	var maps []string
	var unmapped, noGL int
	err = pr.rows(ctx, `SELECT u.product, count(*), p.product IS NOT NULL, coalesce(nullif(trim(p.catalog_identifier), ''), ''),
			p.gl_account IS NULL, arg_min(u.source_file || ':' || u.source_line, (u.source_file, u.source_line))
		FROM rated_usage u LEFT JOIN ref_products p USING (product)
		GROUP BY ALL ORDER BY u.product`, func(rows *sql.Rows) error {
		var product, catalog, first string
		var n int64
		var known, missingGL bool
		if err := rows.Scan(&product, &n, &known, &catalog, &missingGL, &first); err != nil {
			return err
		}
		switch {
		case catalog != "":
			maps = append(maps, fmt.Sprintf("%s → %s (%d)", product, catalog, n))
			if missingGL && known {
				noGL++
				st.add("product %s has no gl_account in products.csv (QuickBooks/Xero lines get no account)", product)
			}
		default:
			unmapped++
			why := "has no catalog_identifier in products.csv"
			if !known {
				why = "is not in products.csv"
			}
			st.add("unmapped product %s %s: %d rated CDR(s), first %s; billed on fallback SKU %s", product, why, n, first, fallback)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(maps)+unmapped == 0 {
		st.add("no product rated in %s: the catalog mapping was not exercised", pr.period)
		st.raise(PreflightWarn, "Run the preflight on a period with CDRs.")
	} else {
		st.Evidence = append([]string{fmt.Sprintf("%d rated products map to a catalog identifier (CDRs): %s", len(maps), strings.Join(maps, ", "))}, st.Evidence...)
	}
	var longItems []string
	err = pr.rows(ctx, `SELECT product FROM ref_products WHERE length(catalog_identifier) > 60 OR length(description) > 60 ORDER BY product`,
		func(rows *sql.Rows) error {
			var p string
			if err := rows.Scan(&p); err != nil {
				return err
			}
			longItems = append(longItems, p)
			return nil
		})
	if err != nil {
		return err
	}
	if len(longItems) > 0 {
		st.add("products.csv rows whose catalog_identifier or description is over ConnectWise's 60 characters: %s", strings.Join(longItems, ", "))
		st.raise(PreflightWarn, "Shorten catalog identifiers and descriptions to 60 characters, as in the ConnectWise catalog.")
	}
	if fbProduct.Valid {
		st.add("fallback SKU %s (billing.fallback_sku) is products.csv's catalog identifier of %s", fallback, fbProduct.String)
	} else {
		st.add("fallback SKU %s (billing.fallback_sku) is not a catalog_identifier of any products.csv row", fallback)
	}
	switch {
	case unmapped > 0 && !fbProduct.Valid:
		st.raise(PreflightFail, fmt.Sprintf("Give each unmapped product its ConnectWise catalog identifier in products.csv, and add a products.csv row whose catalog_identifier is the fallback SKU %s (it must exist in the ConnectWise catalog).", fallback))
	case unmapped > 0:
		st.raise(PreflightWarn, "Give each unmapped product its ConnectWise catalog identifier in products.csv; until then its usage is billed on the fallback SKU.")
	case !fbProduct.Valid:
		st.raise(PreflightWarn, fmt.Sprintf("Add a products.csv row whose catalog_identifier is the fallback SKU %s (and create that item in the ConnectWise catalog).", fallback))
	}
	if noGL > 0 {
		st.raise(PreflightWarn, "Set gl_account in products.csv for every product.")
	}
	// tax catalog items
	var missing []string
	err = pr.rows(ctx, `SELECT DISTINCT t.catalog_identifier FROM ref_tax_rates t
		WHERE t.catalog_identifier NOT IN (SELECT catalog_identifier FROM ref_products WHERE catalog_identifier IS NOT NULL)
		ORDER BY 1`, func(rows *sql.Rows) error {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		missing = append(missing, s)
		return nil
	})
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		st.add("tax catalog identifiers of tax_rates.csv not in products.csv: %s", strings.Join(missing, ", "))
		st.raise(PreflightWarn, "List every tax catalog identifier in products.csv (description, GL account) and check it exists in the ConnectWise catalog.")
	}
	return nil
}

// Step 3: sample rows of each source parse.
func (pr *preflightRun) checkUsage(ctx context.Context) error {
	st := pr.rep.step(3)
	for i := range pr.cfg.Sources {
		src := &pr.cfg.Sources[i]
		s, err := SampleSource(src, pr.cfg.Paths.Inbox, pr.cfg.Location, preflightSample)
		if err != nil {
			st.add("source %s (%s): folder %s: %v", src.Name, src.Format, pr.rel(src.Path), unwrapPath(err))
			st.raise(PreflightFail, "Create each source's folder (or fix its path in cdrbill.toml) and drop a sample CDR file in it.")
			continue
		}
		switch {
		case s.File == "":
			st.add("source %s (%s): no file in %s to sample", src.Name, src.Format, pr.rel(src.Path))
			st.raise(PreflightWarn, "Drop a sample CDR file of every source into its folder so its fields can be checked.")
			continue
		case s.Err != nil:
			st.add("source %s (%s): %s cannot be read: %v", src.Name, src.Format, s.File, s.Err)
			st.raise(PreflightFail, fmt.Sprintf("Check source %s's format (%s) against the file the system writes.", src.Name, src.Format))
			continue
		}
		st.add("source %s (%s): %s: %d of the first %d rows parse", src.Name, src.Format, s.File, len(s.Records), len(s.Records)+len(s.Rejects))
		if len(s.Records) > 0 {
			rec := s.Records[0]
			qty := fmt.Sprintf("%d s", rec.Duration)
			if rec.UsageType == "data" {
				qty = fmt.Sprintf("%d bytes", rec.Bytes)
			}
			st.add("  line %d → account %s, %s, %s → %s, start %s, %s %s", rec.Line, rec.Account, rec.Direction,
				rec.Origin, rec.Destination, rec.Start.UTC().Format(time.RFC3339), rec.UsageType, qty)
		}
		for k, rj := range s.Rejects {
			if k >= preflightFirst {
				st.add("  ... and %d more rejected sample rows", len(s.Rejects)-preflightFirst)
				break
			}
			st.add("  line %d rejected: %s: %s", rj.Line, rj.Column, rj.Reason)
		}
		switch {
		case len(s.Records) == 0 || len(s.Rejects) > len(s.Records):
			st.raise(PreflightFail, fmt.Sprintf("The sample rows of source %s do not parse: check its format (%s), time zone and the file's columns.", src.Name, src.Format))
		case len(s.Rejects) > 0:
			st.raise(PreflightWarn, "Correct the rejected rows at the source or accept they stay off the invoices (errors/export_errors.csv).")
		}
	}
	if !pr.ready(3, "staging") {
		return nil
	}
	var read, staged, rejected, dups, notBilled sql.NullInt64
	err := pr.r.DB.QueryRowContext(ctx, `SELECT sum(rows_read), sum(rows_staged), sum(rows_rejected), sum(rows_duplicate), sum(rows_not_billed)
		FROM ingest_ledger`).Scan(&read, &staged, &rejected, &dups, &notBilled)
	if err != nil {
		return err
	}
	st.add("ingest ledger: %d rows read = %d staged + %d rejected + %d duplicates + %d not billed",
		read.Int64, staged.Int64, rejected.Int64, dups.Int64, notBilled.Int64)
	if read.Int64 != staged.Int64+rejected.Int64+dups.Int64+notBilled.Int64 {
		st.raise(PreflightFail, "The ingest ledger does not balance: report this as a bug.")
	}
	var periodRejects int64
	n := 0
	err = pr.rows(ctx, `SELECT source_file, source_line, column_name, reason, count(*) OVER () FROM ingest_rejects
		ORDER BY source_file, source_line`, func(rows *sql.Rows) error {
		var file, col, reason string
		var line int64
		if err := rows.Scan(&file, &line, &col, &reason, &periodRejects); err != nil {
			return err
		}
		if n < preflightFirst {
			st.add("rejected in %s: %s:%d %s: %s", pr.period, file, line, col, reason)
		}
		n++
		return nil
	})
	if err != nil {
		return err
	}
	if periodRejects > int64(preflightFirst) {
		st.add("... %d rejected rows in %s in all (errors/export_errors.csv, kind rejected)", periodRejects, pr.period)
	}
	if periodRejects > 0 {
		st.raise(PreflightWarn, "Correct the rejected rows at the source or accept they stay off the invoices (errors/export_errors.csv).")
	}
	var unreadable int64
	err = pr.rows(ctx, "SELECT source_file, detail FROM ingest_files WHERE status = 'unreadable' ORDER BY source_file", func(rows *sql.Rows) error {
		var f, d string
		if err := rows.Scan(&f, &d); err != nil {
			return err
		}
		unreadable++
		st.add("unreadable file %s: %s", f, d)
		return nil
	})
	if err != nil {
		return err
	}
	if unreadable > 0 {
		st.raise(PreflightFail, "Check the unreadable files against their source's format.")
	}
	return nil
}

func unwrapPath(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

// Step 4: each plan's rounding documented; a sample call per plan traced and equal to the job's
// amount; every CDR rated.
func (pr *preflightRun) checkRating(ctx context.Context) error {
	st := pr.rep.step(4)
	if !pr.ready(4, "summarize") {
		return nil
	}
	type sample struct {
		plan, method, account, dest, direction, usageType, amount, file string
		decimals                                                        int
		customers, cdrs, line, duration, quantity                       int64
		start                                                           time.Time
		hasSample                                                       bool
	}
	var plans []sample
	err := pr.rows(ctx, `
		WITH pick AS (
		    SELECT plan, account, destination, direction, usage_type, CAST(amount AS VARCHAR) AS amount, source_file,
		           source_line, duration, quantity, start_utc, count(*) OVER (PARTITION BY plan) AS cdrs
		    FROM rated_usage
		    QUALIFY row_number() OVER (PARTITION BY plan ORDER BY usage_type = 'voice' DESC, amount DESC, source_file, source_line, cdr_id) = 1
		), cust AS (
		    SELECT rate_plan AS plan, count(DISTINCT company_id) AS n FROM ref_customers
		    WHERE effective_from <= getvariable('period_to') AND (effective_to IS NULL OR effective_to >= getvariable('period_from'))
		    GROUP BY rate_plan
		)
		SELECT p.plan, p.rounding_method, p.rounding_decimals, coalesce(c.n, 0), coalesce(k.cdrs, 0), k.plan IS NOT NULL,
		       coalesce(k.account, ''), coalesce(k.destination, ''), coalesce(k.direction, ''), coalesce(k.usage_type, ''),
		       coalesce(k.amount, ''), coalesce(k.source_file, ''), coalesce(k.source_line, 0), coalesce(k.duration, 0),
		       coalesce(k.quantity, 0), coalesce(k.start_utc, TIMESTAMP '1970-01-01')
		FROM ref_plans p LEFT JOIN cust c USING (plan) LEFT JOIN pick k USING (plan)
		ORDER BY p.plan`, func(rows *sql.Rows) error {
		var s sample
		if err := rows.Scan(&s.plan, &s.method, &s.decimals, &s.customers, &s.cdrs, &s.hasSample, &s.account, &s.dest,
			&s.direction, &s.usageType, &s.amount, &s.file, &s.line, &s.duration, &s.quantity, &s.start); err != nil {
			return err
		}
		plans = append(plans, s)
		return nil
	})
	if err != nil {
		return err
	}
	// Trace on a second scratch run: the reference data only, as `cdrbill trace` does.
	var tr *Run
	for _, s := range plans {
		st.add("plan %s: rounding %s to %d decimals, once per call (plans.csv); %d customers, %d rated CDRs in %s",
			s.plan, s.method, s.decimals, s.customers, s.cdrs, pr.period)
		if !s.hasSample {
			if s.customers > 0 {
				st.add("  plan %s not traced: no rated CDR this period", s.plan)
				st.raise(PreflightWarn, "Trace a call of each plan with `cdrbill trace` before the first invoice.")
			}
			continue
		}
		if tr == nil {
			if tr, err = NewRun(ctx, pr.scratch, pr.r.Period, pr.opt.Log); err != nil {
				return err
			}
			defer tr.Close()
		}
		req := TraceRequest{Account: s.account, Destination: s.dest, Start: s.start, Direction: s.direction, UsageType: s.usageType}
		qty := fmt.Sprintf("%d s", s.duration)
		if s.usageType == "data" {
			req.Bytes = s.quantity
			qty = fmt.Sprintf("%d bytes", s.quantity)
		} else {
			req.Duration = s.duration
		}
		res, err := Trace(ctx, tr, req)
		if err != nil {
			return err
		}
		job := decimal.RequireFromString(s.amount)
		desc := fmt.Sprintf("  traced %s:%d (account %s, %s %s to %s, %s, %s)", s.file, s.line, s.account, s.direction,
			s.usageType, s.dest, s.start.UTC().Format(time.RFC3339), qty)
		if s.usageType == "data" {
			desc = fmt.Sprintf("  traced %s:%d (account %s, data, %s, %s)", s.file, s.line, s.account, s.start.UTC().Format(time.RFC3339), qty)
		}
		if res.Error != nil || res.Matched == nil {
			kind := "no match"
			if res.Error != nil {
				kind = res.Error.Kind + ": " + res.Error.Detail
			}
			st.add("%s: trace does not rate it (%s) but the job charged %s", desc, kind, job.StringFixed(int32(s.decimals)))
			st.raise(PreflightFail, "The trace and the job disagree: report this as a bug with the trace output.")
			continue
		}
		band := res.Matched.TimeBand
		if band == "" {
			band = "any"
		}
		prefix := res.Matched.Prefix
		if prefix == "" {
			prefix = "(fallback)"
		}
		traced, err := decimal.NewFromString(res.Amount)
		if err != nil {
			traced = decimal.Zero
		}
		steps := fmt.Sprintf("%d tier(s) %s", len(res.Tiers), res.TiersTotal.Decimal)
		if res.ConnectFee != "" && !decimal.RequireFromString(res.ConnectFee).IsZero() {
			steps += " + connect fee " + res.ConnectFee
		}
		switch res.Limit {
		case "min":
			steps += ", raised to minimum " + res.MinCharge
		case "max":
			steps += ", capped at maximum " + res.MaxCharge
		}
		st.add("%s: prefix %s, band %s, billed %d, %s, exact %s, rounded %s → %s; the job's amount %s: %s", desc,
			prefix, band, res.BilledQuantity, steps, res.Exact.Decimal, s.method, res.Amount, job.StringFixed(int32(s.decimals)),
			map[bool]string{true: "equal", false: "DIFFERENT"}[traced.Equal(job)])
		if !traced.Equal(job) {
			st.raise(PreflightFail, "The trace and the job disagree: report this as a bug with the trace output.")
		}
	}
	// unrated CDRs
	var bad int
	var total int64
	err = pr.rows(ctx, `SELECT account, key, detail, count(*), arg_min(source_file || ':' || source_line, (source_file, source_line))
		FROM rating_errors WHERE kind = 'unrated' GROUP BY account, key, detail
		ORDER BY min(source_file), min(source_line), account, key`, func(rows *sql.Rows) error {
		var acct, key, detail, first string
		var n int64
		if err := rows.Scan(&acct, &key, &detail, &n, &first); err != nil {
			return err
		}
		bad++
		total += n
		if bad <= preflightFirst {
			st.add("unrated: %d CDR(s), first %s: %s", n, first, detail)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if bad > preflightFirst {
		st.add("... %d unrated CDRs in all (errors/export_errors.csv, kind unrated)", total)
	}
	if bad > 0 {
		st.raise(PreflightFail, "Add the missing rates (plan, prefix, direction, time band, effective dates) to rates.csv: an unrated CDR is never charged zero, it stays off the invoice.")
	}
	return nil
}

// Step 5: each customer jurisdiction has tax rows; sample tax lines of the three busiest.
func (pr *preflightRun) checkTax(ctx context.Context) error {
	st := pr.rep.step(5)
	if !pr.ready(5, "tax") {
		return nil
	}
	var none, federalOnly int
	err := pr.rows(ctx, `
		WITH j AS (
		    SELECT jurisdiction,
		           CASE WHEN count(DISTINCT company_identifier) <= 3
		                THEN string_agg(DISTINCT company_identifier, ', ' ORDER BY company_identifier)
		                ELSE CAST(count(DISTINCT company_identifier) AS VARCHAR) || ' customers: '
		                     || array_to_string(list_slice(list_sort(list(DISTINCT company_identifier)), 1, 3), ', ') || ', ...'
		           END AS companies
		    FROM ref_customers
		    WHERE effective_from <= getvariable('period_to') AND (effective_to IS NULL OR effective_to >= getvariable('period_from'))
		    GROUP BY jurisdiction
		)
		SELECT j.jurisdiction, j.companies, count(t.tax_code), count(t.tax_code) FILTER (WHERE t.jurisdiction LIKE '%-%'),
		       coalesce(string_agg(DISTINCT t.tax_code, ', ' ORDER BY t.tax_code), '')
		FROM j LEFT JOIN ref_tax_rates t
		  ON (t.jurisdiction = j.jurisdiction OR starts_with(j.jurisdiction, t.jurisdiction || '-'))
		 AND t.effective_from <= getvariable('period_to') AND (t.effective_to IS NULL OR t.effective_to >= getvariable('period_from'))
		GROUP BY ALL ORDER BY j.jurisdiction`, func(rows *sql.Rows) error {
		var jur, companies, codes string
		var n, below int64
		if err := rows.Scan(&jur, &companies, &n, &below, &codes); err != nil {
			return err
		}
		switch {
		case n == 0:
			none++
			st.add("jurisdiction %s (%s): NO tax_rates.csv row applies in %s", jur, companies, pr.period)
		case below == 0 && strings.Contains(jur, "-"):
			federalOnly++
			st.add("jurisdiction %s (%s): only country-level taxes apply: %s", jur, companies, codes)
		default:
			st.add("jurisdiction %s (%s): %s", jur, companies, codes)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if none > 0 {
		st.raise(PreflightFail, "Add tax_rates.csv rows for each jurisdiction listed with none (or correct the customer's jurisdiction code in customers.csv), and verify them with the taxing authority or a tax engine.")
	}
	if federalOnly > 0 {
		st.raise(PreflightWarn, "Check that no state or local tax applies to the jurisdictions with country-level taxes only.")
	}
	samples, err := TaxSample(ctx, pr.r, 3)
	if err != nil {
		return err
	}
	if len(samples) == 0 {
		st.add("no usage in %s: no sample invoice to tax", pr.period)
		st.raise(PreflightWarn, "Run the preflight on a period with CDRs.")
	}
	for _, s := range samples {
		st.add("sample invoice: %s", s)
	}
	for _, it := range pr.r.Review {
		switch it.Kind {
		case "untaxed_customer":
			st.add("%d customers with taxable charges and no tax line", it.Count)
			st.raise(PreflightFail, "Map every customer to a jurisdiction that tax_rates.csv covers.")
		case "tax_jurisdiction_conflict":
			st.add("%d companies whose accounts lie in different jurisdictions (taxed in the first)", it.Count)
			st.raise(PreflightWarn, "Give all accounts of a company the same jurisdiction in customers.csv.")
		}
	}
	return nil
}

// detailOnlyPlaceholders render empty on a summary line.
var detailOnlyPlaceholders = []string{"{origin}", "{destination}", "{start}"}

// Step 6: the description template is valid and the invoice mode chosen.
func (pr *preflightRun) checkLineFormat(ctx context.Context) error {
	st := pr.rep.step(6)
	cfg := pr.cfg
	st.add("billing.invoice_mode = %s (summary: one line per customer and product; detail: one line per call)", cfg.Billing.InvoiceMode)
	st.add("summary line template %q", cfg.Billing.DescriptionTemplate)
	if err := CheckDescriptionTemplate(cfg.Billing.DescriptionTemplate); err != nil {
		st.add("%v", err)
		st.raise(PreflightFail, "Fix billing.description_template.")
	}
	for _, p := range detailOnlyPlaceholders {
		if strings.Contains(cfg.Billing.DescriptionTemplate, p) {
			st.add("billing.description_template uses %s, which is empty on a summary line", p)
			st.raise(PreflightWarn, "Use {origin}, {destination} and {start} only in invoices.detail_template.")
		}
	}
	if cfg.Invoices.DetailTemplate != "" {
		st.add("detail line template %q", cfg.Invoices.DetailTemplate)
		if err := CheckDescriptionTemplate(cfg.Invoices.DetailTemplate); err != nil {
			st.add("invoices.detail_template: %v", err)
			st.raise(PreflightFail, "Fix invoices.detail_template.")
		}
	}
	st.add("tax rounding: %s; invoice lines carry 2 decimals", cfg.Billing.TaxRounding)
	if !pr.ready(6, "export") {
		return nil
	}
	var overrides []string
	err := pr.rows(ctx, `SELECT invoice_mode,
			CASE WHEN count(DISTINCT company_identifier) <= 3
			     THEN string_agg(DISTINCT company_identifier, ', ' ORDER BY company_identifier)
			     ELSE CAST(count(DISTINCT company_identifier) AS VARCHAR) || ' customers: '
			          || array_to_string(list_slice(list_sort(list(DISTINCT company_identifier)), 1, 3), ', ') || ', ...'
			END
		FROM ref_customers WHERE invoice_mode IS NOT NULL AND invoice_mode <> getvariable('invoice_mode')
		  AND effective_from <= getvariable('period_to') AND (effective_to IS NULL OR effective_to >= getvariable('period_from'))
		GROUP BY 1 ORDER BY 1`, func(rows *sql.Rows) error {
		var mode, who string
		if err := rows.Scan(&mode, &who); err != nil {
			return err
		}
		overrides = append(overrides, mode+" for "+who)
		return nil
	})
	if err != nil {
		return err
	}
	if len(overrides) > 0 {
		st.add("customers.csv overrides: %s", strings.Join(overrides, "; "))
	}
	var empty int64
	var first string
	err = pr.r.DB.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE trim(coalesce(description, '')) = ''),
		coalesce(arg_min(company_identifier || ' line ' || line_no || ': "' || description || '"', (company_identifier, line_no))
		         FILTER (WHERE kind = 'usage'), '')
		FROM invoice_lines`).Scan(&empty, &first)
	if err != nil {
		return err
	}
	if first != "" {
		st.add("sample line %s", first)
	}
	if empty > 0 {
		st.add("%d invoice lines with an empty description", empty)
		st.raise(PreflightFail, "Make the description template produce text on every line (ConnectWise requires a description).")
	}
	return nil
}

// Step 8: the error queue and the ticket template are in place.
func (pr *preflightRun) checkErrorQueue(ctx context.Context) error {
	st := pr.rep.step(8)
	cfg := pr.cfg
	board, prio := cfg.Tickets.Board, cfg.Tickets.Priority
	if board == "" {
		st.add("tickets.board not set: tickets go to the default board %q", DefaultTicketBoard)
		st.raise(PreflightWarn, "Set [tickets] board (and priority) in cdrbill.toml to your ConnectWise service board.")
		board = DefaultTicketBoard
	}
	if prio == "" {
		prio = DefaultTicketPriority
	}
	st.add("tickets: board %q, priority %q; invoices.on_error = %s", board, prio, cfg.Invoices.OnError)
	if !pr.ready(8, "export") {
		return nil
	}
	dir := pr.filesDir()
	if dir == "" {
		st.add("the job wrote no export files")
		st.raise(PreflightFail, "Rerun the preflight once the job runs through.")
		return nil
	}
	errs, err := readExportCSV(dir, "errors/export_errors.csv", ExportErrorColumns)
	if err != nil {
		st.add("%v", err)
		st.raise(PreflightFail, "The error queue file is missing or malformed: report this as a bug.")
		return nil
	}
	kinds := map[string]int64{}
	for _, row := range errs.rows {
		n, _ := decimal.NewFromString(errs.get(row, "count"))
		kinds[errs.get(row, "kind")] += n.IntPart()
	}
	var parts []string
	for _, k := range sortedStrings(kinds) {
		parts = append(parts, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	summary := "empty"
	if len(parts) > 0 {
		summary = strings.Join(parts, ", ")
	}
	st.add("errors/export_errors.csv: %d rows, %d columns as CONTRACT.md (%s)", len(errs.rows), len(errs.header), summary)
	tickets, err := readExportCSV(dir, "errors/tickets.csv", TicketColumns)
	if err != nil {
		st.add("%v", err)
		st.raise(PreflightFail, "The ticket file is missing or malformed: report this as a bug.")
		return nil
	}
	st.add("errors/tickets.csv: %d tickets", len(tickets.rows))
	for i, row := range tickets.rows {
		if tickets.get(row, "source_lines") == "" {
			st.add("ticket on line %d (%s) links to no raw CDR line", i+2, tickets.get(row, "summary"))
			st.raise(PreflightFail, "Every ticket must link to the raw CDR file and line: report this as a bug.")
		}
		if i < preflightFirst {
			st.add("  %q → %s", tickets.get(row, "summary"), tickets.get(row, "source_lines"))
		}
	}
	return nil
}

// Step 9: the first-invoice reconciliation is within the threshold.
func (pr *preflightRun) checkReconciliation(ctx context.Context) error {
	st := pr.rep.step(9)
	threshold := decimal.NewFromFloat(pr.cfg.Billing.VarianceThresholdPercent)
	if !pr.ready(9, "reconcile") {
		return nil
	}
	if why, ok := pr.skipped["reconcile"]; ok {
		st.add("not reconciled: %s", strings.TrimPrefix(pr.relErr(fmt.Errorf("%s", why)), ErrSkip.Error()+": "))
		st.raise(PreflightWarn, fmt.Sprintf("Export the first invoice batch of %s from ConnectWise (GET finance/invoices or a CSV with its field paths) into paths.posted and rerun the preflight.", pr.period))
		return nil
	}
	counts, err := ReconcileSummary(ctx, pr.r.DB)
	if err != nil {
		return err
	}
	st.add("threshold %s %%: %d ok, %d flagged, %d missing_posted, %d unexpected_posted", threshold,
		counts["ok"], counts["flagged"], counts["missing_posted"], counts["unexpected_posted"])
	rec, err := readExportCSV(pr.filesDir(), "reconciliation.csv", ReconciliationColumns)
	if err != nil {
		st.add("%v", err)
		st.raise(PreflightFail, "reconciliation.csv is missing or malformed: report this as a bug.")
		return nil
	}
	var maxOK decimal.Decimal
	maxWho := ""
	for _, row := range rec.rows {
		status := rec.get(row, "status")
		who := rec.get(row, "company_identifier")
		line := fmt.Sprintf("%s: rated %s, posted %s (%s), variance %s", who, rec.get(row, "rated_total"),
			rec.get(row, "posted_total"), orNone(rec.get(row, "invoice_numbers")), rec.get(row, "variance_amount"))
		if p := rec.get(row, "variance_percent"); p != "" {
			line += " = " + p + " %"
		}
		switch status {
		case "ok":
			if p, err := decimal.NewFromString(rec.get(row, "variance_percent")); err == nil && (maxWho == "" || p.Abs().GreaterThan(maxOK)) {
				maxOK, maxWho = p.Abs(), line
			}
		case "flagged":
			st.add("flagged %s, above %s %%", line, threshold)
			st.raise(PreflightFail, "Compare the flagged invoices line by line with reconciliation_taxes.csv and the exports (a tax or SKU mapped twice, a rate that differs); fix the mapping and rerun.")
		case "missing_posted":
			st.add("missing_posted %s: rated but no posted invoice", line)
			st.raise(PreflightWarn, "Post (or export) the invoices of the customers listed as missing_posted.")
		case "unexpected_posted":
			st.add("unexpected_posted %s: posted but nothing rated", line)
			st.raise(PreflightWarn, "Check the customers listed as unexpected_posted: a usage invoice with no rated usage.")
		}
	}
	if maxWho != "" {
		st.add("largest variance within the threshold: %s", maxWho)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "no invoice"
	}
	return s
}

// Step 10: the schedule parses, the last runs, the reconciliation cadence.
func (pr *preflightRun) checkMonitoring(ctx context.Context) error {
	st := pr.rep.step(10)
	cfg := pr.cfg
	loc := cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	now := pr.now.In(loc)
	sched, err := cron.ParseStandard(cfg.Schedule.Cron)
	if err != nil {
		st.add("schedule.cron %q does not parse: %v", cfg.Schedule.Cron, err)
		st.raise(PreflightFail, "Fix schedule.cron (five fields: minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\").")
	} else {
		st.add("schedule.cron %q (%s): next run %s", cfg.Schedule.Cron, loc, sched.Next(now).Format("2006-01-02 15:04 MST"))
	}
	runs, err := readRunLog(filepath.Join(cfg.Paths.Output, "runs.csv"))
	if err != nil {
		st.add("%s: %v", pr.rel(filepath.Join(cfg.Paths.Output, "runs.csv")), err)
		st.raise(PreflightFail, "runs.csv is unreadable: restore it from backup.")
	}
	var lastRecon time.Time
	if len(runs) == 0 && err == nil {
		st.add("runs.csv: no run recorded yet")
	}
	for i := len(runs) - 1; i >= 0 && i >= len(runs)-preflightFirst; i-- {
		rn := runs[i]
		st.add("last runs: %s %s period %s exit %s, published %s, %s review items", rn.started.Format(time.RFC3339), rn.command,
			rn.period, rn.exit, rn.published, rn.review)
	}
	// the nightly job's last run, and the last reconciliation (`cdrbill reconcile`), as `cdrbill run` reports them
	var lastRun *runLogRow
	for i := range runs {
		switch runs[i].command {
		case "run":
			lastRun = &runs[i]
		case "reconcile":
			lastRecon = runs[i].started
		}
	}
	if lastRun != nil {
		if lastRun.exit != "0" && lastRun.exit != "3" {
			st.add("the last nightly run failed (exit %s): nothing new was published", lastRun.exit)
			st.raise(PreflightWarn, "Look at the failed run's log and fix it before the next scheduled run.")
		}
		if sched != nil {
			if missed := sched.Next(sched.Next(lastRun.started.In(loc))); missed.Before(now) {
				st.add("no nightly run since %s: at least two scheduled runs were missed", lastRun.started.Format(time.RFC3339))
				st.raise(PreflightWarn, "Check that cron (or `cdrbill schedule`) is running.")
			}
		}
	}
	cadence, err := ReconcileCadence(cfg.Monitor.Cutover, now)
	if err != nil {
		return err
	}
	if cfg.Monitor.Cutover == "" {
		st.add("monitoring.cutover not set: reconciliation monthly")
		st.raise(PreflightWarn, "Set monitoring.cutover to the first invoice date: reconciliation is then weekly for 90 days, monthly after.")
		return nil
	}
	due, next, _, err := ReconcileDue(cfg.Monitor.Cutover, lastRecon, now)
	if err != nil {
		return err
	}
	lastText := "never"
	if !lastRecon.IsZero() {
		lastText = lastRecon.In(loc).Format(time.DateOnly)
	}
	line := fmt.Sprintf("reconciliation cadence on %s: %s (cutover %s, weekly for %d days, then monthly); last cdrbill reconcile: %s",
		now.Format(time.DateOnly), cadence, cfg.Monitor.Cutover, CutoverWeeklyDays, lastText)
	if cadence != CadenceNone {
		line += fmt.Sprintf("; next due %s", next.Format(time.DateOnly))
		if due {
			line += " (due now)"
		}
	}
	st.add("%s", line)
	return nil
}

type runLogRow struct {
	command, period, exit, published, review string
	started                                  time.Time
}

// readRunLog reads output/runs.csv (nothing when missing), sorted by start.
func readRunLog(path string) ([]runLogRow, error) {
	f, err := readCSVFile(path)
	if err != nil || f == nil {
		return nil, err
	}
	var out []runLogRow
	for _, row := range f.rows {
		t, err := time.Parse(time.RFC3339, f.get(row, "started"))
		if err != nil {
			continue
		}
		out = append(out, runLogRow{command: f.get(row, "command"), period: f.get(row, "period"), exit: f.get(row, "exit_status"),
			published: f.get(row, "published"), review: f.get(row, "review_items"), started: t})
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].started.Before(out[j-1].started); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}
