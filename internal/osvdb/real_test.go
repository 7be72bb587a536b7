package osvdb

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ztota/ztota/internal/vulnref"
)

func TestLoadRealSnapshots(t *testing.T) {
	want := map[string]int{snap2025a: 1743, snap2025b: 2033, snap2026: 4291}
	ids := map[string]string{}
	for name, n := range want {
		db := snapshot(t, name)
		if db.Len() != n {
			t.Errorf("%s: Len = %d, want %d", name, db.Len(), n)
		}
		if rej := db.Rejected(); len(rej) != 0 {
			t.Errorf("%s: %d records rejected, first: %v", name, len(rej), rej[0])
		}
		if db.Packages() < 500 {
			t.Errorf("%s: only %d packages indexed", name, db.Packages())
		}
		if db.Source() != filepath.Join(dataDir(t), name) {
			t.Errorf("%s: Source = %q", name, db.Source())
		}
		if prev, dup := ids[db.ID()]; dup {
			t.Errorf("%s and %s share ID %s", prev, name, db.ID())
		}
		ids[db.ID()] = name
	}
	// The documented formula, computed independently of this package.
	if got, want := snapshot(t, snap2025a).ID(), "sha256:5d8d142016f8d801819c06f6eca73ea06c979a52601d3b5523be2615501cfd13"; got != want {
		t.Errorf("ID(%s) = %s, want %s", snap2025a, got, want)
	}
}

func TestIDStableAcrossReload(t *testing.T) {
	path := filepath.Join(dataDir(t), snap2025b)
	db1 := snapshot(t, snap2025b)
	db2, err := Load(path, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if db1.ID() != db2.ID() {
		t.Fatalf("ID changed across reload: %s vs %s", db1.ID(), db2.ID())
	}
}

// TestIDIndependentOfPacking re-packs a snapshot in reverse order without
// compression, and as a directory, and expects the same ID; one changed
// byte must change it.
func TestIDIndependentOfPacking(t *testing.T) {
	path := filepath.Join(dataDir(t), snap2025a)
	orig := snapshot(t, snap2025a)
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var entries []zipEntry
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, zipEntry{name: f.Name, data: b})
	}
	slices.Reverse(entries)
	repacked, err := loadZipBytes(makeZip(t, true, entries...), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if repacked.ID() != orig.ID() {
		t.Errorf("re-packed ID %s != original %s", repacked.ID(), orig.ID())
	}

	dir := t.TempDir()
	for _, e := range entries {
		if err := os.WriteFile(filepath.Join(dir, e.name), e.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fromDir, err := Load(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if fromDir.ID() != orig.ID() || fromDir.Len() != orig.Len() {
		t.Errorf("directory load: ID %s Len %d, want %s %d", fromDir.ID(), fromDir.Len(), orig.ID(), orig.Len())
	}

	// A whitespace change in one record is a content change.
	entries[0].data = append(bytes.Clone(entries[0].data), '\n')
	changed, err := loadZipBytes(makeZip(t, false, entries...), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if changed.ID() == orig.ID() {
		t.Error("ID unchanged after a record changed")
	}
	if d := Diff(orig, changed); len(d.Modified) != 1 || len(d.Added)+len(d.Removed)+len(d.Withdrawn) != 0 {
		t.Errorf("Diff after one change = %+v", d)
	}
}

func findingIDs(fs []vulnref.Finding) []string {
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.ID)
	}
	return ids
}

func findingByID(fs []vulnref.Finding, id string) (vulnref.Finding, bool) {
	for _, f := range fs {
		if f.ID == id {
			return f, true
		}
	}
	return vulnref.Finding{}, false
}

// TestKnownMatches checks real advisories at vulnerable versions and at
// their fixed versions.
func TestKnownMatches(t *testing.T) {
	db := snapshot(t, snap2026)
	go_ := func(name, version string) vulnref.Component {
		return vulnref.Component{Ecosystem: "Go", Name: name, Version: version}
	}
	tests := []struct {
		c         vulnref.Component
		id        string
		hit       bool
		fixed     string
		wantAlias string
	}{
		// golang.org/x/text: UTF-16 BOM infinite loop, fixed 0.3.3.
		{go_("golang.org/x/text", "0.3.2"), "GO-2020-0015", true, "0.3.3", "CVE-2020-14040"},
		{go_("golang.org/x/text", "v0.3.2"), "GO-2020-0015", true, "0.3.3", ""},
		{go_("golang.org/x/text", "0.3.3"), "GO-2020-0015", false, "", ""},
		{go_("golang.org/x/text", "0.3.7"), "GO-2022-1059", true, "0.3.8", ""},
		{go_("golang.org/x/text", "0.3.8"), "GO-2022-1059", false, "", ""},
		// golang.org/x/net: HPACK decoder CPU exhaustion, fixed 0.7.0.
		{go_("golang.org/x/net", "0.6.0"), "GO-2023-1571", true, "0.7.0", "CVE-2022-41723"},
		{go_("golang.org/x/net", "0.7.0"), "GO-2023-1571", false, "", ""},
		// ... and an older one fixed at a pseudo-version.
		{go_("golang.org/x/net", "0.0.0-20180724234803-3673e40ba225"), "GO-2022-0192", true, "0.0.0-20180925071336-cf3bd585ca2a", ""},
		{go_("golang.org/x/net", "0.0.0-20180925071336-cf3bd585ca2a"), "GO-2022-0192", false, "", ""},
		// golang.org/x/crypto: Terrapin, fixed 0.17.0.
		{go_("golang.org/x/crypto", "0.16.0"), "GO-2023-2402", true, "0.17.0", "CVE-2023-48795"},
		{go_("golang.org/x/crypto", "0.17.0"), "GO-2023-2402", false, "", ""},
		{go_("golang.org/x/crypto", "0.0.0-20200128174031-69ecbb4d6d5d"), "GO-2020-0012", true, "0.0.0-20200220183623-bac4c82f6975", ""},
		{go_("golang.org/x/crypto", "0.0.0-20200220183623-bac4c82f6975"), "GO-2020-0012", false, "", ""},
		// stdlib: the same HPACK issue, and an old Go 1.16 advisory.
		{go_("stdlib", "1.19.5"), "GO-2023-1571", true, "1.19.6", ""},
		{go_("stdlib", "go1.20"), "GO-2023-1571", true, "1.20.1", ""},
		{go_("stdlib", "1.20.1"), "GO-2023-1571", false, "", ""},
		{go_("stdlib", "1.16.0"), "GO-2021-0067", true, "1.16.1", ""},
		{go_("stdlib", "1.16.1"), "GO-2021-0067", false, "", ""},
		{go_("stdlib", "1.15.8"), "GO-2021-0067", false, "", ""},
		// A release candidate: introduced 1.27.0-0, fixed 1.27.0-rc.3.
		{go_("stdlib", "go1.27rc2"), "GO-2026-6218", true, "1.27.0-rc.3", ""},
		{go_("stdlib", "go1.27rc3"), "GO-2026-6218", false, "", ""},
		// Withdrawn records never match.
		{go_("k8s.io/kubernetes", "1.0.0"), "GO-2022-0617", false, "", ""},
	}
	for _, tc := range tests {
		fs := db.Match(tc.c)
		if !slices.IsSortedFunc(fs, func(a, b vulnref.Finding) int { return cmpString(a.ID, b.ID) }) {
			t.Errorf("%v: findings not sorted: %v", tc.c, findingIDs(fs))
		}
		f, ok := findingByID(fs, tc.id)
		if ok != tc.hit {
			t.Errorf("%s@%s: %s matched=%v, want %v (all: %v)", tc.c.Name, tc.c.Version, tc.id, ok, tc.hit, findingIDs(fs))
			continue
		}
		if !ok {
			continue
		}
		if f.Fixed != tc.fixed {
			t.Errorf("%s@%s: %s Fixed = %q, want %q", tc.c.Name, tc.c.Version, tc.id, f.Fixed, tc.fixed)
		}
		if f.Package != tc.c.Name || f.Version != tc.c.Version || f.Ecosystem != "Go" || f.Summary == "" {
			t.Errorf("%s: finding fields %+v", tc.id, f)
		}
		if f.Severity != vulnref.SeverityUnknown {
			t.Errorf("%s: Severity = %q, want UNKNOWN for the Go database", tc.id, f.Severity)
		}
		if tc.wantAlias != "" && !slices.Contains(f.Aliases, tc.wantAlias) {
			t.Errorf("%s: aliases %v lack %s", tc.id, f.Aliases, tc.wantAlias)
		}
	}
	if r, ok := db.Record("GO-2022-0617"); !ok || !r.Withdrawn {
		t.Errorf("GO-2022-0617 should be present and withdrawn: %v %v", ok, r)
	}
	// The 2025-01-01 snapshot predates GO-2025-3487 (x/crypto, fixed 0.35.0).
	old := snapshot(t, snap2025a).Match(go_("golang.org/x/crypto", "0.34.0"))
	newer := db.Match(go_("golang.org/x/crypto", "0.34.0"))
	if _, ok := findingByID(old, "GO-2025-3487"); ok {
		t.Error("GO-2025-3487 found in the 2025-01-01 snapshot")
	}
	if _, ok := findingByID(newer, "GO-2025-3487"); !ok {
		t.Errorf("GO-2025-3487 not found in the 2026 snapshot: %v", findingIDs(newer))
	}
	if len(newer) <= len(old) {
		t.Errorf("newer snapshot finds %d advisories, older %d", len(newer), len(old))
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestDiffRealSnapshots(t *testing.T) {
	a, b := snapshot(t, snap2025a), snapshot(t, snap2025b)
	d := Diff(a, b)
	// Counted independently from the unpacked archives.
	if len(d.Added) != 290 || len(d.Removed) != 0 || len(d.Modified) != 8 || len(d.Withdrawn) != 0 || len(d.Packages) != 224 {
		t.Errorf("Diff counts: added %d removed %d modified %d withdrawn %d packages %d; want 290 0 8 0 224",
			len(d.Added), len(d.Removed), len(d.Modified), len(d.Withdrawn), len(d.Packages))
	}
	for _, id := range []string{"GO-2024-3355", "GO-2025-3487", "GO-2025-3757"} {
		if !slices.Contains(d.Added, id) {
			t.Errorf("Added lacks %s", id)
		}
	}
	if !slices.IsSorted(d.Added) || !slices.IsSorted(d.Modified) {
		t.Error("id lists not sorted")
	}
	if !slices.Contains(d.Packages, vulnref.Key{Ecosystem: "Go", Name: "golang.org/x/crypto"}) {
		t.Error("Packages lacks golang.org/x/crypto (GO-2025-3487 was added)")
	}
	for i := 1; i < len(d.Packages); i++ {
		p, q := d.Packages[i-1], d.Packages[i]
		if p.Ecosystem > q.Ecosystem || (p.Ecosystem == q.Ecosystem && p.Name >= q.Name) {
			t.Fatalf("Packages not sorted/deduplicated at %d: %v %v", i, p, q)
		}
	}
	if len(d.Added) != b.Len()-a.Len() {
		t.Errorf("added %d but sizes differ by %d", len(d.Added), b.Len()-a.Len())
	}
	if !Diff(a, a).Empty() {
		t.Error("Diff of a snapshot with itself is not empty")
	}
	rev := Diff(b, a)
	if !slices.Equal(rev.Removed, d.Added) || !slices.Equal(rev.Modified, d.Modified) {
		t.Error("reverse Diff is not the mirror image")
	}
}
