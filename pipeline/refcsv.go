package pipeline

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// refCSV is one reference CSV read whole (they are small), with positions kept for messages.
type refCSV struct {
	path   string
	cols   map[string]int // header name → index
	rows   [][]string
	lines  []int   // 1-based line of each row
	starts [][]int // 1-based column (byte) of each field
}

// readRefCSV reads a reference CSV with a header row. Required columns must be present; extra
// columns are ignored. A UTF-8 BOM and CRLF line ends are accepted.
func readRefCSV(path string, required []string) (*refCSV, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &InputError{File: path, Err: err}
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	cr := csv.NewReader(bufio.NewReader(bytes.NewReader(b)))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, csvError(path, err, "reading the header row")
	}
	f := &refCSV{path: path, cols: map[string]int{}}
	for i, h := range header {
		f.cols[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, c := range required {
		if _, ok := f.cols[c]; !ok {
			return nil, Inputf(path, 1, 0, "missing column %q (have %s)", c, strings.Join(header, ", "))
		}
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(path, err, "")
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) < len(header) {
			return nil, Inputf(path, line, 0, "%d fields, the header has %d", len(rec), len(header))
		}
		starts := make([]int, len(rec))
		for i := range rec {
			_, starts[i] = cr.FieldPos(i)
			rec[i] = strings.TrimSpace(rec[i])
		}
		f.rows = append(f.rows, rec)
		f.lines = append(f.lines, line)
		f.starts = append(f.starts, starts)
	}
	return f, nil
}

func csvError(path string, err error, what string) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return Inputf(path, pe.Line, pe.Column, "%v", pe.Err)
	}
	if what != "" {
		return &InputError{File: path, Err: fmt.Errorf("%s: %w", what, err)}
	}
	return &InputError{File: path, Err: err}
}

// cell reads row i of column name; typed getters below return errors naming file:line:column.
type cell struct {
	f    *refCSV
	row  int
	name string
	idx  int
}

func (f *refCSV) cell(row int, name string) cell {
	idx, ok := f.cols[name]
	if !ok {
		idx = -1
	}
	return cell{f, row, name, idx}
}

func (c cell) raw() string {
	if c.idx < 0 {
		return ""
	}
	return c.f.rows[c.row][c.idx]
}

func (c cell) errorf(format string, args ...any) error {
	col := 0
	if c.idx >= 0 {
		col = c.f.starts[c.row][c.idx]
	}
	return Inputf(c.f.path, c.f.lines[c.row], col, "%s: %s", c.name, fmt.Sprintf(format, args...))
}

func (c cell) text(required bool) (string, error) {
	v := c.raw()
	if required && v == "" {
		return "", c.errorf("must not be empty")
	}
	return v, nil
}

func (c cell) oneOf(allowed ...string) (string, error) {
	v := c.raw()
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", c.errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
}

// integer reads a whole number; empty gives def (or an error when def is nil).
func (c cell) integer(def *int64, min int64) (int64, error) {
	v := c.raw()
	if v == "" {
		if def == nil {
			return 0, c.errorf("must not be empty")
		}
		return *def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, c.errorf("%q is not a whole number", v)
	}
	if n < min {
		return 0, c.errorf("%d is below %d", n, min)
	}
	return n, nil
}

// amount reads a decimal written with '.' and no thousands separator, at most maxScale
// decimals. Empty is nil unless required.
func (c cell) amount(required bool, maxScale int32) (*decimal.Decimal, error) {
	v := c.raw()
	if v == "" {
		if required {
			return nil, c.errorf("must not be empty")
		}
		return nil, nil
	}
	if strings.ContainsAny(v, ",eE_ ") || strings.HasPrefix(v, "+") {
		return nil, c.errorf("%q is not a plain decimal (use '.' and no separators)", v)
	}
	d, err := decimal.NewFromString(v)
	if err != nil {
		return nil, c.errorf("%q is not a decimal", v)
	}
	if d.IsNegative() {
		return nil, c.errorf("%s is negative", v)
	}
	if -d.Exponent() > maxScale {
		return nil, c.errorf("%s has more than %d decimals", v, maxScale)
	}
	return &d, nil
}

// date reads YYYY-MM-DD; empty is nil unless required.
func (c cell) date(required bool) (*time.Time, error) {
	v := c.raw()
	if v == "" {
		if required {
			return nil, c.errorf("must not be empty")
		}
		return nil, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return nil, c.errorf("%q is not a date (YYYY-MM-DD)", v)
	}
	return &t, nil
}

func (c cell) boolean() (bool, error) {
	switch strings.ToLower(c.raw()) {
	case "true", "yes", "y", "1":
		return true, nil
	case "false", "no", "n", "0", "":
		return false, nil
	}
	return false, c.errorf("%q is not true or false", c.raw())
}

// list reads values separated by ';' or spaces.
func (c cell) list() []string {
	return strings.FieldsFunc(c.raw(), func(r rune) bool { return r == ';' || r == ' ' || r == '|' })
}
