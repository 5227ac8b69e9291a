// Package ingest reads providers' CDR files. Each format is a Parser that streams records and
// rejects; it knows nothing of staging, DuckDB or the run.
package ingest

import (
	"io"
	"sort"
	"time"
)

// Record is one well-formed usage row as the provider wrote it, with its time resolved to UTC.
type Record struct {
	Line        int64  // 1-based physical line in the file where the record starts
	CallID      string // the provider's id, if any
	Account     string
	Direction   string // outbound | inbound
	Origin      string // as written
	Destination string // as written
	Start       time.Time
	Duration    int64  // billable seconds
	UsageType   string // voice | data
	Bytes       int64  // data rows
	// Key, when set, is the call's identity across files in place of its fields (FreeSWITCH:
	// the pair of leg uuids, so the B leg of a call is a duplicate of its A leg).
	Key string
	// NotBilled, when set, says why a well-formed row is not billable (unanswered, never
	// connected, internal); such rows are counted and kept apart, never staged for rating.
	NotBilled string
}

// Reject is one row that could not be read, and why.
type Reject struct {
	Line   int64
	Column string // the column at fault, by name where the format has names
	Reason string
	Raw    string
}

// Options are the source's settings that a parser needs.
type Options struct {
	Source   string
	Location *time.Location // for timestamps without an offset
	Country  string         // default country for numbers without +
	Account  string         // for formats whose rows carry no account
}

// Parser reads one file. emit and reject are called in file order (FreeSWITCH may hold a leg back
// until its partner is seen, see freeswitch.go); an error returned from Parse means the file as
// a whole could not be read. Every non-blank line after a format's header lines is exactly one
// emit or one reject.
type Parser interface {
	Parse(r io.Reader, opt Options, emit func(Record) error, reject func(Reject) error) error
}

var parsers = map[string]Parser{}

// register makes a format available under its config name.
func register(format string, p Parser) { parsers[format] = p }

// Lookup returns the parser of a format.
func Lookup(format string) (Parser, bool) {
	p, ok := parsers[format]
	return p, ok
}

// Formats lists the format names a source may use.
func Formats() []string {
	names := make([]string, 0, len(parsers))
	for n := range parsers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
