package ingest

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// slowNormalize is Normalize without the fast path (the libphonenumber path alone).
func slowNormalize(country, digits string) string {
	num, err := phonenumbers.Parse(digits, country)
	if err != nil || !phonenumbers.IsPossibleNumber(num) {
		return digits
	}
	return phonenumbers.Format(num, phonenumbers.E164)
}

func TestE164Fast(t *testing.T) {
	cases := []struct {
		in   string
		fast bool
	}{
		{"+13055550123", true},       // NANP, written as E.164
		{"+442079460123", true},      // UK
		{"+4402079460123", false},    // UK with its trunk 0: libphonenumber strips it
		{"+113055550123", false},     // NANP with its national prefix 1
		{"+390612345678", true},      // Italy: leading zero kept by E.164
		{"+5491123456789", false},    // Argentina: its national prefix pattern may match empty
		{"+81312345678", true},       // Japan: its national prefix pattern does not match 3...
		{"+81012345678", false},      // Japan with its trunk 0: the pattern matches, libphonenumber strips it
		{"+5511987654321", true},     // Brazil: its national prefix pattern does not match 11...
		{"+80012345678", true},       // non-geographic (freephone)
		{"+0123456789", false},       // no calling code starts with 0
		{"+2812345678", false},       // 28x: not a calling code
		{"13055550123", false},       // no +
		{"+1305555012", true},        // 10 digits
		{"+1305", false},             // too short
		{"+1234567890123456", false}, // 16 digits: longer than E.164
		{"+1305555O123", false},      // a letter
		{"+1 305 555 0123", false},
	}
	for _, c := range cases {
		if got := e164Fast(c.in); got != c.fast {
			t.Errorf("e164Fast(%q) = %v, want %v", c.in, got, c.fast)
		}
	}
}

// TestE164FastMatchesLibphonenumber: whenever the fast path takes a number, libphonenumber
// returns it unchanged. Every calling code libphonenumber knows, every first two digits of the
// national number, lengths 8, 11 and 15 digits (default country US: the metadata used is the calling code's own).
func TestE164FastMatchesLibphonenumber(t *testing.T) {
	taken, checked := 0, 0
	fill := "5550123456789012"
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		ccs := strconv.Itoa(cc)
		for first := 0; first < 100; first++ {
			for _, total := range []int{8, 11, 15} {
				nsnLen := total - len(ccs)
				if nsnLen < 2 {
					continue
				}
				nsn := (strconv.Itoa(first/10) + strconv.Itoa(first%10) + fill)[:nsnLen]
				in := "+" + ccs + nsn
				if !e164Fast(in) {
					continue
				}
				taken++
				for _, country := range []string{"US"} {
					checked++
					if got := slowNormalize(country, in); got != in {
						t.Errorf("country %s: fast path keeps %q, libphonenumber gives %q", country, in, got)
					}
				}
			}
		}
	}
	if taken < 50000 {
		t.Errorf("fast path took only %d numbers", taken)
	}
	t.Logf("fast path took %d numbers, %d comparisons", taken, checked)
}

// TestNormalizeSameAsSlow: Normalize (with the fast path and cache) against libphonenumber alone
// on numbers as CDRs write them.
func TestNormalizeSameAsSlow(t *testing.T) {
	n := NewNormalizer("US")
	for _, in := range []string{"+13055550123", "+4402079460123", "+113055550123", "+390612345678", "+5491123456789",
		"+61 2 9876 5432", "+6129876543", "+0613055550123", "+80012345678", "+3530861234567", "+79161234567", "+89161234567"} {
		want := slowNormalize("US", Digits(in))
		if got := n.Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, libphonenumber %q", in, got, want)
		}
	}
}

// TestE164FastRandomDigits: as TestE164FastMatchesLibphonenumber, on random national numbers of
// every length for every calling code, so that national prefix patterns that look further than the
// first two digits are exercised too.
func TestE164FastRandomDigits(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	taken, patterns := 0, 0
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		ccs := strconv.Itoa(cc)
		ccRulesOnce.Do(loadCCRules)
		n := 200
		if ccRules[cc].prefixRE != nil {
			n = 2000 // the codes whose national prefix is a pattern
		}
		for range n {
			nsnLen := 8 - len(ccs) + rng.IntN(8)
			b := []byte("+" + ccs)
			for range nsnLen {
				b = append(b, byte('0'+rng.IntN(10)))
			}
			in := string(b)
			if !e164Fast(in) {
				continue
			}
			taken++
			if ccRules[cc].prefixRE != nil {
				patterns++
			}
			if got := slowNormalize("US", in); got != in {
				t.Errorf("fast path keeps %q, libphonenumber gives %q", in, got)
			}
		}
	}
	if patterns < 10000 {
		t.Errorf("fast path took only %d numbers of codes with a national prefix pattern", patterns)
	}
	t.Logf("fast path took %d numbers, %d of codes with a national prefix pattern", taken, patterns)
}
