package osvdb

import (
	"archive/zip"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/osv-scalibr/semantic"

	"github.com/ztota/ztota/internal/vulnref"
)

// inventory builds n components from the snapshot's real packages: a
// quarter at a low version (vulnerable for most records), a quarter at a
// version some record names as fixed, a quarter at a high version with a
// leading "v", and a quarter of packages the database does not know.
func inventory(db *DB, n int) []vulnref.Component {
	keys := make([]vulnref.Key, 0, len(db.index))
	for k := range db.index {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Name < keys[j].Name })
	var inv []vulnref.Component
	for i := 0; len(inv) < n; i++ {
		k := keys[i%len(keys)]
		c := vulnref.Component{Ecosystem: k.Ecosystem, Name: k.Name}
		switch i % 4 {
		case 0:
			c.Version = "0.0.1"
		case 1:
			c.Version = "1.0.0"
			for _, e := range db.index[k] {
				for _, r := range e.ranges {
					for _, ev := range r.events {
						if ev.kind == evFixed {
							c.Version = ev.raw
						}
					}
				}
			}
		case 2:
			c.Version = "v99.1.0"
		case 3:
			c.Name = fmt.Sprintf("unknown.example/pkg%d", i)
			c.Version = "1.2.3"
		}
		inv = append(inv, c)
	}
	return inv
}

// BenchmarkMatch2000 matches a 2,000-component inventory against the full
// 2026 snapshot. The reference is a plain map lookup of the same keys plus
// semantic.Parse of each version; the two passes alternate within each
// iteration so that both see the same machine load. ratio is matching
// throughput over reference throughput.
func BenchmarkMatch2000(b *testing.B) {
	db := snapshot(b, snap2026)
	inv := inventory(db, 2000)
	ref := make(map[vulnref.Key]int, len(db.index))
	for k, es := range db.index {
		ref[k] = len(es)
	}
	var matchDur, refDur time.Duration
	findings, hits := 0, 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		findings = 0
		for _, c := range inv {
			findings += len(db.Match(c))
		}
		matchDur += time.Since(start)

		b.StopTimer()
		start = time.Now()
		hits = 0
		for _, c := range inv {
			if n, ok := ref[c.Key()]; ok {
				hits += n
			}
			if v, err := semantic.Parse(c.Version, c.Ecosystem); err == nil && v != nil {
				hits++
			}
		}
		refDur += time.Since(start)
		b.StartTimer()
	}
	if findings == 0 || hits == 0 {
		b.Fatalf("inventory found nothing (findings %d, hits %d)", findings, hits)
	}
	total := float64(b.N * len(inv))
	pkgs := total / matchDur.Seconds()
	refPkgs := total / refDur.Seconds()
	b.ReportMetric(pkgs, "pkgs/s")
	b.ReportMetric(refPkgs, "ref-pkgs/s")
	b.ReportMetric(pkgs/refPkgs, "ratio")
	b.ReportMetric(float64(findings), "findings")
}

// BenchmarkLoad2026 loads the 2026 snapshot. The reference inflates and
// reads every entry of the same zip without parsing, timed in the same
// run; ratio is load time over that.
func BenchmarkLoad2026(b *testing.B) {
	path := filepath.Join(dataDir(b), snap2026)
	var loadDur, refDur time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		db, err := Load(path, DefaultLimits())
		if err != nil || db.Len() != 4291 {
			b.Fatalf("load: %v", err)
		}
		loadDur += time.Since(start)

		b.StopTimer()
		start = time.Now()
		zr, err := zip.OpenReader(path)
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, rc)
			rc.Close()
		}
		zr.Close()
		refDur += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(loadDur.Milliseconds())/float64(b.N), "ms/load")
	b.ReportMetric(float64(refDur.Microseconds())/1000/float64(b.N), "ref-ms/inflate")
	b.ReportMetric(float64(loadDur)/float64(refDur), "ratio")
}
