package vulnfixture

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"
)

var wantPrograms = []string{"control", "cryptoold", "netold", "recent", "textnew", "textold"}

// osvZip returns the path of a snapshot, skipping the test loudly when the
// data is missing.
func osvZip(t *testing.T, snapshot string) string {
	t.Helper()
	dir, err := FindOSVData()
	if err != nil {
		t.Skipf("SKIPPING: OSV data not found: %v", err)
	}
	p := filepath.Join(dir, snapshot+".zip")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("SKIPPING: OSV data not found at %s: %v", p, err)
	}
	return p
}

// directRequires returns the non-indirect requirements of a program's
// go.mod.
func directRequires(t *testing.T, name string) map[string]string {
	t.Helper()
	src, err := Source(name)
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.Parse(name+"/go.mod", src["go.mod"], nil)
	if err != nil {
		t.Fatalf("%s: go.mod: %v", name, err)
	}
	if want := "ztota.test/vulnfixture/" + name; mf.Module.Mod.Path != want {
		t.Errorf("%s: module path %q, want %q", name, mf.Module.Mod.Path, want)
	}
	req := map[string]string{}
	for _, r := range mf.Require {
		if !r.Indirect {
			req[r.Mod.Path] = r.Mod.Version
		}
	}
	return req
}

func TestSources(t *testing.T) {
	names, err := Names()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(names, wantPrograms) {
		t.Fatalf("Names() = %v, want %v", names, wantPrograms)
	}
	for _, name := range names {
		src, err := Source(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"main.go", "go.mod", "go.sum"} {
			if len(src[f]) == 0 {
				t.Errorf("%s: %s missing or empty", name, f)
			}
		}
		if !bytes.Contains(src["main.go"], []byte("package main")) {
			t.Errorf("%s: main.go is not package main", name)
		}
		if len(directRequires(t, name)) == 0 {
			t.Errorf("%s: go.mod requires nothing", name)
		}
		for _, snap := range Snapshots() {
			if ids, ok := Expected(name, snap); !ok || ids == nil {
				t.Errorf("Expected(%s, %s) missing", name, snap)
			}
		}
	}
	if _, err := Source("no-such-program"); err == nil {
		t.Error("Source of an unknown program: no error")
	}
	if _, ok := Expected("textold", "Go-1999-01-01"); ok {
		t.Error("Expected for an unknown snapshot reported ok")
	}
	// Expected hands out copies.
	a, _ := Expected("textold", Snapshot20250101)
	a[0] = "changed"
	if b, _ := Expected("textold", Snapshot20250101); b[0] != "GO-2021-0113" {
		t.Errorf("Expected shares its table: %v", b)
	}
}

func TestCacheKey(t *testing.T) {
	tc := toolchain{version: "go1.26.8", goos: "linux", goarch: "amd64"}
	src := map[string][]byte{"main.go": []byte("package main"), "go.mod": []byte("module m")}
	k := cacheKey(tc, "p", src)
	if k != cacheKey(tc, "p", map[string][]byte{"go.mod": []byte("module m"), "main.go": []byte("package main")}) {
		t.Error("cache key depends on map order")
	}
	changes := map[string]string{
		"toolchain": cacheKey(toolchain{version: "go1.26.9", goos: "linux", goarch: "amd64"}, "p", src),
		"goarch":    cacheKey(toolchain{version: "go1.26.8", goos: "linux", goarch: "arm64"}, "p", src),
		"name":      cacheKey(tc, "q", src),
		"source":    cacheKey(tc, "p", map[string][]byte{"main.go": []byte("package main "), "go.mod": []byte("module m")}),
		// Moving a byte between files must change the key too.
		"split": cacheKey(tc, "p", map[string][]byte{"main.go": []byte("package mai"), "go.mod": []byte("nmodule m")}),
	}
	for what, k2 := range changes {
		if k2 == k {
			t.Errorf("changing the %s leaves the cache key unchanged", what)
		}
	}
}

func TestNonSupersededFix(t *testing.T) {
	rng := func(events ...[2]string) osvRange {
		r := osvRange{Type: "SEMVER"}
		for _, e := range events {
			r.Events = append(r.Events, struct {
				Introduced string `json:"introduced"`
				Fixed      string `json:"fixed"`
			}{e[0], e[1]})
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		ranges []osvRange
		want   string
	}{
		{"none", nil, ""},
		{"single fix", []osvRange{rng([2]string{"0", ""}, [2]string{"", "0.3.7"})}, "0.3.7"},
		{"latest of two", []osvRange{rng([2]string{"0", ""}, [2]string{"", "1.19.1"}, [2]string{"1.20.0", ""}, [2]string{"", "1.20.2"})}, "1.20.2"},
		{"reintroduced", []osvRange{rng([2]string{"0", ""}, [2]string{"", "1.2.0"}, [2]string{"1.3.0", ""})}, ""},
		{"no fix", []osvRange{rng([2]string{"0", ""})}, ""},
		{"pseudo-version", []osvRange{rng([2]string{"0", ""}, [2]string{"", "0.0.0-20220314234659-1baeb1ce4c0b"})}, "0.0.0-20220314234659-1baeb1ce4c0b"},
		{"non-semver range ignored", []osvRange{{Type: "GIT"}}, ""},
	} {
		if got := nonSupersededFix(tc.ranges); got != tc.want {
			t.Errorf("%s: nonSupersededFix = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestFindingIDs(t *testing.T) {
	stream := `{"config":{"protocol_version":"v1.0.0"}}
{"osv":{"id":"GO-2000-0001"}}
{"finding":{"osv":"GO-2022-1059","fixed_version":"v0.3.8"}}
{"progress":{"message":"x"}}
{"finding":{"osv":"GO-2021-0113"}}
{"finding":{"osv":"GO-2022-1059"}}`
	ids, err := findingIDs([]byte(stream), false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"GO-2021-0113", "GO-2022-1059"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("findingIDs = %v, want %v (the osv message is not a finding)", ids, want)
	}
	if ids, err := findingIDs(nil, false); err != nil || len(ids) != 0 {
		t.Errorf("empty stream: %v, %v", ids, err)
	}
	for _, bad := range []string{`{"finding":{"osv":""}}`, `{"finding":`, `[1,2]`} {
		if _, err := findingIDs([]byte(bad), false); err == nil {
			t.Errorf("findingIDs(%q): no error", bad)
		}
	}
}

// makeZip writes a zip of the given files.
func makeZip(t *testing.T, files map[string]string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "all.zip")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodRecord = `{"id":"GO-2099-0001","modified":"2024-05-20T16:03:47+00:00","aliases":["CVE-2099-1"],
"affected":[{"package":{"name":"example.com/m","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.3"}]}]}]}`

func TestBuildVulnDBSmall(t *testing.T) {
	zp := makeZip(t, map[string]string{
		"GO-2099-0001.json": goodRecord,
		"GO-2099-0002.json": `{"id":"GO-2099-0002","modified":"2025-01-02T00:00:00Z","affected":[
			{"package":{"name":"example.com/m","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}]},
			{"package":{"name":"example.com/m","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"2.0.0"}]}]}]}`,
		"README.txt": "ignored",
	})
	dir := filepath.Join(t.TempDir(), "db")
	if err := BuildVulnDB(zp, dir); err != nil {
		t.Fatal(err)
	}
	var db dbMeta
	readJSON(t, filepath.Join(dir, "index", "db.json"), &db)
	if want := time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC); !db.Modified.Equal(want) {
		t.Errorf("db modified %v, want %v", db.Modified, want)
	}
	var mods []moduleMeta
	readJSON(t, filepath.Join(dir, "index", "modules.json"), &mods)
	if len(mods) != 1 || mods[0].Path != "example.com/m" || len(mods[0].Vulns) != 2 {
		t.Fatalf("modules index %+v", mods)
	}
	if v := mods[0].Vulns[0]; v.ID != "GO-2099-0001" || v.Fixed != "1.2.3" {
		t.Errorf("first module vuln %+v", v)
	}
	// Two affected blocks for one module: one has no fix, so none may filter.
	if v := mods[0].Vulns[1]; v.ID != "GO-2099-0002" || v.Fixed != "" {
		t.Errorf("merged module vuln %+v, want no fixed version", v)
	}
	var vulns []vulnMeta
	readJSON(t, filepath.Join(dir, "index", "vulns.json"), &vulns)
	if len(vulns) != 2 || vulns[0].ID != "GO-2099-0001" || !reflect.DeepEqual(vulns[0].Aliases, []string{"CVE-2099-1"}) {
		t.Errorf("vulns index %+v", vulns)
	}
	b, err := os.ReadFile(filepath.Join(dir, "ID", "GO-2099-0001.json"))
	if err != nil || string(b) != goodRecord {
		t.Errorf("record not copied verbatim: %v", err)
	}
	if err := BuildVulnDB(zp, dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("second build into a full directory: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := BuildVulnDB(zp, empty); err != nil {
		t.Errorf("build into an empty directory: %v", err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestBuildVulnDBBadInput(t *testing.T) {
	notZip := filepath.Join(t.TempDir(), "x.zip")
	if err := os.WriteFile(notZip, []byte("not a zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := `{"id":"GO-2099-0001","modified":"2024-01-01T00:00:00Z"` + strings.Repeat(" ", MaxRecordBytes) + `}`
	for _, tc := range []struct {
		name, zip, want string
	}{
		{"missing file", filepath.Join(t.TempDir(), "none.zip"), "open"},
		{"not a zip", notZip, "open"},
		{"no records", makeZip(t, map[string]string{"a.txt": "x"}), "no .json records"},
		{"bad json", makeZip(t, map[string]string{"GO-2099-0001.json": "{"}), "not an OSV record"},
		{"name mismatch", makeZip(t, map[string]string{"GO-2099-0002.json": goodRecord}), "does not match"},
		{"nested", makeZip(t, map[string]string{"sub/GO-2099-0001.json": goodRecord}), "top of the archive"},
		{"traversal id", makeZip(t, map[string]string{"x.json": `{"id":"../x","modified":"2024-01-01T00:00:00Z"}`}), "invalid id"},
		{"no modified", makeZip(t, map[string]string{"GO-1.json": `{"id":"GO-1"}`}), "no modified"},
		{"oversize", makeZip(t, map[string]string{"GO-2099-0001.json": big}), "more than"},
	} {
		dir := filepath.Join(t.TempDir(), "db")
		err := BuildVulnDB(tc.zip, dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
		if _, statErr := os.Stat(dir); !os.IsNotExist(statErr) {
			t.Errorf("%s: a failed build left %s behind", tc.name, dir)
		}
	}
	if err := BuildVulnDB(notZip, ""); err == nil {
		t.Error("empty output directory: no error")
	}
}

func TestBuildVulnDBFromSnapshot(t *testing.T) {
	zp := osvZip(t, Snapshot20250101)
	dir := filepath.Join(t.TempDir(), "db")
	if err := BuildVulnDB(zp, dir); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(zp)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var latest time.Time
	n := 0
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		n++
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Modified time.Time `json:"modified"`
		}
		err = json.NewDecoder(rc).Decode(&rec)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if rec.Modified.After(latest) {
			latest = rec.Modified
		}
	}
	var vulns []vulnMeta
	readJSON(t, filepath.Join(dir, "index", "vulns.json"), &vulns)
	ids, _ := os.ReadDir(filepath.Join(dir, "ID"))
	if len(vulns) != n || len(ids) != n || n != 1743 {
		t.Errorf("records: zip %d, vulns index %d, ID files %d; want 1743 each", n, len(vulns), len(ids))
	}
	var db dbMeta
	readJSON(t, filepath.Join(dir, "index", "db.json"), &db)
	if !db.Modified.Equal(latest) {
		t.Errorf("db modified %v, want latest record modification %v", db.Modified, latest)
	}
	var mods []moduleMeta
	readJSON(t, filepath.Join(dir, "index", "modules.json"), &mods)
	found := false
	for _, m := range mods {
		if m.Path != "golang.org/x/text" {
			continue
		}
		for _, v := range m.Vulns {
			if v.ID == "GO-2021-0113" {
				found = v.Fixed == "0.3.7"
			}
		}
	}
	if !found {
		t.Error("modules index lacks golang.org/x/text GO-2021-0113 fixed in 0.3.7")
	}
}

// TestBuildCached builds every fixture into a fresh directory, checks that
// each binary links the modules its go.mod pins, and that a second call
// reuses the binaries untouched. It needs the Go module proxy (or a warm
// module cache).
func TestBuildCached(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cache := t.TempDir()
	progs, err := Build(ctx, cache)
	if err != nil {
		t.Fatalf("Build (needs the Go module proxy): %v", err)
	}
	var names []string
	mtimes := map[string]time.Time{}
	for _, p := range progs {
		names = append(names, p.Name)
		fi, err := os.Stat(p.Path)
		if err != nil {
			t.Fatal(err)
		}
		mtimes[p.Path] = fi.ModTime()
		for mod, ver := range directRequires(t, p.Name) {
			if got := p.Modules[mod]; got != ver {
				t.Errorf("%s: links %s at %q, want %q (is the module used?)", p.Name, mod, got, ver)
			}
		}
	}
	if !reflect.DeepEqual(names, wantPrograms) {
		t.Fatalf("built %v, want %v", names, wantPrograms)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(cache, "src-*")); len(leftovers) > 0 {
		t.Errorf("scratch directories left behind: %v", leftovers)
	}

	again, err := Build(ctx, cache)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, progs) {
		t.Errorf("second Build returned %+v, want %+v", again, progs)
	}
	for _, p := range again {
		fi, err := os.Stat(p.Path)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(mtimes[p.Path]) {
			t.Errorf("%s was rebuilt: mtime %v, was %v", p.Name, fi.ModTime(), mtimes[p.Path])
		}
	}

	// A damaged cached binary is rebuilt.
	victim := progs[0].Path
	if err := os.WriteFile(victim, []byte("garbage"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(ctx, cache); err != nil {
		t.Fatal(err)
	}
	if _, err := linkedModules(victim); err != nil {
		t.Errorf("damaged binary not rebuilt: %v", err)
	}
}

// TestScanSnapshots runs the official govulncheck on every fixture against
// all three OSV snapshots, at module and at symbol level, and compares
// with the recorded tables.
func TestScanSnapshots(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPING govulncheck scans in -short mode: they install govulncheck " +
			GovulncheckVersion + " from the module proxy and scan every fixture against every OSV snapshot")
	}
	zips := map[string]string{}
	for _, s := range Snapshots() {
		zips[s] = osvZip(t, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cache := DefaultCacheDir()
	gv, err := Govulncheck(ctx, cache)
	if err != nil {
		t.Fatalf("install govulncheck (needs the Go module proxy): %v", err)
	}
	if again, err := Govulncheck(ctx, cache); err != nil || again != gv {
		t.Fatalf("second Govulncheck = %q, %v; want the cached %q", again, err, gv)
	}
	progs, err := Build(ctx, cache)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	got := map[string]map[string][]string{}
	for _, s := range Snapshots() {
		db := filepath.Join(tmp, s)
		if err := BuildVulnDB(zips[s], db); err != nil {
			t.Fatal(err)
		}
		for _, p := range progs {
			ids, err := ScanIDs(ctx, gv, db, p.Path)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := Expected(p.Name, s)
			if !reflect.DeepEqual(ids, want) {
				t.Errorf("%s against %s: govulncheck reports %q, want %q", p.Name, s, ids, want)
			}
			if got[p.Name] == nil {
				got[p.Name] = map[string][]string{}
			}
			got[p.Name][s] = ids
			sym, err := ScanLevelIDs(ctx, gv, db, p.Path, ScanSymbol)
			if err != nil {
				t.Fatal(err)
			}
			wantSym, _ := ExpectedSymbol(p.Name, s)
			if !reflect.DeepEqual(sym, wantSym) {
				t.Errorf("%s against %s: govulncheck -scan symbol reports %q, want %q", p.Name, s, sym, wantSym)
			}
		}
	}
	// The property the certifier's revocation test relies on: "recent" is
	// clean in the first snapshot and gains advisories in each later one.
	r := got["recent"]
	if len(r[Snapshot20250101]) != 0 || len(r[Snapshot20250701]) == 0 || len(r[Snapshot20260821]) <= len(r[Snapshot20250701]) {
		t.Errorf("recent: %d, %d, %d advisories; want 0, then more, then more still",
			len(r[Snapshot20250101]), len(r[Snapshot20250701]), len(r[Snapshot20260821]))
	}

	if _, err := ScanIDs(ctx, gv, t.TempDir(), progs[0].Path); err == nil {
		t.Error("scan against a directory that is no database: no error")
	}
	if _, err := ScanIDs(ctx, gv, filepath.Join(tmp, Snapshot20250101), filepath.Join(tmp, "missing")); err == nil {
		t.Error("scan of a missing binary: no error")
	}
	// govulncheck rejects a file that is not a Go binary.
	notBin := filepath.Join(tmp, "notbin")
	if err := os.WriteFile(notBin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ScanIDs(ctx, gv, filepath.Join(tmp, Snapshot20250101), notBin); err == nil {
		t.Error("scan of a non-Go file: no error")
	}
}
