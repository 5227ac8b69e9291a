package ingest

import (
	"os"
	"strings"
	"testing"
	"time"
)

// outcome is what a parser made of one line: a record or a reject (by column).
type outcome struct {
	rec Record
	rej *Reject
}

func parseFile(t *testing.T, format, path string, opt Options) (map[int64]outcome, []int64, error) {
	t.Helper()
	p, ok := Lookup(format)
	if !ok {
		t.Fatalf("format %s not registered", format)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[int64]outcome{}
	var order []int64
	err = p.Parse(f, opt, func(r Record) error {
		if _, dup := got[r.Line]; dup {
			t.Errorf("line %d emitted twice", r.Line)
		}
		got[r.Line] = outcome{rec: r}
		order = append(order, r.Line)
		return nil
	}, func(r Reject) error {
		if _, dup := got[r.Line]; dup {
			t.Errorf("line %d emitted twice", r.Line)
		}
		rj := r
		got[r.Line] = outcome{rej: &rj}
		order = append(order, r.Line)
		return nil
	})
	return got, order, err
}

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// want is a line's expected outcome: either a reject of a column (reason containing a word) or
// a record's key fields.
type want struct {
	rejectCol string // "-" = whole-row reject with empty column
	reasonHas string
	account   string
	direction string
	dest      string
	start     string
	duration  int64
	usage     string
	bytes     int64
	notBilled string
}

func checkLines(t *testing.T, got map[int64]outcome, wants map[int64]want) {
	t.Helper()
	for line, w := range wants {
		g, ok := got[line]
		if !ok {
			t.Errorf("line %d: no outcome", line)
			continue
		}
		if w.rejectCol != "" {
			if g.rej == nil {
				t.Errorf("line %d: got record %+v, want reject of %q", line, g.rec, w.rejectCol)
				continue
			}
			col := w.rejectCol
			if col == "-" {
				col = ""
			}
			if g.rej.Column != col || !strings.Contains(g.rej.Reason, w.reasonHas) {
				t.Errorf("line %d: got reject %q %q, want column %q reason containing %q", line, g.rej.Column, g.rej.Reason, col, w.reasonHas)
			}
			if g.rej.Raw == "" {
				t.Errorf("line %d: reject without raw text", line)
			}
			continue
		}
		if g.rej != nil {
			t.Errorf("line %d: got reject %q %q, want a record", line, g.rej.Column, g.rej.Reason)
			continue
		}
		r := g.rec
		if r.Account != w.account || r.Direction != w.direction || r.Destination != w.dest ||
			!r.Start.Equal(utc(w.start)) || r.Duration != w.duration || r.UsageType != w.usage || r.Bytes != w.bytes || r.NotBilled != w.notBilled {
			t.Errorf("line %d:\n got  %s %s %s %s %d %s %d %q\n want %s %s %s %s %d %s %d %q", line,
				r.Account, r.Direction, r.Destination, r.Start.Format(time.RFC3339Nano), r.Duration, r.UsageType, r.Bytes, r.NotBilled,
				w.account, w.direction, w.dest, w.start, w.duration, w.usage, w.bytes, w.notBilled)
		}
	}
	for line, g := range got {
		if _, ok := wants[line]; !ok {
			t.Errorf("line %d: unexpected outcome %+v %+v", line, g.rec, g.rej)
		}
	}
}

func TestGenericQuirks(t *testing.T) {
	opt := Options{Source: "carrier", Location: mustLoc(t, "America/Chicago"), Country: "US"}
	got, _, err := parseFile(t, "generic", "testdata/generic_quirks.csv", opt)
	if err != nil {
		t.Fatal(err)
	}
	v := func(dir, dest, start string, dur int64) want {
		return want{account: "ACME", direction: dir, dest: dest, start: start, duration: dur, usage: "voice"}
	}
	wants := map[int64]want{
		2:  v("outbound", "+13055550123", "2025-10-01T08:00:00Z", 60),
		3:  v("inbound", "3055550101", "2025-10-01T13:30:00Z", 125), // offset -04:00, usage_type empty = voice
		4:  v("outbound", "3055550125", "2025-10-01T15:00:00Z", 30), // no offset: Chicago CDT
		5:  {account: `ACME "East"`, direction: "outbound", dest: "3055550126", start: "2025-10-01T10:05:00Z", duration: 45, usage: "voice"},
		7:  {rejectCol: "duration", reasonHas: "negative"},
		8:  {rejectCol: "duration", reasonHas: "absurd"},
		9:  {rejectCol: "start", reasonHas: "ISO 8601"},
		10: {rejectCol: "duration", reasonHas: "not a number"},
		11: {rejectCol: "-", reasonHas: "wrong column count: 7 fields, want 9"},
		12: {account: "ACME", direction: "outbound", start: "2025-10-01T11:00:00Z", usage: "data", bytes: 1048576},
		13: {rejectCol: "bytes", reasonHas: "empty"},
		14: {rejectCol: "account", reasonHas: "empty"},
		15: {rejectCol: "direction", reasonHas: "sideways"},
		16: {rejectCol: "-", reasonHas: "quoted field not closed"},
		17: v("outbound", "3055550135", "2025-10-01T10:45:00Z", 30),    // trailing empty cells
		18: v("outbound", "3055550136", "2025-11-02T06:30:00Z", 60),    // ambiguous 01:30: first (CDT)
		19: v("outbound", "3055550137", "2025-03-09T08:30:00Z", 60),    // skipped 02:30: read as CST
		20: v("outbound", "3055550138", "2025-10-01T10:50:00.25Z", 60), // +0000, fraction, "60.0"
		21: {rejectCol: "destination", reasonHas: "not a phone number"},
		22: {rejectCol: "start", reasonHas: "out of range"},
		23: {rejectCol: "bytes", reasonHas: "voice row"},
		26: {rejectCol: "-", reasonHas: "truncated last line"},
	}
	checkLines(t, got, wants)
}

func TestGenericHeaderErrors(t *testing.T) {
	cases := []struct{ name, body, errHas string }{
		{"no start", "account,destination,duration\nA,1,2\n", `no "start"`},
		{"no duration nor bytes", "account,start,destination\n", "neither"},
		{"twice", "account,start,duration,Account\n", "twice"},
		{"bad header quote", "\"account,start,duration\n", "header"},
	}
	for _, c := range cases {
		err := generic{}.Parse(strings.NewReader(c.body), Options{Location: time.UTC},
			func(Record) error { return nil }, func(Reject) error { return nil })
		if err == nil || !strings.Contains(err.Error(), c.errHas) {
			t.Errorf("%s: got %v, want error containing %q", c.name, err, c.errHas)
		}
	}
	// an empty file (BOM and blank lines only) has nothing to read
	n := 0
	err := generic{}.Parse(strings.NewReader("\ufeff\r\n\r\n"), Options{Location: time.UTC},
		func(Record) error { n++; return nil }, func(Reject) error { n++; return nil })
	if err != nil || n != 0 {
		t.Errorf("empty file: err %v, %d outcomes", err, n)
	}
}

func TestSplitCSV(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  error
	}{
		{`a,b,c`, []string{"a", "b", "c"}, nil},
		{`a,,`, []string{"a", "", ""}, nil},
		{`"a ""b""",c`, []string{`a "b"`, "c"}, nil},
		{` "x" , y `, []string{"x", "y"}, nil},
		{`"""Alice"" <1000>",1000`, []string{`"Alice" <1000>`, "1000"}, nil},
		{`ab"c,d`, []string{`ab"c`, "d"}, nil},
		{`"a`, nil, errUnterminated},
		{`"a"b,c`, nil, errAfterQuote},
		{``, []string{""}, nil},
	}
	for _, c := range cases {
		got, err := splitCSV(c.in, nil)
		if err != c.err {
			t.Errorf("%q: err %v, want %v", c.in, err, c.err)
			continue
		}
		if c.err == nil && strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

func TestLocalTimeDST(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	cases := []struct {
		wall string
		want string
	}{
		{"2025-07-01 12:00:00", "2025-07-01T16:00:00Z"},
		{"2025-11-02 01:30:00", "2025-11-02T05:30:00Z"}, // ambiguous: first occurrence, EDT
		{"2025-11-02 00:59:59", "2025-11-02T04:59:59Z"},
		{"2025-11-02 02:00:00", "2025-11-02T07:00:00Z"}, // after the repeated hour, EST
		{"2025-03-09 02:30:00", "2025-03-09T07:30:00Z"}, // skipped: shifted forward to 03:30 EDT
		{"2025-03-09 03:00:00", "2025-03-09T07:00:00Z"},
		{"2025-03-09 01:59:59", "2025-03-09T06:59:59Z"},
	}
	for _, c := range cases {
		got, err := parseTime(c.wall, ny)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(utc(c.want)) {
			t.Errorf("%s: got %s, want %s", c.wall, got.UTC().Format(time.RFC3339), c.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	n := NewNormalizer("US")
	cases := map[string]string{
		"3055550123":               "+13055550123",
		"(305) 555-0123":           "+13055550123",
		"13055550123":              "+13055550123",
		"+13055550123":             "+13055550123",
		"011 44 20 7946 0123":      "+442079460123",
		"sip:+13055550123@pbx.lan": "+13055550123",
		"1001":                     "1001",
		"anonymous":                "",
		"12":                       "12",
	}
	for in, want := range cases {
		if got := n.Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDeriveDirection(t *testing.T) {
	cases := []struct{ ctx, o, d, want string }{
		{"from-internal", "1001", "3055550123", "outbound"},
		{"from-trunk", "3055550123", "3055550100", "inbound"},
		{"default", "3055550123", "1001", "inbound"},
		{"from-internal", "1001", "1002", ""},
		{"from-internal", "3055550123", "3055550124", "outbound"},
		{"public", "+13055550123", "3055550100", "inbound"},
	}
	for _, c := range cases {
		if got := DeriveDirection(c.ctx, c.o, c.d); got != c.want {
			t.Errorf("DeriveDirection(%q,%q,%q) = %q, want %q", c.ctx, c.o, c.d, got, c.want)
		}
	}
}
