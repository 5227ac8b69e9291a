package ingest

import (
	"fmt"
	"io"
	"strings"
)

func init() { register("generic", generic{}) }

// generic reads the documented CSV: a header row mapped by name (case and spaces ignored, extra
// columns ignored), then one usage row per line.
//
// Required columns: account, start, and duration or bytes. Optional: call_id, direction, origin,
// destination, usage_type, bytes. Per row:
//   - usage_type: voice (default when empty) or data;
//   - direction: outbound or inbound; empty is an error on a voice row and outbound on a data row;
//   - voice rows need a destination phone number and a duration; bytes must be empty or 0;
//   - data rows need bytes; duration is optional (0 when empty);
//   - start: ISO 8601 with offset or Z, or without one in the source's zone;
//   - duration 0..86400 seconds, bytes 0..1 TiB, whole numbers.
type generic struct{}

var genericColumns = []string{"call_id", "account", "direction", "origin", "destination", "start", "duration", "usage_type", "bytes"}

func (generic) Parse(r io.Reader, opt Options, emit func(Record) error, reject func(Reject) error) error {
	rr := newRowReader(r)
	// header: the first row that splits
	var header []string
	f, err := rr.next(func(rj Reject) error { return fmt.Errorf("line %d: header: %s", rj.Line, rj.Reason) })
	if err == io.EOF {
		return nil // empty file: nothing to read
	}
	if err != nil {
		return err
	}
	header = append([]string(nil), f...)
	col := map[string]int{}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		name = strings.ReplaceAll(name, " ", "_")
		if name == "" {
			continue
		}
		if _, dup := col[name]; dup {
			return fmt.Errorf("line %d: header names column %q twice", rr.Line.No, name)
		}
		col[name] = i
	}
	for _, need := range []string{"account", "start"} {
		if _, ok := col[need]; !ok {
			return fmt.Errorf("line %d: header has no %q column (found %s)", rr.Line.No, need, strings.Join(header, ","))
		}
	}
	_, hasDur := col["duration"]
	_, hasBytes := col["bytes"]
	if !hasDur && !hasBytes {
		return fmt.Errorf("line %d: header has neither a \"duration\" nor a \"bytes\" column", rr.Line.No)
	}
	idx := make([]int, len(genericColumns))
	for i, c := range genericColumns {
		if j, ok := col[c]; ok {
			idx[i] = j
		} else {
			idx[i] = -1
		}
	}
	width := len(header)
	for {
		f, err := rr.next(reject)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if len(f) != width && !(len(f) > width && trailingEmpty(f, width)) {
			if err := reject(rr.countReject(len(f), fmt.Sprint(width))); err != nil {
				return err
			}
			continue
		}
		get := func(i int) string {
			if idx[i] < 0 {
				return ""
			}
			return strings.TrimSpace(f[idx[i]])
		}
		rec, bad := genericRow(get, opt)
		if err := rr.deliver(rec, bad, emit, reject); err != nil {
			return err
		}
	}
}

const (
	gCallID = iota
	gAccount
	gDirection
	gOrigin
	gDestination
	gStart
	gDuration
	gUsageType
	gBytes
)

func genericRow(get func(int) string, opt Options) (Record, Reject) {
	bad := func(col, format string, args ...any) (Record, Reject) {
		return Record{}, Reject{Column: col, Reason: fmt.Sprintf(format, args...)}
	}
	rec := Record{CallID: get(gCallID), Account: get(gAccount), Origin: get(gOrigin), Destination: get(gDestination)}
	if rec.Account == "" {
		if opt.Account == "" {
			return bad("account", "empty")
		}
		rec.Account = opt.Account
	}
	switch ut := strings.ToLower(get(gUsageType)); ut {
	case "", "voice":
		rec.UsageType = "voice"
	case "data":
		rec.UsageType = "data"
	default:
		return bad("usage_type", "%q: want voice or data", ut)
	}
	switch d := strings.ToLower(get(gDirection)); d {
	case "outbound", "inbound":
		rec.Direction = d
	case "":
		if rec.UsageType == "voice" {
			return bad("direction", "empty: want outbound or inbound")
		}
		rec.Direction = "outbound"
	default:
		return bad("direction", "%q: want outbound or inbound", d)
	}
	t, err := parseTime(get(gStart), opt.Location)
	if err != nil {
		return bad("start", "%q: %v", get(gStart), err)
	}
	rec.Start = t
	if s := get(gDuration); s != "" || rec.UsageType == "voice" {
		if rec.Duration, err = parseDuration(s); err != nil {
			return bad("duration", "%v", err)
		}
	}
	if s := get(gBytes); s != "" || rec.UsageType == "data" {
		if rec.Bytes, err = parseBytes(s); err != nil {
			return bad("bytes", "%v", err)
		}
	}
	if rec.UsageType == "voice" {
		if rec.Bytes != 0 {
			return bad("bytes", "%d bytes on a voice row", rec.Bytes)
		}
		if rec.Destination == "" {
			return bad("destination", "empty")
		}
		if !isPhoneNumber(rec.Destination) {
			return bad("destination", "%q is not a phone number", rec.Destination)
		}
	}
	return rec, Reject{}
}
