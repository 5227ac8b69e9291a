package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// maxLine bounds one physical line; a longer line is rejected and skipped, never buffered whole.
const maxLine = 1 << 20

// line is one physical line of a file, without its line ending.
type line struct {
	No         int64  // 1-based
	Text       string // valid UTF-8 (invalid bytes replaced by U+FFFD), BOM removed on line 1
	Terminated bool   // false for a last line with no line ending: it may have been cut short
	TooLong    bool   // longer than maxLine: Text holds its first maxLine bytes
}

// lineReader streams physical lines. Line endings are \n or \r\n. A record is one physical line:
// none of the CDR formats writes a line break inside a field, so a quoted field left open at the
// end of a line is an error of that line (see splitCSV), which keeps line numbers exact and stops
// one stray quote from swallowing the rest of a file.
type lineReader struct {
	br  *bufio.Reader
	no  int64
	acc []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line, or io.EOF after the last one. Other errors are read errors.
func (lr *lineReader) next() (line, error) {
	lr.acc = lr.acc[:0]
	tooLong := false
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if len(lr.acc)+len(chunk) > maxLine {
			if !tooLong {
				room := maxLine - len(lr.acc)
				if room > 0 {
					lr.acc = append(lr.acc, chunk[:room]...)
				}
			}
			tooLong = true
		} else {
			lr.acc = append(lr.acc, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			if len(lr.acc) == 0 && !tooLong {
				return line{}, io.EOF
			}
			lr.no++
			return lr.make(false, tooLong), nil
		}
		if err != nil {
			return line{}, err
		}
		lr.no++
		return lr.make(true, tooLong), nil
	}
}

func (lr *lineReader) make(terminated, tooLong bool) line {
	b := lr.acc
	if terminated || bytes.HasSuffix(b, []byte{'\n'}) {
		b = bytes.TrimSuffix(b, []byte{'\n'})
	}
	b = bytes.TrimSuffix(b, []byte{'\r'})
	if lr.no == 1 {
		b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
	}
	var s string
	if utf8.Valid(b) {
		s = string(b)
	} else {
		s = strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return line{No: lr.no, Text: s, Terminated: terminated, TooLong: tooLong}
}

// blank reports a line with nothing but spaces, tabs or commas (an empty spreadsheet row).
func blank(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', ',', '\r':
		default:
			return false
		}
	}
	return true
}

var (
	errUnterminated = errors.New("quoted field not closed before the end of the line")
	errAfterQuote   = errors.New("text after a closing quote")
)

// splitCSV splits one line into fields, appending to dst. Fields may be quoted with "; a quote
// inside a quoted field is doubled (""). Spaces around a field are dropped. A quote inside an
// unquoted field is kept as a character (lenient, as spreadsheets write them).
func splitCSV(s string, dst []string) ([]string, error) {
	dst = dst[:0]
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i < len(s) && s[i] == '"' {
			i++
			start := i
			var sb *strings.Builder
			for {
				j := strings.IndexByte(s[i:], '"')
				if j < 0 {
					return dst, errUnterminated
				}
				if i+j+1 < len(s) && s[i+j+1] == '"' {
					if sb == nil {
						sb = &strings.Builder{}
					}
					sb.WriteString(s[i : i+j+1])
					i += j + 2
					continue
				}
				var field string
				if sb != nil {
					sb.WriteString(s[i : i+j])
					field = sb.String()
				} else {
					field = s[start : i+j]
				}
				i += j + 1
				for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
					i++
				}
				if i < len(s) && s[i] != ',' {
					return dst, errAfterQuote
				}
				dst = append(dst, field)
				break
			}
		} else {
			j := strings.IndexByte(s[i:], ',')
			if j < 0 {
				dst = append(dst, strings.TrimRight(s[i:], " \t"))
				return dst, nil
			}
			dst = append(dst, strings.TrimRight(s[i:i+j], " \t"))
			i += j
		}
		// s[i] == ',' or end of line after a quoted field
		if i >= len(s) {
			return dst, nil
		}
		i++ // the comma
		if i == len(s) {
			dst = append(dst, "")
			return dst, nil
		}
	}
}

// rowReader turns a file into CSV rows with their line numbers, reporting unreadable lines as
// rejects. It is what every parser builds on.
type rowReader struct {
	lr     *lineReader
	fields []string
	Line   line
}

func newRowReader(r io.Reader) *rowReader { return &rowReader{lr: newLineReader(r)} }

// next returns the next non-blank row's fields (valid until the next call). A line that cannot be
// split is passed to reject and skipped. It returns io.EOF at the end.
func (rr *rowReader) next(reject func(Reject) error) ([]string, error) {
	for {
		l, err := rr.lr.next()
		if err != nil {
			return nil, err
		}
		rr.Line = l
		if l.TooLong {
			if err := reject(Reject{Line: l.No, Reason: fmt.Sprintf("line longer than %d bytes", maxLine), Raw: clip(l.Text)}); err != nil {
				return nil, err
			}
			continue
		}
		if blank(l.Text) {
			continue
		}
		rr.fields, err = splitCSV(l.Text, rr.fields)
		if err != nil {
			reason := err.Error()
			if !l.Terminated {
				reason = "truncated last line: " + reason
			}
			if err := reject(Reject{Line: l.No, Reason: reason, Raw: l.Text}); err != nil {
				return nil, err
			}
			continue
		}
		return rr.fields, nil
	}
}

// countReject is the reject of a row with the wrong number of fields; names are the columns
// expected (nil when they have none).
// deliver passes a parsed row on: the reject when the row is bad, else the record, both stamped
// with the current line.
func (rr *rowReader) deliver(rec Record, bad Reject, emit func(Record) error, reject func(Reject) error) error {
	if bad.Reason != "" {
		bad.Line, bad.Raw = rr.Line.No, rr.Line.Text
		return reject(bad)
	}
	rec.Line = rr.Line.No
	return emit(rec)
}

func (rr *rowReader) countReject(got int, want string) Reject {
	reason := fmt.Sprintf("wrong column count: %d fields, want %s", got, want)
	if !rr.Line.Terminated {
		reason = "truncated last line: " + reason
	}
	return Reject{Line: rr.Line.No, Reason: reason, Raw: rr.Line.Text}
}

// clip keeps a raw value short enough to store.
func clip(s string) string {
	const max = 4096
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// trailingEmpty reports whether fields[n:] are all empty (trailing commas a spreadsheet adds).
func trailingEmpty(fields []string, n int) bool {
	for _, f := range fields[n:] {
		if f != "" {
			return false
		}
	}
	return true
}
