package pipeline

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/google/renameio/v2"
	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"
)

// xlsxSheet is one report written as a worksheet: the rows of Table, Columns in order, sorted by
// Order.
type xlsxSheet struct {
	Name    string
	Table   string
	Columns []string
	Order   string
}

// Styles of reconciliation.xlsx, exported for the tests and the README.
const (
	// XLSXAmountFormat is the built-in number format "#,##0.00" for amounts and percents.
	XLSXAmountFormat = 4
	// XLSXHighlight is the fill of a row whose status is not ok.
	XLSXHighlight = "FFC7CE"
	// xlsxFixedTime keeps the workbook's bytes the same from run to run.
	xlsxFixedTime = "2000-01-01T00:00:00Z"
)

// WriteReconciliationXLSX writes the reports as one workbook for finance: one sheet per report,
// the header row frozen, DECIMAL columns as numbers with 2-decimal format, and the rows whose
// status is not ok filled with XLSXHighlight. Document properties are fixed so that the same
// reports give the same bytes.
func WriteReconciliationXLSX(ctx context.Context, db *sql.DB, path string, sheets []xlsxSheet) error {
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetDocProps(&excelize.DocProperties{Created: xlsxFixedTime, Modified: xlsxFixedTime,
		Creator: "cdrbill", LastModifiedBy: "cdrbill", Title: "Reconciliation"}); err != nil {
		return err
	}
	header, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true},
		Fill:   excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"D9D9D9"}},
		Border: []excelize.Border{{Type: "bottom", Color: "000000", Style: 1}}})
	if err != nil {
		return err
	}
	hl := excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{XLSXHighlight}}
	styles := map[[2]bool]int{} // [number, highlighted]
	for _, num := range []bool{false, true} {
		for _, h := range []bool{false, true} {
			st := &excelize.Style{}
			if num {
				st.NumFmt = XLSXAmountFormat
			}
			if h {
				st.Fill = hl
			}
			if styles[[2]bool{num, h}], err = f.NewStyle(st); err != nil {
				return err
			}
		}
	}
	for i, sh := range sheets {
		if i == 0 {
			if err := f.SetSheetName("Sheet1", sh.Name); err != nil {
				return err
			}
		} else if _, err := f.NewSheet(sh.Name); err != nil {
			return err
		}
		if err := writeSheet(ctx, db, f, sh, header, styles); err != nil {
			return fmt.Errorf("%s sheet %s: %w", path, sh.Name, err)
		}
	}
	f.SetActiveSheet(0)
	buf, err := f.WriteToBuffer()
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return renameio.WriteFile(path, buf.Bytes(), 0o644)
}

func writeSheet(ctx context.Context, db *sql.DB, f *excelize.File, sh xlsxSheet, header int, styles map[[2]bool]int) error {
	rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM %s ORDER BY %s", strings.Join(sh.Columns, ", "), sh.Table, sh.Order))
	if err != nil {
		return err
	}
	defer rows.Close()
	statusCol := -1
	for i, c := range sh.Columns {
		cell, _ := excelize.CoordinatesToCellName(i+1, 1)
		if err := f.SetCellStr(sh.Name, cell, c); err != nil {
			return err
		}
		if c == "status" {
			statusCol = i
		}
		width := 14.0
		switch c {
		case "company_identifier", "catalog_identifier":
			width = 22
		case "invoice_numbers":
			width = 30
		case "status":
			width = 18
		case "period":
			width = 9
		}
		col, _ := excelize.ColumnNumberToName(i + 1)
		if err := f.SetColWidth(sh.Name, col, col, width); err != nil {
			return err
		}
	}
	last, _ := excelize.CoordinatesToCellName(len(sh.Columns), 1)
	if err := f.SetCellStyle(sh.Name, "A1", last, header); err != nil {
		return err
	}
	if err := f.SetPanes(sh.Name, &excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft",
		Selection: []excelize.Selection{{SQRef: "A2", ActiveCell: "A2", Pane: "bottomLeft"}}}); err != nil {
		return err
	}
	vals := make([]any, len(sh.Columns))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	rowNo := 1
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		rowNo++
		highlight := statusCol >= 0 && fmt.Sprint(vals[statusCol]) != "ok"
		for i, v := range vals {
			cell, _ := excelize.CoordinatesToCellName(i+1, rowNo)
			num := false
			switch x := v.(type) {
			case nil:
			case duckdb.Decimal:
				num = true
				d := decimal.NewFromBigInt(x.Value, -int32(x.Scale))
				if err := f.SetCellFloat(sh.Name, cell, d.InexactFloat64(), int(x.Scale), 64); err != nil {
					return err
				}
			default:
				if err := f.SetCellStr(sh.Name, cell, FormatValue(v, "")); err != nil {
					return err
				}
			}
			if !num && v == nil {
				num = isAmountColumn(sh.Columns[i])
			}
			if err := f.SetCellStyle(sh.Name, cell, cell, styles[[2]bool{num, highlight}]); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if rowNo > 1 {
		lastCell, _ := excelize.CoordinatesToCellName(len(sh.Columns), rowNo)
		if err := f.AutoFilter(sh.Name, "A1:"+lastCell, nil); err != nil {
			return err
		}
	}
	return nil
}

func isAmountColumn(c string) bool {
	return strings.HasPrefix(c, "rated_") || strings.HasPrefix(c, "posted_") || strings.HasPrefix(c, "variance_")
}
