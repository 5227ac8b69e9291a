package pipeline

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"
)

// InvoiceBookFile is the invoice number book's file name in paths.staging.
const InvoiceBookFile = "invoice_numbers.csv"

// invoiceNumberDigits is the width of the counter in an invoice number (more digits are used when
// the counter outgrows it).
const invoiceNumberDigits = 6

// maxInvoiceNumberLen is ConnectWise's limit on invoiceNumber.
const maxInvoiceNumberLen = 15

var bookHeader = []string{"invoice_number", "counter", "company_id", "company_identifier", "period", "run_id"}

// InvoiceBook is the persistent register of the invoice numbers handed out: one row per customer
// and period. A number is never handed out twice: a new invoice takes the highest counter ever
// recorded plus one, and a rerun of a customer and period gets the number it had. The book lives
// in paths.staging (write-once data the runs keep) and is locked while a run holds it.
type InvoiceBook struct {
	path    string
	prefix  string
	lock    *flock.Flock
	entries []BookEntry
	byKey   map[bookKey]int
	max     int64
	dirty   bool
}

// BookEntry is one invoice number and whom it was given to.
type BookEntry struct {
	Number            string
	Counter           int64
	CompanyID         int64
	CompanyIdentifier string
	Period            string
	RunID             string
}

type bookKey struct {
	companyID int64
	period    string
}

// OpenInvoiceBook locks and reads the book in dir (creating nothing until Save). prefix is
// invoices.number_prefix; prefix plus the counter must fit ConnectWise's 15 characters.
func OpenInvoiceBook(dir, prefix string) (*InvoiceBook, error) {
	if len(prefix)+invoiceNumberDigits > maxInvoiceNumberLen {
		return nil, Inputf("", 0, 0, "invoices.number_prefix %q: at most %d characters (invoice numbers are at most %d)",
			prefix, maxInvoiceNumberLen-invoiceNumberDigits, maxInvoiceNumberLen)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("invoice book: %w", err)
	}
	path := filepath.Join(dir, InvoiceBookFile)
	b := &InvoiceBook{path: path, prefix: prefix, lock: flock.New(path + ".lock"), byKey: map[bookKey]int{}}
	if err := b.lock.Lock(); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("read invoice book: %w", err)
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("read invoice book %s: %w", path, err)
	}
	for i, row := range rows {
		if i == 0 {
			continue
		}
		bad := func(col int, what string) error {
			b.Close()
			return fmt.Errorf("invoice book %s:%d:%d: %s (the book must not be edited by hand)", path, i+1, col, what)
		}
		if len(row) != len(bookHeader) {
			return nil, bad(1, fmt.Sprintf("%d columns, want %d", len(row), len(bookHeader)))
		}
		e := BookEntry{Number: row[0], CompanyIdentifier: row[3], Period: row[4], RunID: row[5]}
		if e.Counter, err = strconv.ParseInt(row[1], 10, 64); err != nil || e.Counter <= 0 {
			return nil, bad(2, fmt.Sprintf("counter %q", row[1]))
		}
		if e.CompanyID, err = strconv.ParseInt(row[2], 10, 64); err != nil {
			return nil, bad(3, fmt.Sprintf("company_id %q", row[2]))
		}
		k := bookKey{e.CompanyID, e.Period}
		if _, dup := b.byKey[k]; dup {
			return nil, bad(3, fmt.Sprintf("company %d has two numbers for %s", e.CompanyID, e.Period))
		}
		b.byKey[k] = len(b.entries)
		b.entries = append(b.entries, e)
		b.max = max(b.max, e.Counter)
	}
	return b, nil
}

// Number returns the invoice number of a customer for a period: the one it already has, else the
// next one, recorded in the book (call Save to keep it).
func (b *InvoiceBook) Number(companyID int64, companyIdentifier, period, runID string) (string, error) {
	if i, ok := b.byKey[bookKey{companyID, period}]; ok {
		return b.entries[i].Number, nil
	}
	next := b.max + 1
	num := fmt.Sprintf("%s%0*d", b.prefix, invoiceNumberDigits, next)
	if len(num) > maxInvoiceNumberLen {
		return "", fmt.Errorf("invoice number %s is longer than %d characters: choose a shorter invoices.number_prefix", num, maxInvoiceNumberLen)
	}
	b.max = next
	b.byKey[bookKey{companyID, period}] = len(b.entries)
	b.entries = append(b.entries, BookEntry{num, next, companyID, companyIdentifier, period, runID})
	b.dirty = true
	return num, nil
}

// Save writes the book atomically when numbers were added.
func (b *InvoiceBook) Save() error {
	if !b.dirty {
		return nil
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(bookHeader)
	for _, e := range b.entries {
		w.Write([]string{e.Number, strconv.FormatInt(e.Counter, 10), strconv.FormatInt(e.CompanyID, 10),
			e.CompanyIdentifier, e.Period, e.RunID})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	if err := renameio.WriteFile(b.path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write invoice book: %w", err)
	}
	b.dirty = false
	return nil
}

// Close releases the lock.
func (b *InvoiceBook) Close() error { return b.lock.Unlock() }
