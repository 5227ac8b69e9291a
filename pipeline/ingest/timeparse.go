package ingest

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

var errTime = errors.New("not an ISO 8601 date and time (want YYYY-MM-DD HH:MM[:SS][Z|±HH:MM])")

// parseTime reads an ISO 8601 date and time: YYYY-MM-DD, then T or a space, then H:MM or HH:MM,
// optional :SS and fraction, optional Z or ±HH:MM / ±HHMM / ±HH. Without an offset the time is
// local wall time in loc (see LocalTime for DST). Slash dates (10/01/2025) are refused: day and
// month order cannot be told apart.
func parseTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if len(s) < 15 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ' && s[10] != 't') {
		return time.Time{}, errTime
	}
	y, ok1 := atoiN(s[0:4])
	mo, ok2 := atoiN(s[5:7])
	d, ok3 := atoiN(s[8:10])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, errTime
	}
	i := 11
	// hour: one or two digits (spreadsheets drop the leading zero)
	h, n := leadingDigits(s[i:], 2)
	if n == 0 {
		return time.Time{}, errTime
	}
	i += n
	if i+3 > len(s) || s[i] != ':' {
		return time.Time{}, errTime
	}
	mi, ok := atoiN(s[i+1 : i+3])
	if !ok {
		return time.Time{}, errTime
	}
	i += 3
	sec, nsec := 0, 0
	if i < len(s) && s[i] == ':' {
		if i+3 > len(s) {
			return time.Time{}, errTime
		}
		if sec, ok = atoiN(s[i+1 : i+3]); !ok {
			return time.Time{}, errTime
		}
		i += 3
		if i < len(s) && (s[i] == '.' || s[i] == ',') {
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j == i+1 {
				return time.Time{}, errTime
			}
			frac := s[i+1 : j]
			if len(frac) > 9 {
				frac = frac[:9]
			}
			nsec, _ = strconv.Atoi(frac + strings.Repeat("0", 9-len(frac)))
			i = j
		}
	}
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, errors.New("date or time out of range")
	}
	rest := strings.TrimSpace(s[i:])
	if rest == "" {
		return LocalTime(y, time.Month(mo), d, h, mi, sec, nsec, loc), nil
	}
	off, ok := parseOffset(rest)
	if !ok {
		return time.Time{}, errTime
	}
	wall := time.Date(y, time.Month(mo), d, h, mi, sec, nsec, time.UTC)
	return wall.Add(-time.Duration(off) * time.Second).UTC(), nil
}

func parseOffset(s string) (int, bool) {
	if s == "Z" || s == "z" {
		return 0, true
	}
	if len(s) < 3 || (s[0] != '+' && s[0] != '-') {
		return 0, false
	}
	sign := 1
	if s[0] == '-' {
		sign = -1
	}
	hh, ok := atoiN(s[1:3])
	if !ok {
		return 0, false
	}
	mm := 0
	switch r := s[3:]; {
	case r == "":
	case len(r) == 3 && r[0] == ':':
		mm, ok = atoiN(r[1:])
	case len(r) == 2:
		mm, ok = atoiN(r)
	default:
		ok = false
	}
	if !ok || hh > 23 || mm > 59 {
		return 0, false
	}
	return sign * (hh*3600 + mm*60), true
}

// LocalTime is the instant of a wall-clock time in loc, resolved the documented way on DST
// changes: an ambiguous time (clocks set back, the hour happens twice) is the FIRST occurrence
// (the earlier instant, still on summer time); a skipped time (clocks set forward) is shifted
// forward by the gap, i.e. read with the offset in force before the change (02:30 on a
// spring-forward night in New York becomes 03:30 EDT).
func LocalTime(y int, mo time.Month, d, h, mi, sec, nsec int, loc *time.Location) time.Time {
	wall := time.Date(y, mo, d, h, mi, sec, 0, time.UTC).Unix()
	offAt := func(u int64) int64 {
		_, off := time.Unix(u, 0).In(loc).Zone()
		return int64(off)
	}
	before := offAt(wall - 12*3600 - offAt(wall))
	after := offAt(wall + 12*3600 - offAt(wall))
	tb, ta := wall-before, wall-after
	okB, okA := offAt(tb) == before, offAt(ta) == after
	var u int64
	switch {
	case okB && okA:
		u = min(tb, ta)
	case okB:
		u = tb
	case okA:
		u = ta
	default: // in the gap
		u = tb
	}
	return time.Unix(u, int64(nsec)).UTC()
}

func daysIn(y, m int) int {
	return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// atoiN reads a string of ASCII digits only.
func atoiN(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func leadingDigits(s string, max int) (int, int) {
	n, i := 0, 0
	for i < len(s) && i < max && s[i] >= '0' && s[i] <= '9' {
		n = n*10 + int(s[i]-'0')
		i++
	}
	return n, i
}

// parseCount reads a non-negative whole number (seconds or bytes). A trailing ".0" that a
// spreadsheet adds is accepted; any other fraction is not.
func parseCount(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty")
	}
	if i := strings.IndexByte(s, '.'); i >= 0 {
		if strings.Trim(s[i+1:], "0") != "" {
			return 0, errors.New("not a whole number: " + strconv.Quote(s))
		}
		s = s[:i]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("not a number: " + strconv.Quote(s))
	}
	if n < 0 {
		return 0, errors.New("negative: " + s)
	}
	return n, nil
}

// MaxDuration is the longest call accepted; longer ones are rejected as absurd.
const MaxDuration = 24 * 3600

// MaxBytes is the largest data usage row accepted (1 TiB).
const MaxBytes = 1 << 40

func parseDuration(s string) (int64, error) {
	n, err := parseCount(s)
	if err != nil {
		return 0, err
	}
	if n > MaxDuration {
		return 0, errors.New("absurd duration: " + strconv.FormatInt(n, 10) + " s is more than 24 h")
	}
	return n, nil
}

func parseBytes(s string) (int64, error) {
	n, err := parseCount(s)
	if err != nil {
		return 0, err
	}
	if n > MaxBytes {
		return 0, errors.New("absurd byte count: " + strconv.FormatInt(n, 10) + " is more than 1 TiB")
	}
	return n, nil
}
