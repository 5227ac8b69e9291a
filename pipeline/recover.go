package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Recover cleans up after a run that was killed (kill -9, power loss, disk full). It must run
// under the data folder's lock, before anything else. It:
//
//  1. completes interrupted publishes: a journal output/.publish-YYYY-MM.json whose period folder
//     is missing (killed between the two renames) gets its previous version moved back into place;
//     the journal is removed (the interrupted run's new version is built again by the next run);
//  2. removes the work folders of other runs (output/.work-*) and rerun scratch folders;
//  3. removes temporary files (renameio's ".<name><digits>", the ingest's ".<name>.<digits>.tmp",
//     unfinished snapshot folders staging/snapshots/.tmp-*) in output/ and staging/;
//  4. cuts a torn last line (no line end) off the append-only CSVs: staging/ledger.csv,
//     staging/snapshots/published.csv, output/runs.csv;
//  5. removes staged Parquet files whose sha256 has no ledger row. The ingest stage already never
//     reads them and overwrites them when the file is ingested again; removing them keeps
//     staging/ equal to what its ledger says, even when the CDR file left the inbox.
//
// keepWork is the calling run's own work folder ("" for none). Recover returns what it did, for
// the log.
func Recover(cfg *Config, keepWork string, log *slog.Logger) ([]string, error) {
	var did []string
	note := func(format string, a ...any) {
		s := fmt.Sprintf(format, a...)
		did = append(did, s)
		if log != nil {
			log.Warn("recover", "action", s)
		}
	}
	out, staging := cfg.Paths.Output, cfg.Paths.Staging

	// 1. publish journals
	journals, _ := filepath.Glob(filepath.Join(out, ".publish-*.json"))
	for _, jp := range journals {
		b, err := os.ReadFile(jp)
		var j publishJournal
		if err == nil {
			err = json.Unmarshal(b, &j)
		}
		if err != nil {
			// renameio writes the journal atomically: an unreadable one is not ours to trust
			return did, fmt.Errorf("recover: publish journal %s: %v (inspect it and remove it by hand)", jp, err)
		}
		if _, err := os.Stat(j.Target); errors.Is(err, fs.ErrNotExist) && j.Keep != "" {
			if _, err := os.Stat(j.Keep); err == nil {
				if err := os.Rename(j.Keep, j.Target); err != nil {
					return did, fmt.Errorf("recover: restore %s: %w", j.Target, err)
				}
				note("restored the previous version of %s (a publish was interrupted)", filepath.Base(j.Target))
			}
		}
		if err := os.Remove(jp); err != nil {
			return did, fmt.Errorf("recover: %w", err)
		}
		note("removed publish journal %s", filepath.Base(jp))
	}

	// 2. work folders
	keepRoot := ""
	if keepWork != "" {
		keepRoot = filepath.Dir(keepWork)
	}
	works, _ := filepath.Glob(filepath.Join(out, ".work-*"))
	for _, w := range works {
		if w == keepRoot {
			continue
		}
		if err := os.RemoveAll(w); err != nil {
			return did, fmt.Errorf("recover: %w", err)
		}
		note("removed work folder %s", filepath.Base(w))
	}

	// 3. temporary files
	for _, root := range []string{out, staging} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			name := d.Name()
			if d.IsDir() {
				switch {
				case p == keepRoot || (p != root && strings.HasPrefix(name, ".work-")):
					return filepath.SkipDir
				case filepath.Dir(p) == filepath.Join(staging, snapshotsDir) && strings.HasPrefix(name, ".tmp-"):
					note("removed unfinished snapshot %s", name)
					if err := os.RemoveAll(p); err != nil {
						return err
					}
					return filepath.SkipDir
				case p == cfg.DuckDB.TempDirectory:
					return filepath.SkipDir
				}
				return nil
			}
			if tempFileName.MatchString(name) {
				note("removed temporary file %s", relTo(root, p))
				return os.Remove(p)
			}
			return nil
		})
		if err != nil {
			return did, fmt.Errorf("recover: %w", err)
		}
	}
	// schema files of earlier runs' staging views, scratch folders of runs that died
	olds, _ := filepath.Glob(filepath.Join(cfg.DuckDB.TempDirectory, "staging-schema-*"))
	scratch, _ := filepath.Glob(filepath.Join(cfg.DuckDB.TempDirectory, scratchPfx+"*"))
	for _, o := range append(olds, scratch...) {
		os.RemoveAll(o)
	}

	// 4. torn lines
	for _, p := range []string{filepath.Join(staging, ledgerName), filepath.Join(staging, snapshotsDir, publishedIndex),
		filepath.Join(out, "runs.csv")} {
		cut, err := cutTornLine(p)
		if err != nil {
			return did, fmt.Errorf("recover: %w", err)
		}
		if cut {
			note("cut a torn last line off %s", filepath.Base(p))
		}
	}

	// 5. Parquet without a ledger row
	ledger, err := ReadLedger(staging)
	if err != nil {
		return did, fmt.Errorf("recover: %w", err)
	}
	inLedger := map[string]bool{}
	for _, e := range ledger {
		inLedger[e.SHA256] = true
	}
	var dirs []string
	parts, _ := filepath.Glob(filepath.Join(staging, cdrsDir, partitionPfx+"*"))
	dirs = append(dirs, parts...)
	for _, d := range []string{dupsDir, rejectsDir, notBilledDir} {
		dirs = append(dirs, filepath.Join(staging, d))
	}
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if sha, ok := strings.CutSuffix(e.Name(), ".parquet"); ok && !strings.HasPrefix(sha, ".") && !inLedger[sha] {
				if err := os.Remove(filepath.Join(d, e.Name())); err != nil {
					return did, fmt.Errorf("recover: %w", err)
				}
				note("removed %s (no ledger row: its ingest was interrupted)", relTo(staging, filepath.Join(d, e.Name())))
			}
		}
	}
	return did, nil
}

// tempFileName matches the temporary names used by renameio and by the ingest's Parquet writer.
var tempFileName = regexp.MustCompile(`^\..+\.(csv|json|parquet|xlsx|toml)(\d+|\.\d+\.tmp)$`)

func relTo(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return filepath.ToSlash(r)
	}
	return p
}

// cutTornLine truncates a file after its last line end when its last line has none.
func cutTornLine(p string) (bool, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) || len(b) == 0 || b[len(b)-1] == '\n' {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	i := bytes.LastIndexByte(b, '\n')
	if err := os.Truncate(p, int64(i+1)); err != nil {
		return false, err
	}
	return true, nil
}

// CrashEnv names the test hook: CDRBILL_CRASH_AT=<point> makes the process exit at once with
// status 137 (as if killed with SIGKILL) when it reaches that point. Points: a stage's name (the
// moment before the stage starts), ingest-ledger (a file's Parquet is in place, its ledger row is
// not), publish-recorded (snapshot and published.csv written, nothing moved), publish-swap (the
// previous version moved away, the new one not yet in place).
const CrashEnv = "CDRBILL_CRASH_AT"

func crashPoint(name string) {
	if v := os.Getenv(CrashEnv); v != "" && v == name {
		os.Exit(137)
	}
}

// CrashPoint is crashPoint for other packages' hooks.
func CrashPoint(name string) { crashPoint(name) }
