package certd

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/inventory"
	"github.com/ztota/ztota/internal/osvdb"
	"github.com/ztota/ztota/internal/vulnfixture"
	"github.com/ztota/ztota/internal/vulnref"
)

// TestSymbolLevelAgreesWithGovulncheck compares, for every fixture program
// and every snapshot, the verifier's two levels with govulncheck v1.9.0 in
// binary mode: all findings with its module-level scan, the present ones
// with its symbol-level scan (vulnfixture.Expected and ExpectedSymbol,
// which vulnfixture's own test re-checks against live runs). It logs the
// module-level and symbol-level counts.
func TestSymbolLevelAgreesWithGovulncheck(t *testing.T) {
	if raceEnabled {
		t.Skip("SKIPPING under the race detector: no concurrency; runs in the plain test run")
	}
	data := osvData(t)
	progs := programs(t)
	names := make([]string, 0, len(progs))
	for n := range progs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, snap := range vulnfixture.Snapshots() {
		db, err := osvdb.Load(filepath.Join(data, snap+".zip"), osvdb.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			inv, err := inventory.FromFile(progs[name].Path, inventory.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if inv.Symbols[inventory.LocationArtifact] == nil {
				t.Fatalf("%s: no function table read; notes %q", name, inv.Notes)
			}
			var all, present []string
			for _, f := range db.MatchAllSymbols(inv.Components, inv.Symbols) {
				all = append(all, f.ID)
				if f.Level == vulnref.LevelPresent {
					present = append(present, f.ID)
				} else if f.Level != vulnref.LevelModuleOnly {
					t.Errorf("%s/%s: %s has level %q", name, snap, f.ID, f.Level)
				}
			}
			all, present = uniq(all), uniq(present)
			wantAll, _ := vulnfixture.Expected(name, snap)
			wantSym, _ := vulnfixture.ExpectedSymbol(name, snap)
			if !slices.Equal(all, wantAll) {
				t.Errorf("%s against %s: module level %q, govulncheck %q", name, snap, all, wantAll)
			}
			if !slices.Equal(present, wantSym) {
				t.Errorf("%s against %s: present %q, govulncheck -scan symbol %q", name, snap, present, wantSym)
			}
			t.Logf("%-9s %s: module level %2d, present %2d", name, snap, len(all), len(present))
		}
	}
}

func uniq(ids []string) []string {
	out := []string{}
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// TestStrippedBinaryCountsEverythingPresent strips the symbol table of
// netold (the section header of .symtab made SHT_NULL, as `strip` leaves
// no symbols): without go:func.* the inline trees cannot be read, so the
// verifier claims no precision — every finding is present, with a note —
// and govulncheck, which falls back the same way, reports every
// module-level advisory at symbol level too.
func TestStrippedBinaryCountsEverythingPresent(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("SKIPPING: runs govulncheck")
	}
	data := osvData(t)
	b := readFile(t, programs(t)["netold"].Path)
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	shoff, shentsize := f.ByteOrder.Uint64(b[0x28:]), uint64(f.ByteOrder.Uint16(b[0x3a:]))
	patched := false
	for i, s := range f.Sections {
		if s.Type == elf.SHT_SYMTAB {
			f.ByteOrder.PutUint32(b[shoff+uint64(i)*shentsize+4:], uint32(elf.SHT_NULL))
			patched = true
		}
	}
	if !patched {
		t.Fatal("netold has no symbol table to strip")
	}
	stripped := filepath.Join(t.TempDir(), "netold-stripped")
	if err := os.WriteFile(stripped, b, 0o755); err != nil {
		t.Fatal(err)
	}
	snap := vulnfixture.Snapshot20250101
	db, err := osvdb.Load(filepath.Join(data, snap+".zip"), osvdb.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.FromFile(stripped, inventory.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var present []string
	for _, f := range db.MatchAllSymbols(inv.Components, inv.Symbols) {
		if f.Level != vulnref.LevelPresent || f.LevelNote != osvdb.NoteNoSymbolTable {
			t.Errorf("%s: level %q note %q, want present without a symbol table", f.ID, f.Level, f.LevelNote)
		}
		present = append(present, f.ID)
	}
	want := mustExpected(t, "netold", snap)
	if !slices.Equal(uniq(present), want) {
		t.Errorf("present %v, want every module-level finding %v", uniq(present), want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	gv, err := vulnfixture.Govulncheck(ctx, vulnfixture.DefaultCacheDir())
	if err != nil {
		t.Fatalf("install govulncheck (needs the Go module proxy): %v", err)
	}
	dbDir := filepath.Join(t.TempDir(), snap)
	if err := vulnfixture.BuildVulnDB(filepath.Join(data, snap+".zip"), dbDir); err != nil {
		t.Fatal(err)
	}
	sym, err := vulnfixture.ScanLevelIDs(ctx, gv, dbDir, stripped, vulnfixture.ScanSymbol)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sym, want) {
		t.Errorf("govulncheck -scan symbol on the stripped binary: %v, want %v", sym, want)
	}
}
