package ingest

import (
	"regexp"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// The E.164 fast path. Most numbers in CDRs are already written as + and the full international
// number; running them through phonenumbers.Parse (a dozen regular expressions per number) cost
// most of ingest's CPU. For such a number, Parse + IsPossibleNumber + Format(E164) returns the
// number unchanged, with one exception: libphonenumber strips a national prefix written after the
// country code (+44 0 20..., +1 1 305...) or applies the country's national prefix transform rule,
// and it does either only when the country's "national prefix for parsing" matches at the start
// of the national number. e164Fast recognises the numbers where that pattern does not match (so
// that cannot happen), so Normalize may return them as they are; everything else takes the full
// libphonenumber path. TestE164FastMatchesLibphonenumber checks
// the equivalence over every country calling code, every leading two digits and every length.

// ccRule is what the fast path needs to know of one country calling code.
type ccRule struct {
	known    bool     // libphonenumber maps the code to a region (Parse takes it as the calling code)
	valid    bool     // the main region's metadata was found
	slow     bool     // its national prefix for parsing does not compile: always take the full path
	prefixes []string // its national prefix for parsing, when it is literal digits or an alternation of them
	// prefixRE is its national prefix for parsing when it is any other pattern, anchored at the
	// start exactly as libphonenumber anchors it (maybeStripNationalPrefixAndCarrierCode): when it
	// does not match, libphonenumber neither strips nor transforms anything.
	prefixRE *regexp.Regexp
}

var (
	ccRulesOnce sync.Once
	ccRules     [1000]ccRule
)

// literalAlternatives is a national prefix pattern made only of digits and |: 0, 8, 0|180020.
var literalAlternatives = regexp.MustCompile(`^[0-9]+(\|[0-9]+)*$`)

func loadCCRules() {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil || coll == nil {
		return // no rule: every number takes the full path
	}
	for cc := range ccRules {
		ccRules[cc].known = cc > 0 && len(phonenumbers.GetRegionCodesForCountryCode(cc)) > 0
	}
	for _, md := range coll.GetMetadata() {
		cc := int(md.GetCountryCode())
		if cc <= 0 || cc >= len(ccRules) {
			continue
		}
		// The metadata Parse uses for a number with a country code: that of the code's main
		// region (or of the non-geographic entity "001").
		if md.GetId() != phonenumbers.GetRegionCodeForCountryCode(cc) {
			continue
		}
		r := ccRule{known: ccRules[cc].known, valid: true}
		switch p := md.GetNationalPrefixForParsing(); {
		case p == "":
		case literalAlternatives.MatchString(p):
			r.prefixes = strings.Split(p, "|")
		default:
			re, err := regexp.Compile("^(?:" + p + ")")
			if err != nil {
				r.slow = true
			} else {
				r.prefixRE = re
			}
		}
		ccRules[cc] = r
	}
	// A calling code shared by several regions keeps the rule of its main region only; a code
	// listed for the main region but missing above is left invalid (full path).
}

// e164Fast reports whether s is "+" and 8 to 15 digits with a known country calling code whose
// national number cannot lose a national prefix, i.e. whether libphonenumber would return s as
// its own E.164 form.
func e164Fast(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	ccRulesOnce.Do(loadCCRules)
	// libphonenumber takes the shortest prefix (1 to 3 digits) that is a known calling code.
	cc := 0
	for i := 1; i <= 3; i++ {
		cc = cc*10 + int(s[i]-'0')
		if cc == 0 {
			return false // +0...: no calling code starts with 0
		}
		r := ccRules[cc]
		if !r.known {
			continue
		}
		if !r.valid || r.slow {
			return false
		}
		for _, p := range r.prefixes {
			if strings.HasPrefix(s[i+1:], p) {
				return false
			}
		}
		if r.prefixRE != nil && r.prefixRE.MatchString(s[i+1:]) {
			return false
		}
		return true
	}
	return false
}
