package osvdb

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Real snapshots and their record counts.
const (
	snap2025a = "Go-2025-01-01.zip"
	snap2025b = "Go-2025-07-01.zip"
	snap2026  = "Go-2026-08-21.zip"
)

// dataDir finds <repo root>/../shared/data/osv, the repo root being the
// nearest directory above the working directory that holds go.mod. It
// skips the test loudly when the data is missing.
func dataDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	tried := "(no go.mod found above " + dir + ")"
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			data := filepath.Join(dir, "..", "shared", "data", "osv")
			if _, err := os.Stat(filepath.Join(data, snap2026)); err == nil {
				return data
			}
			tried = data
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	tb.Skipf("SKIPPING: OSV data not found at %s", tried)
	return ""
}

var (
	snapMu    sync.Mutex
	snapCache = map[string]*DB{}
)

// snapshot loads a real snapshot once per test binary.
func snapshot(tb testing.TB, name string) *DB {
	tb.Helper()
	path := filepath.Join(dataDir(tb), name)
	snapMu.Lock()
	defer snapMu.Unlock()
	if db, ok := snapCache[name]; ok {
		return db
	}
	db, err := Load(path, DefaultLimits())
	if err != nil {
		tb.Fatalf("Load(%s): %v", path, err)
	}
	snapCache[name] = db
	return db
}

// zipEntry is one file of a synthetic archive.
type zipEntry struct {
	name string
	data []byte
}

// makeZip builds an archive in memory, deflated unless store is set.
func makeZip(tb testing.TB, store bool, entries ...zipEntry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		method := zip.Deflate
		if store {
			method = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: method})
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// loadZipBytes loads an in-memory archive.
func loadZipBytes(b []byte, lim Limits) (*DB, error) {
	return LoadZip(bytes.NewReader(b), int64(len(b)), "test.zip", lim)
}

// dbOf loads synthetic records (raw JSON, named by position) or fails.
func dbOf(tb testing.TB, records ...string) *DB {
	tb.Helper()
	var es []zipEntry
	for i, r := range records {
		es = append(es, zipEntry{name: "r" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".json", data: []byte(r)})
	}
	db, err := loadZipBytes(makeZip(tb, false, es...), Limits{})
	if err != nil {
		tb.Fatalf("load: %v", err)
	}
	if rej := db.Rejected(); len(rej) > 0 {
		tb.Fatalf("unexpected rejections: %v", rej)
	}
	return db
}
