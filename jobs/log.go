package jobs

import (
	"io"
	"log/slog"
	"os"
)

// newLogger writes text to a terminal and JSON lines otherwise (cron, systemd, files).
func newLogger(w io.Writer) *slog.Logger {
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return slog.New(slog.NewTextHandler(w, nil))
		}
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}
