package pipeline

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// TestExportsInLibreOffice opens every export in LibreOffice Calc (headless, Debian package
// libreoffice-calc-nogui) with formula evaluation ON — the worst case — converts it to xlsx and
// checks that no cell became a formula, that the hostile text is kept as text, and that amounts
// are numbers. Skipped, with a message, where LibreOffice is absent.
func TestExportsInLibreOffice(t *testing.T) {
	soffice, err := exec.LookPath("soffice")
	if err != nil {
		soffice, err = exec.LookPath("libreoffice")
	}
	if err != nil {
		t.Skip("LibreOffice is not installed (apt-get install libreoffice-calc-nogui): spreadsheet check skipped")
	}
	if testing.Short() {
		t.Skip("-short: LibreOffice check skipped")
	}
	r := newTestRun(t)
	r.Cfg.Paths.Staging = t.TempDir()
	createInvoiceInputs(t, r)
	runInvoiceStages(t, r, ExportStage{FlagErrors: true})

	outDir := t.TempDir()
	profile := "file://" + filepath.Join(t.TempDir(), "lo-profile")
	var inputs []string
	for _, name := range invoiceOutputs {
		inputs = append(inputs, r.OutPath(name))
	}
	// CSV filter tokens: separator ',', quote '"', UTF-8, from line 1, default cell formats,
	// language, quoted fields as text false, detect special numbers true, ..., token 13 = evaluate
	// formulas true.
	args := append([]string{"-env:UserInstallation=" + profile, "--headless", "--norestore",
		"--infilter=CSV:44,34,76,1,,1033,false,true,false,false,false,-1,true",
		"--convert-to", "xlsx", "--outdir", outDir}, inputs...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, soffice, args...).CombinedOutput(); err != nil {
		t.Fatalf("soffice: %v\n%s", err, out)
	}
	hostile := map[string]bool{}
	numbers := 0
	for _, in := range inputs {
		x := filepath.Join(outDir, strings.TrimSuffix(filepath.Base(in), ".csv")+".xlsx")
		f, err := excelize.OpenFile(x)
		if err != nil {
			t.Fatalf("%s: %v", x, err)
		}
		sheet := f.GetSheetName(0)
		rows, err := f.GetRows(sheet)
		if err != nil {
			t.Fatal(err)
		}
		for i, row := range rows {
			for j, v := range row {
				cell, _ := excelize.CoordinatesToCellName(j+1, i+1)
				if formula, _ := f.GetCellFormula(sheet, cell); formula != "" {
					t.Errorf("%s %s: became formula %q", filepath.Base(in), cell, formula)
				}
				for _, h := range []string{hostileName1, hostileName2, hostileDesc1, hostileDesc2} {
					if strings.Contains(v, strings.TrimSpace(h)) {
						hostile[h] = true
					}
				}
				if i > 0 && j < len(rows[0]) && (rows[0][j] == "extPrice" || rows[0][j] == "Item Amount" || rows[0][j] == "amount") {
					if typ, _ := f.GetCellType(sheet, cell); typ == excelize.CellTypeNumber || typ == excelize.CellTypeUnset {
						numbers++
					} else {
						t.Errorf("%s %s: amount %q is not a number (type %v)", filepath.Base(in), cell, v, typ)
					}
				}
			}
		}
		f.Close()
	}
	for _, h := range []string{hostileName1, hostileName2, hostileDesc1, hostileDesc2} {
		if !hostile[h] {
			t.Errorf("hostile text %q not found as text in the spreadsheets", h)
		}
	}
	if numbers == 0 {
		t.Error("no amount cells checked")
	}
	_ = os.Remove(outDir)
}
