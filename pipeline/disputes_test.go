package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestDisputeBreaches(t *testing.T) {
	p := writeTemp(t, "disputes.csv", `company,invoice,opened,resolved,note
ACMEDENTAL,INV-1,2025-11-01,,tax line disputed
BLUEBIRDLAW,INV-2,2025-11-02,,
CANYONCPA,INV-3,2025-10-01,2025-10-20,resolved in time
DELTAMED,INV-4,2025-10-20,2025-11-20,resolved later
`)
	ds, err := ReadDisputes(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		asOf string
		want string // invoice:age, oldest first
	}{
		{"2025-11-15", "INV-4:26"},                   // INV-1 is 14 days old: at the SLA, not past it
		{"2025-11-16", "INV-4:27 INV-1:15"},          // INV-1 at 15 days
		{"2025-11-17", "INV-4:28 INV-1:16 INV-2:15"}, //
		{"2025-11-20", "INV-1:19 INV-2:18"},          // INV-4 resolved that day
		{"2025-10-10", ""},
	} {
		var got []string
		for _, b := range DisputeBreaches(ds, day(tc.asOf), DisputeSLADays) {
			got = append(got, b.Invoice+":"+strconv.Itoa(b.AgeDays))
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("as of %s: %q, want %q", tc.asOf, strings.Join(got, " "), tc.want)
		}
	}
}

func TestReadDisputesErrors(t *testing.T) {
	for _, tc := range []struct {
		content   string
		line, col int
	}{
		{"company,invoice\nA,1\n", 1, 0},
		{"company,invoice,opened\nA,1,11/01/2025\n", 2, 3},
		{"company,invoice,opened\n,1,2025-11-01\n", 2, 1},
		{"company,invoice,opened,resolved\nA,1,2025-11-01,2025-10-01\n", 2, 4},
	} {
		_, err := ReadDisputes(writeTemp(t, "d.csv", tc.content))
		var ie *InputError
		if !errors.As(err, &ie) || ie.Line != tc.line || ie.Column != tc.col {
			t.Errorf("%q: %v, want line %d col %d", tc.content, err, tc.line, tc.col)
		}
	}
	if ds, err := ReadDisputes(filepath.Join(t.TempDir(), "none.csv")); ds != nil || err != nil {
		t.Errorf("missing file: %v %v", ds, err)
	}
}

func TestDisputesStage(t *testing.T) {
	r := newTestRun(t) // started 2025-11-01T07:00Z = 2025-11-01 03:00 in New York
	r.Cfg.Paths.Reference = t.TempDir()
	if err := (DisputesStage{}).Run(context.Background(), r); !errors.Is(err, ErrSkip) {
		t.Fatalf("no file: %v, want ErrSkip", err)
	}
	os.WriteFile(filepath.Join(r.Cfg.Paths.Reference, "disputes.csv"), []byte(
		"company,invoice,opened\nACMEDENTAL,INV-1,2025-10-17\nBLUEBIRDLAW,INV-2,2025-10-18\n"), 0o644)
	if err := (DisputesStage{}).Run(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	// 2025-10-17 is 15 days before 2025-11-01: a breach; 2025-10-18 is 14: not yet
	if len(r.Review) != 1 || r.Review[0] != (ReviewItem{"dispute_sla_breach", 1}) {
		t.Errorf("review %v", r.Review)
	}
	if r.Counts["disputes_open"] != 2 {
		t.Errorf("counts %v", r.Counts)
	}
}

func TestReconcileCadence(t *testing.T) {
	const cutover = "2025-11-01"
	for _, tc := range []struct {
		day, last string
		cadence   string
		due       bool
		next      string
	}{
		{"2025-10-31", "", CadenceNone, false, ""},
		{"2025-11-01", "", CadenceWeekly, true, "2025-11-01"},
		{"2025-11-07", "2025-11-01", CadenceWeekly, false, "2025-11-08"},
		{"2025-11-08", "2025-11-01", CadenceWeekly, true, "2025-11-08"},
		{"2026-01-29", "2026-01-22", CadenceWeekly, true, "2026-01-29"},   // day 89: still weekly
		{"2026-01-30", "2026-01-29", CadenceMonthly, false, "2026-02-28"}, // day 90: monthly; Feb 29 clamps to Feb 28
		{"2026-02-28", "2026-01-29", CadenceMonthly, true, "2026-02-28"},
		{"2026-03-20", "2026-02-20", CadenceMonthly, true, "2026-03-20"},
	} {
		var last time.Time
		if tc.last != "" {
			last = day(tc.last)
		}
		due, next, cadence, err := ReconcileDue(cutover, last, day(tc.day))
		if err != nil {
			t.Fatal(err)
		}
		gotNext := ""
		if !next.IsZero() {
			gotNext = next.Format(time.DateOnly)
		}
		if due != tc.due || cadence != tc.cadence || gotNext != tc.next {
			t.Errorf("%s (last %s): %v %s %s, want %v %s %s", tc.day, tc.last, due, cadence, gotNext, tc.due, tc.cadence, tc.next)
		}
	}
	if c, _ := ReconcileCadence("", day("2025-11-01")); c != CadenceMonthly {
		t.Errorf("no cutover: %s", c)
	}
	if _, err := ReconcileCadence("11/01/2025", day("2025-11-01")); err == nil {
		t.Errorf("bad cutover accepted")
	}
}
