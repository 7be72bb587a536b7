package certd

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/inventory"
	"github.com/ztota/ztota/internal/osvdb"
	"github.com/ztota/ztota/internal/vulnfixture"
	"github.com/ztota/ztota/internal/vulnref"
)

// TestSymbolInspectionTimeAgainstGovulncheck measures, in one run, the
// symbol-level inspection of each fixture binary (inventory with the
// function table, then matching against the loaded 2026-08-21 snapshot)
// and govulncheck v1.9.0's symbol scan of the same binary against the
// same snapshot, and logs the medians and their ratio. It also checks the
// two agree. Timing is only reported, never asserted.
func TestSymbolInspectionTimeAgainstGovulncheck(t *testing.T) {
	if testing.Short() || os.Getenv("ZTOTA_BENCH") == "" {
		t.Skip("SKIPPING: timing comparison; set ZTOTA_BENCH=1 to run")
	}
	data := osvData(t)
	progs := programs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	gv, err := vulnfixture.Govulncheck(ctx, vulnfixture.DefaultCacheDir())
	if err != nil {
		t.Fatalf("install govulncheck (needs the Go module proxy): %v", err)
	}
	snap := vulnfixture.Snapshot20260821
	dbDir := filepath.Join(t.TempDir(), snap)
	if err := vulnfixture.BuildVulnDB(filepath.Join(data, snap+".zip"), dbDir); err != nil {
		t.Fatal(err)
	}
	loadStart := time.Now()
	db, err := osvdb.Load(filepath.Join(data, snap+".zip"), osvdb.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	load := time.Since(loadStart)
	const runs = 5
	median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	var sumOurs, sumTheirs time.Duration
	for _, name := range []string{"netold", "recent", "cryptoold", "textold"} {
		path := progs[name].Path
		var ours, theirs []time.Duration
		var present, sym []string
		for i := 0; i < runs; i++ {
			start := time.Now()
			inv, err := inventory.FromFile(path, inventory.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			present = present[:0]
			for _, f := range db.MatchAllSymbols(inv.Components, inv.Symbols) {
				if f.Level == vulnref.LevelPresent {
					present = append(present, f.ID)
				}
			}
			ours = append(ours, time.Since(start))
			start = time.Now()
			if sym, err = vulnfixture.ScanLevelIDs(ctx, gv, dbDir, path, vulnfixture.ScanSymbol); err != nil {
				t.Fatal(err)
			}
			theirs = append(theirs, time.Since(start))
		}
		if !slices.Equal(uniq(present), sym) {
			t.Errorf("%s: verifier %v, govulncheck %v", name, uniq(present), sym)
		}
		fi, _ := os.Stat(path)
		mo, mt := median(ours), median(theirs)
		sumOurs, sumTheirs = sumOurs+mo, sumTheirs+mt
		t.Logf("%-9s %5.1f MB: verifier %8v, govulncheck %8v, ratio %.1fx", name, float64(fi.Size())/1e6,
			mo.Round(10*time.Microsecond), mt.Round(10*time.Microsecond), float64(mt)/float64(mo))
	}
	t.Logf("all four: verifier %v, govulncheck %v, ratio %.1fx; loading the snapshot once takes the verifier %v",
		sumOurs.Round(10*time.Microsecond), sumTheirs.Round(10*time.Microsecond), float64(sumTheirs)/float64(sumOurs), load.Round(time.Millisecond))
}
