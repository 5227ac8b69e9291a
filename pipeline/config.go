package pipeline

import (
	"fmt"
	"path/filepath"
	"time"

	"cdrbill/pipeline/ingest"
)

// Config is cdrbill.toml, decoded. Paths are absolute once Resolve has run.
type Config struct {
	Paths    Paths           `toml:"paths"`
	Billing  Billing         `toml:"billing"`
	Schedule Schedule        `toml:"schedule"`
	Invoices Invoices        `toml:"invoices"`
	DuckDB   DuckDBSettings  `toml:"duckdb"`
	Sources  []SourceConfig  `toml:"source"`
	Monitor  MonitorSettings `toml:"monitoring"`
	Tickets  Tickets         `toml:"tickets"`
	Periods  Periods         `toml:"periods"` // ops (issue #9): closed periods

	// File is the config file's absolute path; Dir its folder.
	File string `toml:"-"`
	Dir  string `toml:"-"`
	// Location is Billing.Timezone, loaded.
	Location *time.Location `toml:"-"`
}

type Paths struct {
	Inbox     string `toml:"inbox"`
	Staging   string `toml:"staging"`
	Reference string `toml:"reference"`
	Posted    string `toml:"posted"`
	Output    string `toml:"output"`
}

type Billing struct {
	Timezone                 string  `toml:"timezone"`
	Currency                 string  `toml:"currency"`
	InvoiceMode              string  `toml:"invoice_mode"`
	FallbackSKU              string  `toml:"fallback_sku"`
	VarianceThresholdPercent float64 `toml:"variance_threshold_percent"`
	TaxRounding              string  `toml:"tax_rounding"`
	// DescriptionTemplate is the summary line's invoice description; placeholders are listed in
	// the README (Invoice lines).
	DescriptionTemplate string `toml:"description_template"`
}

type Schedule struct {
	Cron string `toml:"cron"`
}

// Invoices configures invoice numbering and accounting terms.
type Invoices struct {
	NumberPrefix string `toml:"number_prefix"`
	TermsDays    int    `toml:"terms_days"`
	// OnError is what happens to a customer with unrated CDRs: "hold" keeps it off every export
	// until fixed, "flag" exports it and lists it for review.
	OnError string `toml:"on_error"`
	// DetailTemplate is the description of a detail-mode line (one call); empty uses
	// billing.description_template.
	DetailTemplate string `toml:"detail_template"`
}

// Tickets fills the ConnectWise service tickets opened for invoices that cannot go out clean.
type Tickets struct {
	Board    string `toml:"board"`
	Priority string `toml:"priority"`
}

// DuckDBSettings bounds the engine's resources; empty values take the defaults in Defaults.
type DuckDBSettings struct {
	MemoryLimit   string `toml:"memory_limit"`
	Threads       int    `toml:"threads"`
	TempDirectory string `toml:"temp_directory"`
	// GoMemoryLimit is the Go runtime's soft memory limit (ApplyLimits); "0" or "off" for none.
	// The process's budget is memory_limit + go_memory_limit + about 150 MiB (see limits.go).
	GoMemoryLimit string `toml:"go_memory_limit"`
}

type MonitorSettings struct {
	Cutover string `toml:"cutover"`
}

type SourceConfig struct {
	Name     string `toml:"name"`
	Format   string `toml:"format"`
	Path     string `toml:"path"`
	Timezone string `toml:"timezone"`
	Country  string `toml:"country"`
	// Account is the billing account for formats whose records carry none (cucm).
	Account string `toml:"account"`

	Location *time.Location `toml:"-"`
}

// Defaults fills what the file left out.
func (c *Config) Defaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Paths.Inbox, "inbox")
	def(&c.Paths.Staging, "staging")
	def(&c.Paths.Reference, "reference")
	def(&c.Paths.Posted, "posted")
	def(&c.Paths.Output, "output")
	def(&c.Billing.Timezone, "UTC")
	def(&c.Billing.Currency, "USD")
	def(&c.Billing.InvoiceMode, "summary")
	def(&c.Billing.TaxRounding, "invoice")
	def(&c.Billing.DescriptionTemplate, "{description}, {from} to {to}, {quantity} {unit}")
	def(&c.Schedule.Cron, "0 2 * * *")
	def(&c.Invoices.NumberPrefix, "USG")
	def(&c.Invoices.OnError, "hold")
	if c.Invoices.TermsDays == 0 {
		c.Invoices.TermsDays = 30
	}
	if c.Billing.VarianceThresholdPercent == 0 {
		c.Billing.VarianceThresholdPercent = 1.0
	}
	def(&c.DuckDB.MemoryLimit, "2GB")
	def(&c.DuckDB.GoMemoryLimit, DefaultGoMemoryLimit)
	if c.DuckDB.Threads == 0 {
		c.DuckDB.Threads = 2
	}
	for i := range c.Sources {
		def(&c.Sources[i].Country, "US")
		def(&c.Sources[i].Timezone, c.Billing.Timezone)
	}
}

// Validate checks values and resolves paths and zones. Errors name the key.
func (c *Config) Validate() error {
	var err error
	if c.Location, err = time.LoadLocation(c.Billing.Timezone); err != nil {
		return fmt.Errorf("billing.timezone %q: %w", c.Billing.Timezone, err)
	}
	if err := oneOf("billing.invoice_mode", c.Billing.InvoiceMode, "summary", "detail"); err != nil {
		return err
	}
	if err := oneOf("billing.tax_rounding", c.Billing.TaxRounding, "invoice", "line"); err != nil {
		return err
	}
	if err := oneOf("invoices.on_error", c.Invoices.OnError, "hold", "flag"); err != nil {
		return err
	}
	if err := CheckDescriptionTemplate(c.Billing.DescriptionTemplate); err != nil {
		return err
	}
	if c.Invoices.DetailTemplate != "" {
		if err := CheckDescriptionTemplate(c.Invoices.DetailTemplate); err != nil {
			return fmt.Errorf("invoices.detail_template: %w", err)
		}
	}
	if c.Billing.FallbackSKU == "" {
		return fmt.Errorf("billing.fallback_sku: must be set (the catalog identifier for unmapped products)")
	}
	if c.Billing.VarianceThresholdPercent < 0 {
		return fmt.Errorf("billing.variance_threshold_percent: must not be negative")
	}
	if _, err := ParseByteSize(c.DuckDB.GoMemoryLimit); err != nil {
		return fmt.Errorf("duckdb.go_memory_limit: %w", err)
	}
	if c.DuckDB.Threads < 0 {
		return fmt.Errorf("duckdb.threads: must not be negative")
	}
	if c.Invoices.TermsDays < 0 {
		return fmt.Errorf("invoices.terms_days: must not be negative")
	}
	if c.Periods.ClosedThrough != "" {
		if _, err := time.Parse("2006-01", c.Periods.ClosedThrough); err != nil {
			return fmt.Errorf("periods.closed_through %q: want YYYY-MM", c.Periods.ClosedThrough)
		}
	}
	if c.Monitor.Cutover != "" {
		if _, err := time.Parse("2006-01-02", c.Monitor.Cutover); err != nil {
			return fmt.Errorf("monitoring.cutover %q: want YYYY-MM-DD", c.Monitor.Cutover)
		}
	}
	if len(c.Sources) == 0 {
		return fmt.Errorf("source: at least one [[source]] is required")
	}
	seen := map[string]bool{}
	for i := range c.Sources {
		s := &c.Sources[i]
		key := fmt.Sprintf("source[%d]", i)
		if s.Name == "" {
			return fmt.Errorf("%s.name: must be set", key)
		}
		if seen[s.Name] {
			return fmt.Errorf("%s.name %q: used twice", key, s.Name)
		}
		seen[s.Name] = true
		if err := oneOf(key+".format", s.Format, ingest.Formats()...); err != nil {
			return err
		}
		if s.Location, err = time.LoadLocation(s.Timezone); err != nil {
			return fmt.Errorf("%s.timezone %q: %w", key, s.Timezone, err)
		}
		if s.Format == "cucm" && s.Account == "" {
			return fmt.Errorf("%s.account: must be set for format cucm (its records carry no billing account)", key)
		}
		if s.Path == "" {
			s.Path = filepath.Join(c.Paths.Inbox, s.Name)
		}
		s.Path = c.abs(s.Path)
	}
	for _, p := range []*string{&c.Paths.Inbox, &c.Paths.Staging, &c.Paths.Reference, &c.Paths.Posted, &c.Paths.Output} {
		*p = c.abs(*p)
	}
	if c.DuckDB.TempDirectory == "" {
		c.DuckDB.TempDirectory = filepath.Join(c.Paths.Staging, "tmp")
	}
	c.DuckDB.TempDirectory = c.abs(c.DuckDB.TempDirectory)
	return nil
}

func (c *Config) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(c.Dir, p)
}

func oneOf(key, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s %q: must be one of %v", key, v, allowed)
}

// --- ops (issue #9): closed periods ---

// Periods closes billing periods: a period up to and including ClosedThrough (YYYY-MM) is never
// rewritten; usage for it that arrives later is listed for review (see ClosedPeriodStage).
type Periods struct {
	ClosedThrough string `toml:"closed_through"`
}

// Closed reports whether a period (YYYY-MM) is closed.
func (c *Config) Closed(month string) bool {
	return c.Periods.ClosedThrough != "" && month <= c.Periods.ClosedThrough
}
