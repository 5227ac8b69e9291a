package pipeline

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateTaxRates(t *testing.T) {
	// Columns of a row such as "US,A,Tax A,federal,voice,1,,,,TAX-A,2025-01-01,": tax_class at 20,
	// percent at 26, base_includes at 30 (when percent is one character and the next two are empty),
	// effective_from at 37.
	const good = "US,A,Tax A,federal,voice,1,,,,TAX-A,2025-01-01,\n"
	cases := []struct {
		name      string
		rows      string
		line, col int
		msg       string // substring; "" = valid
	}{
		{"valid: same code in two jurisdictions, adjacent ranges, tax on tax", good +
			"US-FL,B,Tax B,state,voice,,0.40,,,TAX-B,2025-01-01,2025-06-30\n" +
			"US-FL,B,Tax B,state,voice,,0.45,,,TAX-B,2025-07-01,\n" +
			"US-TX,B,Tax B,state,all,,0.50,,,TAX-B,2025-01-01,\n" +
			"US-TX,C,Tax C,local,voice,2,,,A;B,TAX-C,2025-01-01,\n", 0, 0, ""},
		{"both percent and amount_per_line", good + "US,B,Tax B,federal,voice,1,0.40,,,TAX-B,2025-01-01,\n",
			3, 26, "percent: both percent and amount_per_line are set"},
		{"neither percent nor amount_per_line", good + "US,B,Tax B,federal,voice,,,,,TAX-B,2025-01-01,\n",
			3, 26, "percent: neither percent nor amount_per_line is set"},
		{"negative percent", good + "US,B,Tax B,federal,voice,-1,,,,TAX-B,2025-01-01,\n",
			3, 26, "percent: -1 is negative"},
		{"unknown tax class", good + "US,B,Tax B,federal,vioce,1,,,,TAX-B,2025-01-01,\n",
			3, 20, `tax_class: "vioce" is not a tax_class of products.csv`},
		{"base_includes names an unknown code", good + "US,B,Tax B,federal,voice,1,,,NOPE,TAX-B,2025-01-01,\n",
			3, 30, `base_includes: "NOPE" is not a tax_code`},
		{"base_includes on a per-line fee", good + "US,B,Tax B,federal,voice,,0.40,,A,TAX-B,2025-01-01,\n",
			3, 33, "base_includes: only a percentage tax"},
		{"a tax including itself", "US,A,Tax A,federal,voice,1,,,A,TAX-A,2025-01-01,\n",
			2, 30, "base_includes: A includes itself"},
		{"cycle through two codes", "US-FL,B,Tax B,state,voice,1,,,C,TAX-B,2025-01-01,\n" + good +
			"US,C,Tax C,federal,voice,1,,,B,TAX-C,2025-01-01,\n",
			2, 31, "base_includes: tax on tax forms a cycle: B → C → B"}, // "US-FL," and "state," shift it by one
		{"overlapping ranges", "US,A,Tax A,federal,voice,1,,,,TAX-A,2025-01-01,2025-06-30\n" +
			"US,A,Tax A,federal,voice,2,,,,TAX-A,2025-06-30,\n",
			3, 37, "effective_from: US A from 2025-06-30 overlaps line 2 (in effect 2025-01-01 to 2025-06-30)"},
		{"a later row inside an open-ended one", good + "US,A,Tax A,federal,voice,2,,,,TAX-A,2025-07-01,\n",
			3, 37, "overlaps line 2 (in effect 2025-01-01 to open end)"},
		{"first problem by line, the others counted", good + "US,B,Tax B,federal,vioce,1,,,,TAX-B,2025-01-01,\n" +
			"US,C,Tax C,federal,voice,,,,,TAX-C,2025-01-01,\n",
			3, 20, "(and 1 more problems in the file)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newTestRun(t)
			taxWorld(t, r)
			loadTaxRates(t, r, c.rows)
			err := ValidateTaxRates(context.Background(), r.DB)
			if c.msg == "" {
				if err != nil {
					t.Fatalf("valid table refused: %v", err)
				}
				return
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want an InputError", err)
			}
			if filepath.Base(ie.File) != "tax_rates.csv" || ie.Line != c.line || ie.Column != c.col {
				t.Errorf("at %s:%d:%d, want tax_rates.csv:%d:%d (%v)", filepath.Base(ie.File), ie.Line, ie.Column, c.line, c.col, err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err = %v, want it to contain %q", err, c.msg)
			}
		})
	}
}

// TestTaxStageRefusesBadRates: the stage checks the table before computing anything.
func TestTaxStageRefusesBadRates(t *testing.T) {
	r := newTestRun(t)
	taxWorld(t, r)
	loadTaxRates(t, r, "US,A,Tax A,federal,voice,1,,,B,TAX-A,2025-01-01,\nUS,B,Tax B,federal,voice,1,,,A,TAX-B,2025-01-01,\n")
	err := (TaxStage{}).Run(context.Background(), r)
	if !IsInputError(err) || !strings.Contains(err.Error(), "cycle: A → B → A") {
		t.Fatalf("err = %v, want the cycle as an InputError", err)
	}
}
