package ingest

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

func init() { register("cucm", cucm{}) }

// cucm reads Cisco CUCM CDR files: a header row of column names, a row of types (INTEGER,
// VARCHAR(50), …; skipped when present), then data rows. Columns are found by name (case
// ignored), so the ~130 columns may come in any order and versions may add some.
//
// Required columns: dateTimeOrigination, dateTimeConnect, callingPartyNumber,
// finalCalledPartyNumber, duration. Rules:
//   - times are UTC epoch seconds; the call's start is dateTimeConnect;
//   - dateTimeConnect = 0 means the call never connected: not billed;
//   - cdrRecordType, when present, must be 1 (an end-of-call record); others are not billed;
//   - the destination is finalCalledPartyNumber (originalCalledPartyNumber when empty);
//   - CUCM rows carry no billing account: the source's configured account is used (a file of a
//     source without one is refused);
//   - the direction is derived from the numbers' shape (DeriveDirection); CUCM has no dialplan
//     context in the CDR. An outside-line access digit (9…) is not stripped.
//   - the call id is globalCallID_callManagerId-globalCallID_callId.
type cucm struct{}

var cucmRequired = []string{"datetimeorigination", "datetimeconnect", "callingpartynumber", "finalcalledpartynumber", "duration"}

func isTypeRow(f []string) bool {
	if len(f) == 0 {
		return false
	}
	for _, v := range f {
		u := strings.ToUpper(strings.TrimSpace(v))
		switch {
		case u == "INTEGER", u == "UNIQUEIDENTIFIER", u == "BIGINT", u == "SMALLINT", u == "TEXT", u == "DATETIME",
			strings.HasPrefix(u, "VARCHAR"), strings.HasPrefix(u, "CHAR"), strings.HasPrefix(u, "NVARCHAR"):
		default:
			return false
		}
	}
	return true
}

func (cucm) Parse(r io.Reader, opt Options, emit func(Record) error, reject func(Reject) error) error {
	rr := newRowReader(r)
	f, err := rr.next(func(rj Reject) error { return fmt.Errorf("line %d: header: %s", rj.Line, rj.Reason) })
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return err
	}
	header := append([]string(nil), f...)
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, need := range cucmRequired {
		if _, ok := col[need]; !ok {
			return fmt.Errorf("line %d: header has no %q column: not a CUCM CDR file?", rr.Line.No, need)
		}
	}
	if opt.Account == "" {
		return errors.New("CUCM records carry no account: set the source's account in the config")
	}
	at := func(name string) int {
		if i, ok := col[strings.ToLower(name)]; ok {
			return i
		}
		return -1
	}
	c := cucmCols{
		recType: at("cdrRecordType"), cmID: at("globalCallID_callManagerId"), callID: at("globalCallID_callId"),
		orig: at("dateTimeOrigination"), connect: at("dateTimeConnect"), calling: at("callingPartyNumber"),
		final: at("finalCalledPartyNumber"), original: at("originalCalledPartyNumber"), duration: at("duration"),
	}
	width := len(header)
	first := true
	for {
		f, err := rr.next(reject)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if first {
			first = false
			if isTypeRow(f) {
				continue
			}
		}
		if len(f) != width && !(len(f) > width && trailingEmpty(f, width)) {
			if err := reject(rr.countReject(len(f), strconv.Itoa(width))); err != nil {
				return err
			}
			continue
		}
		rec, bad := c.row(f, header, opt)
		if err := rr.deliver(rec, bad, emit, reject); err != nil {
			return err
		}
	}
}

type cucmCols struct {
	recType, cmID, callID, orig, connect, calling, final, original, duration int
}

func epoch(s string) (int64, error) {
	n, err := parseCount(s)
	if err != nil {
		return 0, err
	}
	if n > 1<<35 {
		return 0, fmt.Errorf("%d is not epoch seconds", n)
	}
	return n, nil
}

func (c cucmCols) row(f, header []string, opt Options) (Record, Reject) {
	get := func(i int) string {
		if i < 0 {
			return ""
		}
		return strings.TrimSpace(f[i])
	}
	bad := func(i int, format string, args ...any) (Record, Reject) {
		return Record{}, Reject{Column: strings.TrimSpace(header[i]), Reason: fmt.Sprintf(format, args...)}
	}
	rec := Record{Account: opt.Account, Origin: get(c.calling), Destination: get(c.final), UsageType: "voice"}
	if rec.Destination == "" {
		rec.Destination = get(c.original)
	}
	if c.callID >= 0 {
		rec.CallID = get(c.cmID) + "-" + get(c.callID)
	}
	origin, err := epoch(get(c.orig))
	if err != nil {
		return bad(c.orig, "%v", err)
	}
	connect, err := epoch(get(c.connect))
	if err != nil {
		return bad(c.connect, "%v", err)
	}
	if rec.Duration, err = parseDuration(get(c.duration)); err != nil {
		return bad(c.duration, "%v", err)
	}
	rec.Start = time.Unix(connect, 0).UTC()
	rec.Direction = DeriveDirection("", rec.Origin, rec.Destination)
	switch rt := get(c.recType); {
	case c.recType >= 0 && rt != "1":
		rec.NotBilled = "not an end-of-call record (cdrRecordType " + rt + ")"
	case connect == 0:
		rec.NotBilled = "never connected (dateTimeConnect 0)"
	case rec.Direction == "":
		rec.NotBilled = "internal call"
	case rec.Direction == "outbound" && !isPhoneNumber(rec.Destination):
		return bad(c.final, "%q is not a phone number", rec.Destination)
	}
	if connect == 0 {
		rec.Start = time.Unix(origin, 0).UTC()
	}
	return rec, Reject{}
}
