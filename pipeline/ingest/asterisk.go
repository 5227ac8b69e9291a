package ingest

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

func init() { register("asterisk", asterisk{}) }

// asterisk reads cdr_csv's Master.csv: no header; accountcode, src, dst, dcontext, clid, channel,
// dstchannel, lastapp, lastdata, start, answer, end, duration, billsec, disposition, amaflags,
// then optionally uniqueid, userfield (18 columns) and peeraccount, linkedid, sequence (21).
// Times are local to the source's zone.
//
// Rules:
//   - only ANSWERED rows are billed; NO ANSWER, BUSY, FAILED, CONGESTION are not billed;
//   - the billed duration is billsec, the call's start is answer (start when answer is empty);
//   - the account is accountcode, or the source's configured account when empty;
//   - the direction is derived (DeriveDirection: dcontext, then the numbers' shape); a call between
//     two extensions is internal and not billed;
//   - a file whose first row looks like cdr_custom's layout (clid first, so a timestamp in the
//     9th column) or that has a header row is refused as a whole: its columns would be misread.
type asterisk struct{}

const (
	aAccount = iota
	aSrc
	aDst
	aDcontext
	aClid
	aChannel
	aDstchannel
	aLastapp
	aLastdata
	aStart
	aAnswer
	aEnd
	aDuration
	aBillsec
	aDisposition
	aAmaflags
	aUniqueid
)

var asteriskNames = []string{"accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
	"start", "answer", "end", "duration", "billsec", "disposition", "amaflags", "uniqueid", "userfield", "peeraccount", "linkedid", "sequence"}

// ErrCdrCustom is returned for a Master.csv written by cdr_custom rather than cdr_csv.
var ErrCdrCustom = errors.New("this looks like a cdr_custom Master.csv (clid first, start in column 9), not cdr_csv: its column order is configurable, so it is refused rather than guessed; switch the PBX to cdr_csv or export to the generic format")

func looksLikeTime(s string) bool {
	_, err := parseTime(s, time.UTC)
	return err == nil
}

func (asterisk) Parse(r io.Reader, opt Options, emit func(Record) error, reject func(Reject) error) error {
	rr := newRowReader(r)
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
			if len(f) > aStart && (strings.EqualFold(strings.TrimSpace(f[0]), "accountcode") || strings.EqualFold(strings.TrimSpace(f[0]), "clid")) {
				return fmt.Errorf("line %d: a header row (%q); cdr_csv files have none — is this cdr_custom or an export?", rr.Line.No, f[0])
			}
			if len(f) > aAnswer && looksLikeTime(f[aLastdata]) && (looksLikeTime(f[aStart]) || strings.TrimSpace(f[aStart]) == "") {
				return fmt.Errorf("line %d: %w", rr.Line.No, ErrCdrCustom)
			}
		}
		if n := len(f); n != 16 && n != 18 && n != 21 {
			if err := reject(rr.countReject(n, "16, 18 or 21")); err != nil {
				return err
			}
			continue
		}
		rec, bad := asteriskRow(f, opt)
		if err := rr.deliver(rec, bad, emit, reject); err != nil {
			return err
		}
	}
}

func asteriskRow(f []string, opt Options) (Record, Reject) {
	bad := func(col int, format string, args ...any) (Record, Reject) {
		return Record{}, Reject{Column: asteriskNames[col], Reason: fmt.Sprintf(format, args...)}
	}
	get := func(i int) string { return strings.TrimSpace(f[i]) }
	rec := Record{Account: get(aAccount), Origin: get(aSrc), Destination: get(aDst), UsageType: "voice"}
	if len(f) > aUniqueid {
		rec.CallID = get(aUniqueid)
	}
	if rec.Account == "" {
		rec.Account = opt.Account
	}
	start, err := parseTime(get(aStart), opt.Location)
	if err != nil {
		return bad(aStart, "%q: %v", get(aStart), err)
	}
	rec.Start = start
	if a := get(aAnswer); a != "" {
		if rec.Start, err = parseTime(a, opt.Location); err != nil {
			return bad(aAnswer, "%q: %v", a, err)
		}
	}
	if _, err := parseDuration(get(aDuration)); err != nil {
		return bad(aDuration, "%v", err)
	}
	if rec.Duration, err = parseDuration(get(aBillsec)); err != nil {
		return bad(aBillsec, "%v", err)
	}
	disp := strings.ToUpper(get(aDisposition))
	switch disp {
	case "ANSWERED":
	case "NO ANSWER", "BUSY", "FAILED", "CONGESTION":
		rec.NotBilled = "unanswered (" + disp + ")"
	default:
		return bad(aDisposition, "%q: want ANSWERED, NO ANSWER, BUSY, FAILED or CONGESTION", get(aDisposition))
	}
	if rec.NotBilled == "" && get(aAnswer) == "" && rec.Duration > 0 {
		return bad(aAnswer, "empty on an ANSWERED call with billsec %d", rec.Duration)
	}
	rec.Direction = DeriveDirection(get(aDcontext), rec.Origin, rec.Destination)
	if rec.NotBilled != "" {
		return rec, Reject{}
	}
	if rec.Direction == "" {
		rec.NotBilled = "internal call"
		return rec, Reject{}
	}
	if rec.Account == "" {
		return bad(aAccount, "empty, and the source has no account configured")
	}
	if rec.Direction == "outbound" && !isPhoneNumber(rec.Destination) {
		return bad(aDst, "%q is not a phone number", rec.Destination)
	}
	return rec, Reject{}
}
