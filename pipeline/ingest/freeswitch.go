package ingest

import (
	"fmt"
	"io"
	"strings"
)

func init() { register("freeswitch", freeswitch{window: legWindow}) }

// legWindow is how many lines apart the two legs of a call may be written and still be matched.
const legWindow = 100_000

// freeswitch reads mod_cdr_csv files: caller_id_name, caller_id_number, destination_number,
// context, start_stamp, answer_stamp, end_stamp, duration, billsec, hangup_cause, uuid,
// bleg_uuid, accountcode (13 fields, the compiled-in template), then read_codec, write_codec
// (15, the "example" template). Fields are quoted (unquoted is accepted too); times are local to
// the source's zone.
//
// Rules:
//   - a row with an empty answer_stamp is not billed (unanswered, with its hangup_cause);
//   - the billed duration is billsec, the call's start is answer_stamp;
//   - the account is accountcode, or the source's configured account when empty;
//   - the direction is derived (DeriveDirection; FreeSWITCH's "public" context is inbound);
//   - legs: when both legs are logged, the row whose bleg_uuid names the other row's uuid is the
//     A leg. The call's identity (Record.Key) is the pair of uuids, shared by both rows, so the
//     A leg is staged and the B leg is recorded as its duplicate (the A leg is emitted first even
//     when the B leg was written first). A row matched to no partner within legWindow lines is a
//     call of its own, keyed by its uuid. Rows may therefore be emitted out of file order.
type freeswitch struct{ window int64 }

const (
	fCallerName = iota
	fCallerNumber
	fDestination
	fContext
	fStart
	fAnswer
	fEnd
	fDuration
	fBillsec
	fHangupCause
	fUUID
	fBlegUUID
	fAccount
)

var freeswitchNames = []string{"caller_id_name", "caller_id_number", "destination_number", "context", "start_stamp",
	"answer_stamp", "end_stamp", "duration", "billsec", "hangup_cause", "uuid", "bleg_uuid", "accountcode", "read_codec", "write_codec"}

type heldLeg struct {
	rec  Record
	uuid string
}

func (p freeswitch) Parse(r io.Reader, opt Options, emit func(Record) error, reject func(Reject) error) error {
	rr := newRowReader(r)
	keyOf := map[string]string{} // uuid -> pair key, for legs named by a partner
	var keyAge []heldLeg         // uuids in keyOf by line, for pruning (rec.Line only)
	held := map[string]int{}     // uuid -> absolute position in queue of a leg waiting for its partner
	var queue []heldLeg          // held legs by line; released ones have uuid ""
	base := 0                    // absolute position of queue[0]
	pop := func(before int64) error {
		for len(queue) > 0 && queue[0].rec.Line < before {
			h := queue[0]
			queue = queue[1:]
			base++
			if h.uuid == "" {
				continue
			}
			delete(held, h.uuid)
			h.rec.Key = "fs:" + h.uuid
			if err := emit(h.rec); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		f, err := rr.next(reject)
		if err == io.EOF {
			return pop(1 << 62)
		}
		if err != nil {
			return err
		}
		line := rr.Line.No
		if err := pop(line - p.window); err != nil {
			return err
		}
		for len(keyAge) > 0 && keyAge[0].rec.Line < line-p.window {
			delete(keyOf, keyAge[0].uuid)
			keyAge = keyAge[1:]
		}
		if n := len(f); n != 13 && n != 15 {
			if err := reject(rr.countReject(n, "13 or 15")); err != nil {
				return err
			}
			continue
		}
		rec, bad := freeswitchRow(f, opt)
		if bad.Reason != "" {
			bad.Line, bad.Raw = line, rr.Line.Text
			if err := reject(bad); err != nil {
				return err
			}
			continue
		}
		rec.Line = line
		uuid, bleg := strings.TrimSpace(f[fUUID]), strings.TrimSpace(f[fBlegUUID])
		switch {
		case bleg != "" && uuid != "":
			key := "fs:" + min(uuid, bleg) + "|" + max(uuid, bleg)
			rec.Key = key
			keyOf[uuid], keyOf[bleg] = key, key
			keyAge = append(keyAge, heldLeg{rec: Record{Line: line}, uuid: uuid}, heldLeg{rec: Record{Line: line}, uuid: bleg})
			if err := emit(rec); err != nil {
				return err
			}
			if pos, ok := held[bleg]; ok { // its B leg was written first: now a duplicate of this A leg
				h := &queue[pos-base]
				delete(held, bleg)
				h.rec.Key = key
				b := h.rec
				h.uuid = ""
				if err := emit(b); err != nil {
					return err
				}
			}
		case uuid != "" && keyOf[uuid] != "":
			rec.Key = keyOf[uuid]
			if err := emit(rec); err != nil {
				return err
			}
		case uuid != "" && heldHas(held, uuid):
			// the same leg written twice: release the first, the second is its duplicate
			h := &queue[held[uuid]-base]
			delete(held, uuid)
			h.rec.Key = "fs:" + uuid
			first := h.rec
			h.uuid = ""
			rec.Key = first.Key
			if err := emit(first); err != nil {
				return err
			}
			if err := emit(rec); err != nil {
				return err
			}
		case uuid != "":
			held[uuid] = base + len(queue)
			queue = append(queue, heldLeg{rec: rec, uuid: uuid})
		default: // no uuid: identity by its fields
			if err := emit(rec); err != nil {
				return err
			}
		}
	}
}

func heldHas(m map[string]int, k string) bool { _, ok := m[k]; return ok }

func freeswitchRow(f []string, opt Options) (Record, Reject) {
	bad := func(col int, format string, args ...any) (Record, Reject) {
		return Record{}, Reject{Column: freeswitchNames[col], Reason: fmt.Sprintf(format, args...)}
	}
	get := func(i int) string { return strings.TrimSpace(f[i]) }
	rec := Record{Account: get(fAccount), Origin: get(fCallerNumber), Destination: get(fDestination), UsageType: "voice",
		CallID: get(fUUID)}
	if rec.Account == "" {
		rec.Account = opt.Account
	}
	var err error
	if rec.Start, err = parseTime(get(fStart), opt.Location); err != nil {
		return bad(fStart, "%q: %v", get(fStart), err)
	}
	if a := get(fAnswer); a != "" {
		if rec.Start, err = parseTime(a, opt.Location); err != nil {
			return bad(fAnswer, "%q: %v", a, err)
		}
	}
	if _, err := parseDuration(get(fDuration)); err != nil {
		return bad(fDuration, "%v", err)
	}
	if rec.Duration, err = parseDuration(get(fBillsec)); err != nil {
		return bad(fBillsec, "%v", err)
	}
	rec.Direction = DeriveDirection(get(fContext), rec.Origin, rec.Destination)
	switch {
	case get(fAnswer) == "":
		cause := get(fHangupCause)
		if cause == "" {
			cause = "no answer_stamp"
		}
		rec.NotBilled = "unanswered (" + cause + ")"
	case rec.Direction == "":
		rec.NotBilled = "internal call"
	case rec.Account == "":
		return bad(fAccount, "empty, and the source has no account configured")
	case rec.Direction == "outbound" && !isPhoneNumber(rec.Destination):
		return bad(fDestination, "%q is not a phone number", rec.Destination)
	}
	return rec, Reject{}
}
