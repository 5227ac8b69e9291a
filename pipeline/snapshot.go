package pipeline

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Snapshots of what a published version was computed with, so that an auditor's rerun uses the
// reference data, posted invoices and billing settings in effect then, not today's:
//
//	staging/snapshots/<key>/config.toml            the config file
//	staging/snapshots/<key>/reference/<file>       every regular file of paths.reference
//	staging/snapshots/<key>/root/<rel>/<file>      the posted invoices (*.csv, *.json) at their path
//	                                               relative to the config folder (<rel>, see meta)
//	staging/snapshots/<key>/snapshot.json          {"posted": "<rel>"}
//	staging/snapshots/published.csv                one row per published version: period, run_id,
//	                                               published_at, snapshot (<key>), ledger_rows
//
// <key> is the SHA-256 of the snapshot's file list and contents, so identical inputs share one
// snapshot. A snapshot folder is written under a temporary name and renamed into place (write-once,
// like the rest of staging). ledger_rows is how many files the ledger held when the version was
// published: a rerun reads only those, so files ingested later do not leak into it.

const (
	snapshotsDir       = "snapshots"
	publishedIndex     = "published.csv"
	snapshotMetaName   = "snapshot.json"
	snapshotRootDir    = "root"
	snapshotRefDir     = "reference"
	snapshotConfigFile = "config.toml"
)

var publishedHeader = []string{"period", "run_id", "published_at", "snapshot", "ledger_rows"}

// PublishedVersion is a row of staging/snapshots/published.csv.
type PublishedVersion struct {
	Period      string
	RunID       string
	PublishedAt string
	Snapshot    string // folder name under staging/snapshots
	LedgerRows  int    // -1 when unknown
}

type snapshotMeta struct {
	Posted string `json:"posted"`
}

type snapFile struct{ src, rel string }

// snapshotFiles lists what a run of cfg reads besides staging: the config, the reference folder
// and the posted invoices.
func snapshotFiles(cfg *Config) ([]snapFile, snapshotMeta, error) {
	var files []snapFile
	var meta snapshotMeta
	if cfg.File != "" {
		files = append(files, snapFile{cfg.File, snapshotConfigFile})
	}
	ents, err := os.ReadDir(cfg.Paths.Reference)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, meta, fmt.Errorf("snapshot reference: %w", err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			files = append(files, snapFile{filepath.Join(cfg.Paths.Reference, e.Name()), snapshotRefDir + "/" + e.Name()})
		}
	}
	posted := cfg.Paths.Posted
	meta.Posted = "posted"
	if cfg.Dir != "" {
		if rel, err := filepath.Rel(cfg.Dir, posted); err == nil && !strings.HasPrefix(rel, "..") && rel != "." {
			meta.Posted = filepath.ToSlash(rel)
		}
	}
	if st, err := os.Stat(posted); err == nil {
		var names []string
		if st.IsDir() {
			pe, err := os.ReadDir(posted)
			if err != nil {
				return nil, meta, fmt.Errorf("snapshot posted: %w", err)
			}
			for _, e := range pe {
				ext := strings.ToLower(filepath.Ext(e.Name()))
				if e.Type().IsRegular() && (ext == ".csv" || ext == ".json") && !strings.HasPrefix(e.Name(), ".") {
					names = append(names, e.Name())
				}
			}
			for _, n := range names {
				files = append(files, snapFile{filepath.Join(posted, n), snapshotRootDir + "/" + meta.Posted + "/" + n})
			}
		} else {
			// a single posted file: kept as the only file of a folder, which reads the same
			meta.Posted = filepath.ToSlash(filepath.Dir(meta.Posted))
			if meta.Posted == "." {
				meta.Posted = "posted"
			}
			files = append(files, snapFile{posted, snapshotRootDir + "/" + meta.Posted + "/" + filepath.Base(posted)})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	return files, meta, nil
}

// SnapshotInputs copies the config, reference data and posted invoices into
// staging/snapshots/<key> (unless that snapshot exists) and returns <key>.
func SnapshotInputs(cfg *Config) (string, error) {
	files, meta, err := snapshotFiles(cfg)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range files {
		d, err := digestFile(f.src)
		if err != nil {
			return "", fmt.Errorf("snapshot: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%s\n", f.rel, d.SHA256)
	}
	fmt.Fprintf(h, "posted\x00%s\n", meta.Posted)
	key := hex.EncodeToString(h.Sum(nil))[:32]
	root := filepath.Join(cfg.Paths.Staging, snapshotsDir)
	dst := filepath.Join(root, key)
	if _, err := os.Stat(dst); err == nil {
		return key, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	tmp, err := os.MkdirTemp(root, ".tmp-"+key+"-")
	if err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	for _, f := range files {
		if err := copyFileSync(f.src, filepath.Join(tmp, filepath.FromSlash(f.rel))); err != nil {
			return "", fmt.Errorf("snapshot: %w", err)
		}
	}
	b, _ := json.Marshal(meta)
	if err := writeFileSync(filepath.Join(tmp, snapshotMetaName), append(b, '\n')); err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		if _, statErr := os.Stat(dst); statErr == nil {
			return key, nil
		}
		return "", fmt.Errorf("snapshot: %w", err)
	}
	ok = true
	syncDir(root)
	return key, nil
}

// RecordPublished appends a published version to staging/snapshots/published.csv (fsynced).
func RecordPublished(staging string, v PublishedVersion) error {
	root := filepath.Join(staging, snapshotsDir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	path := filepath.Join(root, publishedIndex)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("published index: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w := csv.NewWriter(f)
	if st.Size() == 0 {
		w.Write(publishedHeader)
	}
	w.Write([]string{v.Period, v.RunID, v.PublishedAt, v.Snapshot, strconv.Itoa(v.LedgerRows)})
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("published index: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("published index: %w", err)
	}
	return f.Close()
}

// ReadPublished reads staging/snapshots/published.csv (nothing when it does not exist). A torn
// last line (a crash while appending) is ignored.
func ReadPublished(staging string) ([]PublishedVersion, error) {
	b, err := os.ReadFile(filepath.Join(staging, snapshotsDir, publishedIndex))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(strings.NewReader(string(b)))
	r.FieldsPerRecord = -1
	var out []PublishedVersion
	for i := 0; ; i++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil || len(rec) != len(publishedHeader) {
			continue
		}
		if i == 0 && rec[0] == "period" {
			continue
		}
		n, err := strconv.Atoi(rec[4])
		if err != nil {
			n = -1
		}
		out = append(out, PublishedVersion{rec[0], rec[1], rec[2], rec[3], n})
	}
	return out, nil
}

// PublishedSnapshot finds the version of a period published by runID (the run recorded in the
// published manifest); with no such row, the period's latest. ok is false when the period has none.
func PublishedSnapshot(staging, period, runID string) (PublishedVersion, bool, error) {
	all, err := ReadPublished(staging)
	if err != nil {
		return PublishedVersion{}, false, err
	}
	var last PublishedVersion
	found := false
	for _, v := range all {
		if v.Period != period {
			continue
		}
		if runID != "" && v.RunID == runID {
			return v, true, nil
		}
		last, found = v, true
	}
	return last, found, nil
}

func copyFileSync(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return writeFileSync(dst, b)
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes renames in dir durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func nowUTC() string { return time.Now().UTC().Format(time.RFC3339) }
