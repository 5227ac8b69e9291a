package ingest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestAsteriskQuirks(t *testing.T) {
	opt := Options{Source: "pbx1", Location: mustLoc(t, "America/Chicago"), Country: "US", Account: "DEFAULT"}
	got, _, err := parseFile(t, "asterisk", "testdata/asterisk_quirks.csv", opt)
	if err != nil {
		t.Fatal(err)
	}
	wants := map[int64]want{
		1: {account: "ACME", direction: "outbound", dest: "3055550123", start: "2025-10-01T14:00:05Z", duration: 60, usage: "voice"}, // 16 columns, start = answer
		2: {account: "ACME", direction: "outbound", dest: "3055550124", start: "2025-10-01T14:05:00Z", duration: 0, usage: "voice",
			notBilled: "unanswered (NO ANSWER)"}, // 18 columns, answer empty unquoted
		3:  {account: "DEFAULT", direction: "inbound", dest: "3055550100", start: "2025-10-01T15:00:03Z", duration: 120, usage: "voice"}, // 21 columns, from-trunk
		4:  {account: "ACME", direction: "", dest: "1002", start: "2025-10-01T16:00:02Z", duration: 30, usage: "voice", notBilled: "internal call"},
		5:  {rejectCol: "-", reasonHas: "17 fields, want 16, 18 or 21"},
		6:  {rejectCol: "start", reasonHas: "out of range"},
		7:  {rejectCol: "billsec", reasonHas: "negative"},
		8:  {rejectCol: "disposition", reasonHas: "MAYBE"},
		10: {rejectCol: "duration", reasonHas: "absurd"},
		11: {rejectCol: "-", reasonHas: "truncated last line: quoted field not closed"},
	}
	checkLines(t, got, wants)
	if r := got[1].rec; r.Origin != "1001" {
		t.Errorf("line 1 origin %q", r.Origin)
	}
}

func TestAsteriskRefusesCdrCustomAndHeaders(t *testing.T) {
	_, _, err := parseFile(t, "asterisk", "testdata/asterisk_custom.csv", Options{Location: mustLoc(t, "UTC")})
	if !errors.Is(err, ErrCdrCustom) {
		t.Errorf("cdr_custom file: got %v, want ErrCdrCustom", err)
	}
	err = asterisk{}.Parse(strings.NewReader("accountcode,src,dst,dcontext,clid,channel,dstchannel,lastapp,lastdata,start,answer,end\n"),
		Options{Location: mustLoc(t, "UTC")}, func(Record) error { return nil }, func(Reject) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "header row") {
		t.Errorf("header row: got %v", err)
	}
}

func TestFreeSWITCHQuirks(t *testing.T) {
	opt := Options{Source: "fs1", Location: mustLoc(t, "America/New_York"), Country: "US", Account: "DEFAULT"}
	got, order, err := parseFile(t, "freeswitch", "testdata/freeswitch_quirks.csv", opt)
	if err != nil {
		t.Fatal(err)
	}
	wants := map[int64]want{
		1: {account: "ACME", direction: "outbound", dest: "3055550123", start: "2025-10-01T13:00:05Z", duration: 60, usage: "voice"}, // A leg
		2: {account: "ACME", direction: "outbound", dest: "3055550123", start: "2025-10-01T13:00:05Z", duration: 60, usage: "voice"}, // its B leg
		3: {account: "ACME", direction: "inbound", dest: "1002", start: "2025-10-01T14:00:04Z", duration: 60, usage: "voice"},        // B leg written first
		4: {account: "ACME", direction: "inbound", dest: "3055550100", start: "2025-10-01T14:00:04Z", duration: 60, usage: "voice"},  // its A leg
		5: {account: "ACME", direction: "outbound", dest: "3055550124", start: "2025-10-01T15:00:00Z", usage: "voice",
			notBilled: "unanswered (NO_ANSWER)"},
		6: {rejectCol: "-", reasonHas: "14 fields, want 13 or 15"},
		7: {rejectCol: "billsec", reasonHas: "not a number"},
		8: {account: "DEFAULT", direction: "outbound", dest: "3055550126", start: "2025-10-01T16:00:02Z", duration: 30, usage: "voice"},
		9: {account: "ACME", direction: "outbound", dest: "3055550127", start: "2025-11-02T05:30:10Z", duration: 60, usage: "voice"}, // ambiguous 01:30: EDT
	}
	checkLines(t, got, wants)
	keys := map[int64]string{}
	for l, o := range got {
		keys[l] = o.rec.Key
	}
	if keys[1] != "fs:aaaa-1|bbbb-1" || keys[2] != keys[1] || keys[3] != "fs:cccc-2|dddd-2" || keys[4] != keys[3] ||
		keys[5] != "fs:eeee-3" || keys[8] != "fs:ffff-4" {
		t.Errorf("leg keys: %v", keys)
	}
	if fmt.Sprint(order) != "[1 2 4 3 6 7 5 8 9]" {
		t.Errorf("emit order %v: the A leg must come before a B leg written first", order)
	}
}

func TestFreeSWITCHWindow(t *testing.T) {
	// a B leg whose A leg comes more than window lines later is a call of its own
	body := `"C","3055550199","1002","public","2025-10-01 10:00:01","2025-10-01 10:00:04","2025-10-01 10:01:04","63","60","X","dddd","","A"` + "\n" +
		`"C","3055550199","1003","public","2025-10-01 10:00:01","2025-10-01 10:00:04","2025-10-01 10:01:04","63","60","X","zzzz","","A"` + "\n" +
		`"C","3055550199","3055550100","public","2025-10-01 10:00:00","2025-10-01 10:00:04","2025-10-01 10:01:04","64","60","X","cccc","dddd","A"` + "\n"
	var keys []string
	err := freeswitch{window: 1}.Parse(strings.NewReader(body), Options{Location: mustLoc(t, "UTC")},
		func(r Record) error { keys = append(keys, fmt.Sprintf("%d %s", r.Line, r.Key)); return nil },
		func(r Reject) error { t.Errorf("reject %+v", r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "1 fs:dddd,3 fs:cccc|dddd,2 fs:zzzz" {
		t.Errorf("keys %q", keys)
	}
}

func TestCUCMQuirks(t *testing.T) {
	opt := Options{Source: "cucm1", Location: mustLoc(t, "America/New_York"), Country: "US", Account: "ACME"}
	got, _, err := parseFile(t, "cucm", "testdata/cucm_quirks.csv", opt)
	if err != nil {
		t.Fatal(err)
	}
	wants := map[int64]want{
		3: {account: "ACME", direction: "outbound", dest: "3055550123", start: "2025-10-01T12:00:05Z", duration: 60, usage: "voice"},
		4: {account: "ACME", direction: "outbound", dest: "3055550124", start: "2025-10-01T12:01:40Z", usage: "voice",
			notBilled: "never connected (dateTimeConnect 0)"},
		5: {account: "ACME", direction: "inbound", dest: "1001", start: "2025-10-01T12:03:23Z", duration: 120, usage: "voice"},
		6: {account: "ACME", direction: "outbound", dest: "3055550125", start: "2025-10-01T12:05:05Z", duration: 60, usage: "voice",
			notBilled: "not an end-of-call record (cdrRecordType 2)"},
		7:  {rejectCol: "dateTimeOrigination", reasonHas: "not a number"},
		8:  {rejectCol: "-", reasonHas: "6 fields, want 11"},
		9:  {rejectCol: "duration", reasonHas: "absurd"},
		10: {account: "ACME", direction: "outbound", dest: "3055550129", start: "2025-10-01T12:11:45Z", duration: 30, usage: "voice"},
	}
	checkLines(t, got, wants)
	if got[3].rec.CallID != "1-1001" {
		t.Errorf("call id %q", got[3].rec.CallID)
	}
}

func TestCUCMNeedsAccountAndColumns(t *testing.T) {
	hdr := "dateTimeOrigination,dateTimeConnect,callingPartyNumber,finalCalledPartyNumber,duration\n"
	noop := func(Record) error { return nil }
	nor := func(Reject) error { return nil }
	if err := (cucm{}).Parse(strings.NewReader(hdr), Options{}, noop, nor); err == nil || !strings.Contains(err.Error(), "account") {
		t.Errorf("no account: %v", err)
	}
	if err := (cucm{}).Parse(strings.NewReader("a,b\n"), Options{Account: "X"}, noop, nor); err == nil || !strings.Contains(err.Error(), "dateTimeOrigination") && !strings.Contains(err.Error(), "datetimeorigination") {
		t.Errorf("missing columns: %v", err)
	}
}
