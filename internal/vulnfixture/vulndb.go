package vulnfixture

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

// Limits on the OSV export BuildVulnDB reads.
const (
	// MaxDBRecords bounds the records in one export.
	MaxDBRecords = 200000
	// MaxRecordBytes bounds one record's uncompressed size.
	MaxRecordBytes = 4 << 20
	// MaxDBBytes bounds the export's total uncompressed size.
	MaxDBBytes = 2 << 30
)

// validID is what an advisory id must look like to be used as a file name.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// osvRecord is the part of an OSV record the database index needs.
type osvRecord struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases"`
	Affected []struct {
		Package struct {
			Name      string `json:"name"`
			Ecosystem string `json:"ecosystem"`
		} `json:"package"`
		Ranges []osvRange `json:"ranges"`
	} `json:"affected"`
}

type osvRange struct {
	Type   string `json:"type"`
	Events []struct {
		Introduced string `json:"introduced"`
		Fixed      string `json:"fixed"`
	} `json:"events"`
}

// The index documents of the Go vulnerability database's v1 schema
// (https://go.dev/security/vuln/database#api).
type (
	dbMeta struct {
		Modified time.Time `json:"modified"`
	}
	moduleMeta struct {
		Path  string       `json:"path"`
		Vulns []moduleVuln `json:"vulns"`
	}
	moduleVuln struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		Fixed    string    `json:"fixed,omitempty"`
	}
	vulnMeta struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		Aliases  []string  `json:"aliases,omitempty"`
	}
)

// BuildVulnDB turns osvZip, an osv.dev per-ecosystem export (all.zip: one
// <ID>.json OSV record per file) of Go records, into dir laid out as the Go
// vulnerability database's v1 schema, which govulncheck reads from a
// file:// URL:
//
//	index/db.json       {"modified": <latest record modification>}
//	index/modules.json  [{"path", "vulns": [{"id", "modified", "fixed"}]}]
//	index/vulns.json    [{"id", "modified", "aliases"}]
//	ID/<id>.json        each record, as exported
//
// "fixed" is the module's latest fix that no later introduction supersedes
// (as the database computes it; empty when there is none), which clients
// use to skip records that cannot affect a version. Files that do not end
// in .json are ignored. dir must not exist or be empty; the database is
// written beside it and renamed into place, so a reader never sees half of
// one.
func BuildVulnDB(osvZip string, dir string) error {
	if dir == "" {
		return errors.New("vulnfixture: vuln db: empty output directory")
	}
	if err := checkEmptyOrAbsent(dir); err != nil {
		return fmt.Errorf("vulnfixture: vuln db: %w", err)
	}
	zr, err := zip.OpenReader(osvZip)
	if err != nil {
		return fmt.Errorf("vulnfixture: vuln db: open %s: %w", osvZip, err)
	}
	defer zr.Close()

	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("vulnfixture: vuln db: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("vulnfixture: vuln db: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := writeVulnDB(zr.File, tmp); err != nil {
		return fmt.Errorf("vulnfixture: vuln db from %s: %w", osvZip, err)
	}
	if err := checkEmptyOrAbsent(dir); err != nil {
		return fmt.Errorf("vulnfixture: vuln db: %w", err)
	}
	_ = os.Remove(dir) // an empty directory; Rename needs it gone
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("vulnfixture: vuln db: install %s: %w", dir, err)
	}
	return nil
}

func checkEmptyOrAbsent(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("output directory %s is not empty", dir)
	}
	return nil
}

func writeVulnDB(files []*zip.File, out string) error {
	if err := os.MkdirAll(filepath.Join(out, "ID"), 0o755); err != nil {
		return err
	}
	var (
		db      dbMeta
		modules = map[string]map[string]*moduleVuln{}
		vulns   []vulnMeta
		seen    = map[string]bool{}
		total   uint64
	)
	for _, f := range files {
		if strings.HasSuffix(f.Name, "/") || !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		if len(vulns) >= MaxDBRecords {
			return fmt.Errorf("more than %d records", MaxDBRecords)
		}
		data, err := readZipFile(f)
		if err != nil {
			return err
		}
		if total += uint64(len(data)); total > MaxDBBytes {
			return fmt.Errorf("records exceed %d bytes in all", MaxDBBytes)
		}
		rec, err := parseRecord(f.Name, data)
		if err != nil {
			return err
		}
		if seen[rec.ID] {
			return fmt.Errorf("record %s appears twice", rec.ID)
		}
		seen[rec.ID] = true
		if err := os.WriteFile(filepath.Join(out, "ID", rec.ID+".json"), data, 0o644); err != nil {
			return err
		}
		if rec.Modified.After(db.Modified) {
			db.Modified = rec.Modified
		}
		vulns = append(vulns, vulnMeta{ID: rec.ID, Modified: rec.Modified.UTC(), Aliases: rec.Aliases})
		for _, a := range rec.Affected {
			if a.Package.Ecosystem != "Go" || a.Package.Name == "" {
				continue
			}
			byID := modules[a.Package.Name]
			if byID == nil {
				byID = map[string]*moduleVuln{}
				modules[a.Package.Name] = byID
			}
			fixed := nonSupersededFix(a.Ranges)
			if mv, ok := byID[rec.ID]; ok {
				// The same module in several affected blocks: keep the
				// fix that filters the least ("" filters nothing).
				if mv.Fixed != "" && (fixed == "" || lessVersion(mv.Fixed, fixed)) {
					mv.Fixed = fixed
				}
				continue
			}
			byID[rec.ID] = &moduleVuln{ID: rec.ID, Modified: rec.Modified.UTC(), Fixed: fixed}
		}
	}
	if len(vulns) == 0 {
		return errors.New("no .json records")
	}
	db.Modified = db.Modified.UTC()

	mods := make([]moduleMeta, 0, len(modules))
	for path, byID := range modules {
		m := moduleMeta{Path: path, Vulns: make([]moduleVuln, 0, len(byID))}
		for _, v := range byID {
			m.Vulns = append(m.Vulns, *v)
		}
		sort.Slice(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	sort.Slice(vulns, func(i, j int) bool { return vulns[i].ID < vulns[j].ID })

	if err := os.MkdirAll(filepath.Join(out, "index"), 0o755); err != nil {
		return err
	}
	for name, v := range map[string]any{"db.json": db, "modules.json": mods, "vulns.json": vulns} {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, "index", name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func readZipFile(f *zip.File) ([]byte, error) {
	if f.UncompressedSize64 > MaxRecordBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", f.Name, f.UncompressedSize64, MaxRecordBytes)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxRecordBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	if len(data) > MaxRecordBytes {
		return nil, fmt.Errorf("%s: more than %d bytes", f.Name, MaxRecordBytes)
	}
	return data, nil
}

func parseRecord(name string, data []byte) (*osvRecord, error) {
	if strings.Contains(name, "/") || strings.Contains(name, `\`) {
		return nil, fmt.Errorf("%s: records must sit at the top of the archive", name)
	}
	var rec osvRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%s: not an OSV record: %w", name, err)
	}
	if !validID.MatchString(rec.ID) {
		return nil, fmt.Errorf("%s: invalid id %q", name, rec.ID)
	}
	if name != rec.ID+".json" {
		return nil, fmt.Errorf("%s: file name does not match record id %q", name, rec.ID)
	}
	if rec.Modified.IsZero() {
		return nil, fmt.Errorf("%s: no modified time", name)
	}
	return &rec, nil
}

// nonSupersededFix returns the latest fixed version in the SEMVER ranges
// that no introduction after it supersedes, or "" if there is none. It
// follows the Go vulnerability database's own computation of the modules
// index's "fixed" field.
func nonSupersededFix(ranges []osvRange) string {
	var latest string
	for _, r := range ranges {
		if r.Type != "SEMVER" {
			continue
		}
		for _, e := range r.Events {
			if e.Fixed != "" && lessVersion(latest, e.Fixed) {
				latest = e.Fixed
			}
		}
		for _, e := range r.Events {
			if e.Introduced != "" && e.Introduced != "0" && lessVersion(latest, e.Introduced) {
				latest = ""
				break
			}
		}
	}
	return latest
}

// lessVersion compares OSV Go versions (no leading "v"); "" and invalid
// versions sort before every valid one.
func lessVersion(a, b string) bool {
	return semver.Compare(canonicalVersion(a), canonicalVersion(b)) < 0
}

func canonicalVersion(v string) string {
	v = strings.TrimPrefix(strings.TrimPrefix(v, "v"), "go")
	return "v" + v
}
