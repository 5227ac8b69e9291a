package pipeline

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/shopspring/decimal"
)

// Posted invoices are what ConnectWise actually invoiced, exported by an admin for
// reconciliation (CONTRACT.md, "Posted invoices"). Two forms are read:
//
//   - CSV whose columns are ConnectWise invoice field paths: invoiceNumber, company/identifier,
//     date, subtotal, salesTax, total; optional type, status/name, company/id, company/name.
//     A CSV whose columns include catalogItem/identifier and extPrice is an invoice-line file
//     instead (invoiceNumber, catalogItem/identifier, extPrice; optional company/identifier,
//     company/id, date, type) — the shape of connectwise_invoices.csv.
//   - The JSON array returned by ConnectWise's GET finance/invoices.
//
// Header variants that are unambiguous are accepted: case, spaces, '_', '.', '-' and '/' are
// ignored ("Company Identifier", "company_identifier" and "company/identifier" are the same
// column). Columns that are not fields we read are ignored, like every reference CSV's extra
// columns. "Company ID" written with a space is refused: ConnectWise's screens label the
// identifier that way while the field path company/id is the record number.

// PostedInvoice is one posted invoice or credit memo, amounts as written in the file.
type PostedInvoice struct {
	File              string
	Line              int
	InvoiceNumber     string
	Type              string
	CompanyID         *int64
	CompanyIdentifier string
	CompanyName       string
	Date              time.Time // calendar date as written (no zone conversion)
	Subtotal          decimal.Decimal
	SalesTax          decimal.Decimal
	Total             decimal.Decimal
	StatusName        string
	IsClosed          *bool
}

// PostedLine is one line of a posted invoice (from an invoice-line CSV).
type PostedLine struct {
	File              string
	Line              int
	InvoiceNumber     string
	Type              string
	CompanyID         *int64
	CompanyIdentifier string
	Date              *time.Time
	CatalogIdentifier string
	ExtPrice          decimal.Decimal
}

// Posted is everything read from paths.posted.
type Posted struct {
	Files    []string
	Invoices []PostedInvoice
	Lines    []PostedLine
}

// CreditMemoType is the ConnectWise invoice type whose amounts count negative.
const CreditMemoType = "CreditMemo"

// ReadPosted reads a posted-invoice file, or every *.csv and *.json file directly inside a folder
// (sorted by name). A path that does not exist yields nothing (no posted data yet).
func ReadPosted(path string) (*Posted, error) {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Posted{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("posted invoices: %w", err)
	}
	files := []string{path}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("posted invoices: %w", err)
		}
		files = files[:0]
		for _, e := range entries {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if e.Type().IsRegular() && (ext == ".csv" || ext == ".json") && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
	}
	p := &Posted{}
	for _, f := range files {
		if err := p.readFile(f); err != nil {
			return nil, err
		}
	}
	if err := p.checkDuplicates(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Posted) readFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("posted invoices: %w", err)
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	p.Files = append(p.Files, path)
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if strings.EqualFold(filepath.Ext(path), ".json") || (len(trimmed) > 0 && trimmed[0] == '[') {
		return p.readJSON(path, b)
	}
	return p.readCSV(path, b)
}

// checkDuplicates refuses an invoice number (of one type) posted twice: the same export saved as
// both CSV and JSON, say, would double the posted totals.
func (p *Posted) checkDuplicates() error {
	seen := map[[2]string]*PostedInvoice{}
	for i := range p.Invoices {
		inv := &p.Invoices[i]
		k := [2]string{inv.InvoiceNumber, inv.Type}
		if prev, ok := seen[k]; ok {
			return Inputf(inv.File, inv.Line, 0, "invoice %s (%s) already read from %s:%d",
				inv.InvoiceNumber, typeOrDefault(inv.Type), prev.File, prev.Line)
		}
		seen[k] = inv
	}
	// the lines of one invoice come from one file: the same lines exported twice would double
	lineFile := map[string]*PostedLine{}
	for i := range p.Lines {
		l := &p.Lines[i]
		if prev, ok := lineFile[l.InvoiceNumber]; ok && prev.File != l.File {
			return Inputf(l.File, l.Line, 0, "lines of invoice %s were already read from %s:%d", l.InvoiceNumber, prev.File, prev.Line)
		} else if !ok {
			lineFile[l.InvoiceNumber] = l
		}
	}
	return nil
}

func typeOrDefault(t string) string {
	if t == "" {
		return "no type"
	}
	return t
}

// posted CSV fields, by normalised header.
const (
	fInvoiceNumber = "invoiceNumber"
	fType          = "type"
	fCompanyID     = "company/id"
	fCompanyIdent  = "company/identifier"
	fCompanyName   = "company/name"
	fDate          = "date"
	fSubtotal      = "subtotal"
	fSalesTax      = "salesTax"
	fTotal         = "total"
	fStatusName    = "status/name"
	fCatalogItem   = "catalogItem/identifier"
	fExtPrice      = "extPrice"
)

var headerAliases = map[string]string{
	"invoicenumber":         fInvoiceNumber,
	"type":                  fType,
	"companyid":             fCompanyID,
	"companyidentifier":     fCompanyIdent,
	"companyname":           fCompanyName,
	"date":                  fDate,
	"subtotal":              fSubtotal,
	"salestax":              fSalesTax,
	"total":                 fTotal,
	"statusname":            fStatusName,
	"status":                fStatusName,
	"catalogitemidentifier": fCatalogItem,
	"extprice":              fExtPrice,
}

var headerNoise = strings.NewReplacer(" ", "", "_", "", ".", "", "-", "", "/", "", "\t", "")

// normaliseHeader maps a CSV header cell to the field path it names, or "" for a column we do
// not read. It errors on a header that could mean two fields.
func normaliseHeader(h string) (string, error) {
	h = strings.TrimSpace(h)
	k := strings.ToLower(headerNoise.Replace(h))
	if k == "companyid" && strings.Contains(h, " ") {
		return "", fmt.Errorf("column %q is ambiguous: ConnectWise shows the company identifier as \"Company ID\"; name it company/identifier, or company/id for the record number", h)
	}
	if k == "company" {
		return "", fmt.Errorf("column %q is ambiguous: use company/identifier or company/id", h)
	}
	return headerAliases[k], nil
}

var amountPattern = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?$`)

// parseAmount reads an amount: '.' decimals, no thousands separators, no currency sign, at most
// 2 significant decimals (trailing zeros are fine).
func parseAmount(s string) (decimal.Decimal, error) {
	if !amountPattern.MatchString(s) {
		return decimal.Decimal{}, fmt.Errorf("amount %q: want digits with '.' decimals, no thousands separator or currency sign", s)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("amount %q: %v", s, err)
	}
	if !d.Equal(d.Round(2)) {
		return decimal.Decimal{}, fmt.Errorf("amount %q has more than 2 decimals", s)
	}
	if d.Abs().GreaterThanOrEqual(decimal.New(1, 16)) {
		return decimal.Decimal{}, fmt.Errorf("amount %q is too large", s)
	}
	return d, nil
}

// parsePostedDate reads YYYY-MM-DD or an ISO 8601 instant ("2025-11-01T00:00:00Z") and keeps
// the calendar date as written: ConnectWise stores invoice dates as midnight UTC, and moving
// that to the billing zone would put a November 1 invoice on October 31.
func parsePostedDate(s string) (time.Time, error) {
	if len(s) >= 10 {
		if _, err := time.Parse(time.DateOnly, s[:10]); err == nil {
			rest := s[10:]
			ok := rest == ""
			if !ok && (rest[0] == 'T' || rest[0] == ' ') {
				for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04:05.999999999"} {
					if _, err := time.Parse(layout, s); err == nil {
						ok = true
						break
					}
				}
			}
			if ok {
				d, _ := time.Parse(time.DateOnly, s[:10])
				return d, nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("date %q: want YYYY-MM-DD or an ISO 8601 time such as 2025-11-01T00:00:00Z", s)
}

func (p *Posted) readCSV(path string, b []byte) error {
	cr := csv.NewReader(bytes.NewReader(b))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return Inputf(path, 1, 0, "empty file: want a header row")
	}
	if err != nil {
		return csvInputError(path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		f, err := normaliseHeader(h)
		if err != nil {
			return Inputf(path, 1, i+1, "%v", err)
		}
		if f == "" {
			continue
		}
		if j, dup := col[f]; dup {
			return Inputf(path, 1, i+1, "column %q is %s again (column %d is already %s)", h, f, j+1, f)
		}
		col[f] = i
	}
	_, hasCatalog := col[fCatalogItem]
	_, hasExt := col[fExtPrice]
	lines := hasCatalog || hasExt
	required := []string{fInvoiceNumber, fCompanyIdent, fDate, fSubtotal, fSalesTax, fTotal}
	if lines {
		required = []string{fInvoiceNumber, fCatalogItem, fExtPrice}
	}
	var missing []string
	for _, f := range required {
		if _, ok := col[f]; !ok {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		kind := "a posted invoice file"
		if lines {
			kind = "an invoice-line file"
		}
		return Inputf(path, 1, 0, "header lacks %s (%s needs %s)", strings.Join(missing, ", "), kind, strings.Join(required, ", "))
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return csvInputError(path, err)
		}
		line, _ := cr.FieldPos(0)
		cell := func(f string) (string, int) {
			i, ok := col[f]
			if !ok || i >= len(rec) {
				return "", i + 1
			}
			return strings.TrimSpace(rec[i]), i + 1
		}
		need := func(f string) (string, error) {
			v, c := cell(f)
			if v == "" {
				return "", Inputf(path, line, c, "%s is empty", f)
			}
			return v, nil
		}
		amount := func(f string) (decimal.Decimal, error) {
			v, err := need(f)
			if err != nil {
				return decimal.Decimal{}, err
			}
			d, err := parseAmount(v)
			if err != nil {
				_, c := cell(f)
				return d, Inputf(path, line, c, "%s: %v", f, err)
			}
			return d, nil
		}
		var companyID *int64
		if v, c := cell(fCompanyID); v != "" {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil || id <= 0 {
				return Inputf(path, line, c, "company/id %q: want the ConnectWise company record number", v)
			}
			companyID = &id
		}
		number, err := need(fInvoiceNumber)
		if err != nil {
			return err
		}
		typ, c := cell(fType)
		if err := checkType(typ); err != nil {
			return Inputf(path, line, c, "%v", err)
		}
		ident, _ := cell(fCompanyIdent)
		if lines {
			pl := PostedLine{File: path, Line: line, InvoiceNumber: number, Type: typ, CompanyID: companyID, CompanyIdentifier: ident}
			if pl.CatalogIdentifier, err = need(fCatalogItem); err != nil {
				return err
			}
			if pl.ExtPrice, err = amount(fExtPrice); err != nil {
				return err
			}
			if v, c := cell(fDate); v != "" {
				d, err := parsePostedDate(v)
				if err != nil {
					return Inputf(path, line, c, "%v", err)
				}
				pl.Date = &d
			}
			p.Lines = append(p.Lines, pl)
			continue
		}
		inv := PostedInvoice{File: path, Line: line, InvoiceNumber: number, Type: typ, CompanyID: companyID}
		if inv.CompanyIdentifier, err = need(fCompanyIdent); err != nil {
			return err
		}
		inv.CompanyName, _ = cell(fCompanyName)
		inv.StatusName, _ = cell(fStatusName)
		v, err := need(fDate)
		if err != nil {
			return err
		}
		if inv.Date, err = parsePostedDate(v); err != nil {
			_, c := cell(fDate)
			return Inputf(path, line, c, "%v", err)
		}
		if inv.Subtotal, err = amount(fSubtotal); err != nil {
			return err
		}
		if inv.SalesTax, err = amount(fSalesTax); err != nil {
			return err
		}
		if inv.Total, err = amount(fTotal); err != nil {
			return err
		}
		p.Invoices = append(p.Invoices, inv)
	}
}

// invoiceTypes are ConnectWise's invoice types (DOMAIN.md); empty means not given.
var invoiceTypes = []string{"Agreement", "CreditMemo", "DownPayment", "Miscellaneous", "Progress", "Standard"}

func checkType(t string) error {
	if t == "" {
		return nil
	}
	for _, v := range invoiceTypes {
		if t == v {
			return nil
		}
	}
	return fmt.Errorf("type %q: want one of %s", t, strings.Join(invoiceTypes, ", "))
}

func csvInputError(path string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return Inputf(path, pe.Line, pe.Column, "%v", pe.Err)
	}
	return fmt.Errorf("read %s: %w", path, err)
}

// cwInvoice is the part of a ConnectWise finance/invoices object we read. Other fields are
// ignored; encoding/json matches names case-insensitively.
type cwInvoice struct {
	InvoiceNumber *string `json:"invoiceNumber"`
	Type          *string `json:"type"`
	Company       *struct {
		ID         *json.Number `json:"id"`
		Identifier *string      `json:"identifier"`
		Name       *string      `json:"name"`
	} `json:"company"`
	Date     *string         `json:"date"`
	Subtotal json.RawMessage `json:"subtotal"`
	SalesTax json.RawMessage `json:"salesTax"`
	Total    json.RawMessage `json:"total"`
	Status   *struct {
		Name     *string `json:"name"`
		IsClosed *bool   `json:"isClosed"`
	} `json:"status"`
}

func (p *Posted) readJSON(path string, b []byte) error {
	pos := func(off int64) (int, int) {
		if off > int64(len(b)) {
			off = int64(len(b))
		}
		pre := b[:off]
		// skip the whitespace before the value so the position names its first character
		for int(off) < len(b) && strings.IndexByte(" \t\r\n,", b[off]) >= 0 {
			off++
			pre = b[:off]
		}
		line := bytes.Count(pre, []byte("\n")) + 1
		col := int(off) - (bytes.LastIndexByte(pre, '\n') + 1) + 1
		return line, col
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('[') {
		return Inputf(path, 1, 1, "want the JSON array that ConnectWise's GET finance/invoices returns")
	}
	for dec.More() {
		off := dec.InputOffset()
		line, col := pos(off)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return jsonInputError(path, b, err, line, col)
		}
		var o cwInvoice
		if err := json.Unmarshal(raw, &o); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return Inputf(path, line, col, "field %s: %s where %s is wanted", te.Field, te.Value, te.Type)
			}
			return Inputf(path, line, col, "want an invoice object: %v", err)
		}
		at := func(format string, args ...any) error { return Inputf(path, line, col, format, args...) }
		inv := PostedInvoice{File: path, Line: line}
		if o.InvoiceNumber == nil || strings.TrimSpace(*o.InvoiceNumber) == "" {
			return at("invoice without invoiceNumber")
		}
		inv.InvoiceNumber = strings.TrimSpace(*o.InvoiceNumber)
		if o.Type != nil {
			inv.Type = strings.TrimSpace(*o.Type)
			if err := checkType(inv.Type); err != nil {
				return at("invoice %s: %v", inv.InvoiceNumber, err)
			}
		}
		if o.Company == nil || o.Company.Identifier == nil || strings.TrimSpace(*o.Company.Identifier) == "" {
			return at("invoice %s: company.identifier missing", inv.InvoiceNumber)
		}
		inv.CompanyIdentifier = strings.TrimSpace(*o.Company.Identifier)
		if o.Company.Name != nil {
			inv.CompanyName = *o.Company.Name
		}
		if o.Company.ID != nil {
			id, err := strconv.ParseInt(o.Company.ID.String(), 10, 64)
			if err != nil || id <= 0 {
				return at("invoice %s: company.id %s: want the company record number", inv.InvoiceNumber, o.Company.ID)
			}
			inv.CompanyID = &id
		}
		if o.Date == nil {
			return at("invoice %s: date missing", inv.InvoiceNumber)
		}
		if inv.Date, err = parsePostedDate(*o.Date); err != nil {
			return at("invoice %s: %v", inv.InvoiceNumber, err)
		}
		for _, a := range []struct {
			name string
			v    json.RawMessage
			dst  *decimal.Decimal
		}{{"subtotal", o.Subtotal, &inv.Subtotal}, {"salesTax", o.SalesTax, &inv.SalesTax}, {"total", o.Total, &inv.Total}} {
			if a.v == nil || string(a.v) == "null" {
				return at("invoice %s: %s missing", inv.InvoiceNumber, a.name)
			}
			// a number, or a string holding one
			text := string(a.v)
			var str string
			if json.Unmarshal(a.v, &str) == nil {
				text = strings.TrimSpace(str)
			}
			d, err := parseAmount(text)
			if err != nil {
				return at("invoice %s: %s: %v", inv.InvoiceNumber, a.name, err)
			}
			*a.dst = d
		}
		if o.Status != nil {
			if o.Status.Name != nil {
				inv.StatusName = *o.Status.Name
			}
			inv.IsClosed = o.Status.IsClosed
		}
		p.Invoices = append(p.Invoices, inv)
	}
	if _, err := dec.Token(); err != nil {
		l, c := pos(dec.InputOffset())
		return jsonInputError(path, b, err, l, c)
	}
	return nil
}

func jsonInputError(path string, b []byte, err error, line, col int) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off := int(se.Offset)
		if off > len(b) {
			off = len(b)
		}
		pre := b[:off]
		line = bytes.Count(pre, []byte("\n")) + 1
		col = off - (bytes.LastIndexByte(pre, '\n') + 1)
		if col < 1 {
			col = 1
		}
	}
	return Inputf(path, line, col, "invalid JSON: %v", err)
}

// money is an amount as DECIMAL(18,2) for the appender (amounts were checked to 2 decimals).
func money(d decimal.Decimal) duckdb.Decimal {
	return duckdb.Decimal{Width: 18, Scale: 2, Value: d.Round(2).Shift(2).BigInt()}
}

// LoadPosted creates posted_invoices and posted_invoice_lines and fills them. File names are
// stored relative to base when they lie under it.
func LoadPosted(ctx context.Context, r *Run, p *Posted, base string) error {
	if err := ExecModel(ctx, r.DB, "reconcile_posted_tables.sql"); err != nil {
		return err
	}
	rel := func(f string) string {
		if base != "" {
			if rp, err := filepath.Rel(base, f); err == nil && !strings.HasPrefix(rp, "..") {
				return filepath.ToSlash(rp)
			}
		}
		return filepath.ToSlash(f)
	}
	nullStr := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	nullInt := func(p *int64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	conn, err := r.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		a, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "posted_invoices")
		if err != nil {
			return err
		}
		for _, v := range p.Invoices {
			var closed any
			if v.IsClosed != nil {
				closed = *v.IsClosed
			}
			if err := a.AppendRow(v.InvoiceNumber, nullStr(v.Type), nullInt(v.CompanyID), v.CompanyIdentifier,
				nullStr(v.CompanyName), v.Date, money(v.Subtotal), money(v.SalesTax), money(v.Total),
				nullStr(v.StatusName), closed, rel(v.File), int32(v.Line)); err != nil {
				a.Close()
				return fmt.Errorf("posted invoice %s:%d: %w", v.File, v.Line, err)
			}
		}
		if err := a.Close(); err != nil {
			return err
		}
		a, err = duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "posted_invoice_lines")
		if err != nil {
			return err
		}
		for _, v := range p.Lines {
			var date any
			if v.Date != nil {
				date = *v.Date
			}
			if err := a.AppendRow(v.InvoiceNumber, nullStr(v.Type), nullInt(v.CompanyID), nullStr(v.CompanyIdentifier),
				date, v.CatalogIdentifier, money(v.ExtPrice), rel(v.File), int32(v.Line)); err != nil {
				a.Close()
				return fmt.Errorf("posted invoice line %s:%d: %w", v.File, v.Line, err)
			}
		}
		return a.Close()
	})
	if err != nil {
		return fmt.Errorf("load posted invoices: %w", err)
	}
	r.Count("posted_invoices_read", int64(len(p.Invoices)))
	r.Count("posted_invoice_lines_read", int64(len(p.Lines)))
	return nil
}
