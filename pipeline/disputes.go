package pipeline

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Disputes and the reconciliation cadence: the monitoring half of reconciliation (issue 7).

// DisputeSLADays is how long an invoice dispute may stay open: one open for more than this many
// days on the run date is a breach.
const DisputeSLADays = 14

// Dispute is one row of reference/disputes.csv: `company, invoice, opened` (opened is
// YYYY-MM-DD; an optional `resolved` date closes it; other columns are ignored).
type Dispute struct {
	File     string
	Line     int
	Company  string
	Invoice  string
	Opened   time.Time
	Resolved *time.Time
}

// DisputeBreach is an open dispute past the SLA.
type DisputeBreach struct {
	Dispute
	AgeDays int
}

// ReadDisputes reads a disputes file; a file that does not exist means no disputes.
func ReadDisputes(path string) ([]Dispute, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("disputes: %w", err)
	}
	cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, csvInputError(path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		k := strings.ToLower(strings.TrimSpace(h))
		switch k {
		case "company", "invoice", "opened", "resolved":
			if j, dup := col[k]; dup {
				return nil, Inputf(path, 1, i+1, "column %s twice (also column %d)", k, j+1)
			}
			col[k] = i
		}
	}
	for _, k := range []string{"company", "invoice", "opened"} {
		if _, ok := col[k]; !ok {
			return nil, Inputf(path, 1, 0, "header lacks %s (want company, invoice, opened)", k)
		}
	}
	var out []Dispute
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvInputError(path, err)
		}
		line, _ := cr.FieldPos(0)
		cell := func(k string) (string, int) {
			i, ok := col[k]
			if !ok || i >= len(rec) {
				return "", i + 1
			}
			return strings.TrimSpace(rec[i]), i + 1
		}
		d := Dispute{File: path, Line: line}
		var c int
		if d.Company, c = cell("company"); d.Company == "" {
			return nil, Inputf(path, line, c, "company is empty")
		}
		if d.Invoice, c = cell("invoice"); d.Invoice == "" {
			return nil, Inputf(path, line, c, "invoice is empty")
		}
		v, c := cell("opened")
		if d.Opened, err = time.Parse(time.DateOnly, v); err != nil {
			return nil, Inputf(path, line, c, "opened %q: want YYYY-MM-DD", v)
		}
		if v, c := cell("resolved"); v != "" {
			t, err := time.Parse(time.DateOnly, v)
			if err != nil {
				return nil, Inputf(path, line, c, "resolved %q: want YYYY-MM-DD or empty", v)
			}
			if t.Before(d.Opened) {
				return nil, Inputf(path, line, c, "resolved %s is before opened %s", v, d.Opened.Format(time.DateOnly))
			}
			d.Resolved = &t
		}
		out = append(out, d)
	}
	return out, nil
}

// DisputeBreaches lists the disputes still open on day asOf (a calendar date) that were opened
// more than slaDays days before it, oldest first. A dispute opened on November 1 breaches a
// 14-day SLA on November 16.
func DisputeBreaches(ds []Dispute, asOf time.Time, slaDays int) []DisputeBreach {
	day := calendarDay(asOf)
	var out []DisputeBreach
	for _, d := range ds {
		if d.Resolved != nil && !d.Resolved.After(day) {
			continue
		}
		age := int(day.Sub(calendarDay(d.Opened)).Hours() / 24)
		if age > slaDays {
			out = append(out, DisputeBreach{d, age})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Opened.Equal(out[j].Opened) {
			return out[i].Opened.Before(out[j].Opened)
		}
		if out[i].Company != out[j].Company {
			return out[i].Company < out[j].Company
		}
		return out[i].Invoice < out[j].Invoice
	})
	return out
}

func calendarDay(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// DisputesStage checks reference/disputes.csv against the SLA as of the run's start day in the
// billing zone: each breach is logged and counted as review item dispute_sla_breach. It writes no
// file (a breach list depends on the day it is run, and the period's outputs must not). Skipped
// when there is no disputes file.
type DisputesStage struct {
	// SLADays defaults to DisputeSLADays.
	SLADays int
}

func (DisputesStage) String() string { return "disputes" }

func (s DisputesStage) Run(ctx context.Context, r *Run) error {
	path := filepath.Join(r.Cfg.Paths.Reference, "disputes.csv")
	ds, err := ReadDisputes(path)
	if err != nil {
		return err
	}
	if ds == nil {
		return fmt.Errorf("%w: no %s", ErrSkip, path)
	}
	sla := s.SLADays
	if sla <= 0 {
		sla = DisputeSLADays
	}
	loc := r.Cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	asOf := r.Started.In(loc)
	breaches := DisputeBreaches(ds, asOf, sla)
	for _, b := range breaches {
		r.Log.Warn("invoice dispute past its SLA", "company", b.Company, "invoice", b.Invoice,
			"opened", b.Opened.Format(time.DateOnly), "age_days", b.AgeDays, "sla_days", sla,
			"source", fmt.Sprintf("%s:%d", filepath.Base(b.File), b.Line))
	}
	r.Count("disputes_open", int64(countOpen(ds, asOf)))
	r.NeedsReview("dispute_sla_breach", int64(len(breaches)))
	return nil
}

func countOpen(ds []Dispute, asOf time.Time) int {
	day := calendarDay(asOf)
	n := 0
	for _, d := range ds {
		if d.Resolved == nil || d.Resolved.After(day) {
			n++
		}
	}
	return n
}

// Reconciliation cadence: weekly during the first CutoverWeeklyDays days after the cutover date
// (the cutover day is day 0), monthly after that. Before cutover, reconciliation is the
// first-invoice check of preflight step 9.
const CutoverWeeklyDays = 90

// Cadence values.
const (
	CadenceNone    = "before_cutover"
	CadenceWeekly  = "weekly"
	CadenceMonthly = "monthly"
)

// ReconcileCadence is the cadence in force on day (a calendar date). An empty cutover means no
// cutover is configured: monthly.
func ReconcileCadence(cutover string, day time.Time) (string, error) {
	if cutover == "" {
		return CadenceMonthly, nil
	}
	c, err := time.Parse(time.DateOnly, cutover)
	if err != nil {
		return "", fmt.Errorf("monitoring.cutover %q: want YYYY-MM-DD", cutover)
	}
	d := calendarDay(day)
	switch {
	case d.Before(c):
		return CadenceNone, nil
	case d.Before(c.AddDate(0, 0, CutoverWeeklyDays)):
		return CadenceWeekly, nil
	}
	return CadenceMonthly, nil
}

// ReconcileDue says whether a reconciliation is due on day, given the day of the last one (zero:
// never), and when the next one is due: 7 days after the last while weekly, one calendar month
// after it while monthly (clamped to the end of a shorter month). Before cutover nothing is due.
func ReconcileDue(cutover string, last, day time.Time) (due bool, next time.Time, cadence string, err error) {
	cadence, err = ReconcileCadence(cutover, day)
	if err != nil || cadence == CadenceNone {
		return false, time.Time{}, cadence, err
	}
	d := calendarDay(day)
	if last.IsZero() {
		return true, d, cadence, nil
	}
	l := calendarDay(last)
	if cadence == CadenceWeekly {
		next = l.AddDate(0, 0, 7)
	} else {
		// one calendar month, clamped to the month's end: Jan 31 -> Feb 28
		next = l.AddDate(0, 1, 0)
		if endOfNext := time.Date(l.Year(), l.Month()+2, 0, 0, 0, 0, 0, time.UTC); next.After(endOfNext) {
			next = endOfNext
		}
	}
	return !d.Before(next), next, cadence, nil
}
