package ingest

import (
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// Normalizer turns numbers as written into E.164 with libphonenumber's rules, for one default
// country. It caches results (CDR files repeat the same numbers a lot).
type Normalizer struct {
	Country string
	mu      sync.Mutex
	cache   map[string]string
}

// NewNormalizer is a Normalizer for numbers written without +country.
func NewNormalizer(country string) *Normalizer {
	return &Normalizer{Country: strings.ToUpper(country), cache: map[string]string{}}
}

const maxCache = 1 << 18

// Normalize returns E.164 (+13055550123) when the number is a possible number for its country;
// otherwise the digits as written (a leading + kept), so extensions and short codes stay as they
// are; "" when there are no digits at all (anonymous, restricted). sip:/tel: URIs are reduced to
// their user part first.
func (n *Normalizer) Normalize(raw string) string {
	if e164Fast(raw) {
		return raw // already E.164 as libphonenumber would write it: no copy, no cache entry
	}
	n.mu.Lock()
	v, ok := n.cache[raw]
	n.mu.Unlock()
	if ok {
		return v
	}
	v = n.normalize(raw)
	n.mu.Lock()
	if len(n.cache) >= maxCache {
		clear(n.cache)
	}
	n.cache[raw] = v
	n.mu.Unlock()
	return v
}

func (n *Normalizer) normalize(raw string) string {
	s := uriUser(raw)
	digits := Digits(s)
	if digits == "" || digits == "+" {
		return ""
	}
	if len(strings.TrimPrefix(digits, "+")) < 7 { // extensions and short codes
		return digits
	}
	if e164Fast(digits) {
		return digits
	}
	num, err := phonenumbers.Parse(digits, n.Country)
	if err != nil || !phonenumbers.IsPossibleNumber(num) {
		return digits
	}
	return phonenumbers.Format(num, phonenumbers.E164)
}

// uriUser reduces sip:user@host or tel:+1... to the user part.
func uriUser(s string) string {
	s = strings.TrimSpace(s)
	if s != "" && (s[0] == 's' || s[0] == 'S' || s[0] == 't' || s[0] == 'T') { // most numbers: no scheme to look for
		low := strings.ToLower(s)
		for _, p := range []string{"sips:", "sip:", "tel:"} {
			if strings.HasPrefix(low, p) {
				s = s[len(p):]
				break
			}
		}
	}
	if i := strings.IndexAny(s, "@;"); i >= 0 {
		s = s[:i]
	}
	return s
}

// Digits keeps the digits of a number (and a leading +), dropping spaces, dashes, dots and
// brackets.
func Digits(s string) string {
	s = strings.TrimSpace(s)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' || (c == '+' && b.Len() == 0) {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// isPhoneNumber reports whether s is made only of digits, a leading +, and separators.
func isPhoneNumber(s string) bool {
	s = uriUser(s)
	seen := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			seen = true
		case c == '+' && i == 0, c == ' ', c == '-', c == '.', c == '(', c == ')':
		default:
			return false
		}
	}
	return seen
}

// MaxExtension is the longest number treated as an internal extension when a direction has to be
// derived: numbers of up to 6 digits are extensions, longer ones are outside numbers.
const MaxExtension = 6

// isExtension reports a short internal number (or one with no digits, such as a feature code).
func isExtension(s string) bool {
	d := strings.TrimPrefix(Digits(uriUser(s)), "+")
	return len(d) <= MaxExtension
}

// inboundContexts are dialplan context names (lower case, substrings) that mean a call came in
// from a carrier.
var inboundContexts = []string{"from-trunk", "from-pstn", "from-external", "from-did", "from-carrier", "from-provider", "inbound", "incoming", "public"}

// DeriveDirection applies the documented rule for formats that do not say a call's direction:
//  1. a dialplan context naming an incoming route (from-trunk, from-pstn, public, inbound, …) → inbound;
//  2. both numbers extensions (≤ 6 digits) → internal ("" : not billed);
//  3. an outside caller to an extension → inbound;
//  4. anything else (extension to outside number, outside to outside as in forwarding) → outbound.
func DeriveDirection(context, origin, destination string) string {
	ctx := strings.ToLower(context)
	for _, c := range inboundContexts {
		if strings.Contains(ctx, c) {
			return "inbound"
		}
	}
	oExt, dExt := isExtension(origin), isExtension(destination)
	switch {
	case oExt && dExt:
		return ""
	case !oExt && dExt:
		return "inbound"
	}
	return "outbound"
}
