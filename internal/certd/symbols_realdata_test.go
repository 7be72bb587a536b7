package certd

import (
	"path/filepath"
	"slices"
	"sort"
	"testing"

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
