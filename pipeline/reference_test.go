package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testTaxRates = `jurisdiction,tax_code,tax_name,level,tax_class,percent,amount_per_line,base_percent,base_includes,catalog_identifier,effective_from,effective_to
US,USF,Federal USF,federal,voice,38.1,,64.9,,TAX-USF,2025-10-01,
US-FL,E911,FL 911,state,voice,,0.40,,,TAX-FL-911,2025-01-01,
`

// referenceDir copies the demo reference files into a temp folder, with replacements applied
// (file name → content), and returns the folder.
func referenceDir(t *testing.T, replace map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range ReferenceFiles {
		b, err := os.ReadFile(filepath.Join("..", "fixtures", "demo", "reference", name))
		if name == "tax_rates.csv" {
			b, err = []byte(testTaxRates), nil
		}
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := replace[name]; ok {
			b = []byte(r)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadReferenceDemo(t *testing.T) {
	r := newTestRun(t)
	ctx := context.Background()
	if err := LoadReference(ctx, r.DB, referenceDir(t, nil), "USD"); err != nil {
		t.Fatal(err)
	}
	checks := map[string]string{
		"SELECT count(*) FROM ref_customers":            "5",
		"SELECT count(*) FROM ref_products":             "13",
		"SELECT count(*) FROM ref_plans":                "2",
		"SELECT count(DISTINCT rate_id) FROM ref_rates": "13",
		"SELECT count(*) FROM ref_time_bands":           "17",
		"SELECT tier_end FROM ref_rates WHERE plan = 'STANDARD' AND prefix = '44' AND tier_start = 0":     "60",
		"SELECT connect_fee FROM ref_rates WHERE plan = 'STANDARD' AND prefix = '44' AND tier_start = 60": "0.400000000",
		"SELECT list_sort(tax_exempt)::VARCHAR FROM ref_customers WHERE line = 5":                         "[USF]",
		"SELECT len(tax_exempt) FROM ref_customers WHERE account = '1001'":                                "0",
		"SELECT coalesce(agreement_id, 0) FROM ref_customers WHERE account = '1003'":                      "9003",
		"SELECT base_percent FROM ref_tax_rates WHERE tax_code = 'E911'":                                  "100.0000",
		"SELECT min_charge FROM ref_rates WHERE prefix = '881'":                                           "2.500000000",
		"SELECT count(*) FROM ref_time_bands WHERE band = 'offpeak' AND isodow = 6":                       "1",
		"SELECT count(*) FROM ref_rates WHERE plan = 'STANDARD' AND prefix = '1' AND time_band = 'peak'":  "2",
	}
	for q, want := range checks {
		var got string
		if err := r.DB.QueryRowContext(ctx, "SELECT CAST(("+q+") AS VARCHAR)").Scan(&got); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if got != want {
			t.Errorf("%s = %s, want %s", q, got, want)
		}
	}
}

func TestLoadReferenceErrors(t *testing.T) {
	demo := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "fixtures", "demo", "reference", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	header := func(name string) string { return strings.SplitN(demo(name), "\n", 2)[0] + "\n" }
	cases := []struct {
		name, file, content, want string
	}{
		{"unknown rounding", "plans.csv", header("plans.csv") + "X,nearest,2,USD\n", "plans.csv:2:3: rounding_method: \"nearest\" is not one of up, half_up, half_even, down"},
		{"decimals too high", "plans.csv", header("plans.csv") + "X,up,7,USD\n", "plans.csv:2:6: rounding_decimals: 7 is above 6"},
		{"other currency", "plans.csv", header("plans.csv") + "STANDARD,up,4,USD\nPREMIUM,up,2,EUR\n", "plans.csv:3:14: currency: EUR differs from billing.currency USD"},
		{"missing column", "products.csv", "product,description,taxable,tax_class\n", "products.csv:1: missing column \"catalog_identifier\""},
		{"duplicate product", "products.csv", header("products.csv") + "A,SKU-A,A,true,voice,1\nA,SKU-B,B,true,voice,1\n", "products.csv:3:1: product: product \"A\" is also on line 2"},
		{"bad boolean", "products.csv", header("products.csv") + "A,SKU-A,A,maybe,voice,1\n", "products.csv:2:11: taxable: \"maybe\" is not true or false"},
		{"overlapping bands", "time_bands.csv", header("time_bands.csv") + "peak,Mon-Fri,08:00,18:00\noffpeak,Fri,17:00,24:00\n", "time_bands.csv:3:13: start: overlaps the band on line 2"},
		{"bad day", "time_bands.csv", header("time_bands.csv") + "peak,Mon-Fry,08:00,18:00\n", "time_bands.csv:2:6: days: \"Mon-Fry\" is not a day"},
		{"bad time", "time_bands.csv", header("time_bands.csv") + "peak,Mon,8h,18:00\n", "time_bands.csv:2:10: start: \"8h\" is not a time"},
		{"unknown plan", "customers.csv", header("customers.csv") + "1001,250,ACME,Acme,9001,GOLD,US-FL,1,,,2025-01-01,\n", "customers.csv:2:25: rate_plan: plan \"GOLD\" is not in plans.csv"},
		{"customer overlap", "customers.csv", header("customers.csv") + "1001,250,ACME,Acme,,STANDARD,US-FL,1,,,2025-01-01,\n1001,250,ACME,Acme,,PREMIUM,US-FL,1,,,2025-06-01,\n", "customers.csv:3:39: effective_from: overlaps the row on line 2"},
		{"bad jurisdiction", "customers.csv", header("customers.csv") + "1001,250,ACME,Acme,,STANDARD,Florida,1,,,2025-01-01,\n", "customers.csv:2:30: jurisdiction: \"Florida\" is not a code"},
		{"bad date", "customers.csv", header("customers.csv") + "1001,250,ACME,Acme,,STANDARD,US-FL,1,,,2025-13-01,\n", "customers.csv:2:40: effective_from: \"2025-13-01\" is not a date"},
		{"rate with float noise", "rates.csv", header("rates.csv") + "STANDARD,X,voice,outbound,1,,0,1e-2,60,6,0,,,2025-01-01,\n", "rates.csv:2:32: rate: \"1e-2\" is not a plain decimal"},
		{"zero increment", "rates.csv", header("rates.csv") + "STANDARD,X,voice,outbound,1,,0,0.01,60,0,0,,,2025-01-01,\n", "rates.csv:2:40: increment: 0 is below 1"},
		{"tiers not from 0", "rates.csv", header("rates.csv") + "STANDARD,X,voice,outbound,1,,30,0.01,60,6,0,,,2025-01-01,\n", "rates.csv:2:30: tier_start: the rate's tiers must start at 0"},
		{"overlapping rates", "rates.csv", header("rates.csv") + "STANDARD,X,voice,outbound,1,,0,0.01,60,6,0,,,2025-01-01,\nSTANDARD,X,voice,outbound,1,,0,0.02,60,6,0,,,2025-06-01,\n", "rates.csv:3:46: effective_from: overlaps the row on line 2"},
		{"min above max", "rates.csv", header("rates.csv") + "STANDARD,X,voice,outbound,1,,0,0.01,60,6,0,2,1,2025-01-01,\n", "rates.csv:2:44: min_charge: 2 is above max_charge 1"},
		{"unknown band", "rates.csv", header("rates.csv") + "STANDARD,X,voice,outbound,1,night,0,0.01,60,6,0,,,2025-01-01,\n", "rates.csv:2:29: time_band: band \"night\" is not in time_bands.csv"},
		{"negative tax", "tax_rates.csv", strings.SplitN(testTaxRates, "\n", 2)[0] + "\nUS,USF,USF,federal,voice,-1,,,,TAX-USF,2025-01-01,\n", "tax_rates.csv:2:26: percent: -1 is negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newTestRun(t)
			err := LoadReference(context.Background(), r.DB, referenceDir(t, map[string]string{c.file: c.content}), "USD")
			if err == nil {
				t.Fatalf("no error, want %s", c.want)
			}
			if !IsInputError(err) {
				t.Errorf("error %v is not an input error", err)
			}
			if got := err.Error(); !strings.Contains(got, c.want) {
				t.Errorf("error\n  %s\nwant it to contain\n  %s", got, c.want)
			}
		})
	}
}
