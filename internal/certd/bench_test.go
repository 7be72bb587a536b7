package certd

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/osvdb"
	"github.com/ztota/ztota/internal/vulnfixture"
	"github.com/ztota/ztota/internal/vulnref"
)

// addedAdvisory is the one advisory the re-inspection benchmark adds and
// removes: GO-2026-5970 (golang.org/x/text), absent from 2025-07-01.
const addedAdvisory = "GO-2026-5970"

// oneAdvisoryVariants returns the 2025-07-01 snapshot (a) and the same
// with addedAdvisory taken from 2026-08-21 (b).
func oneAdvisoryVariants(tb testing.TB) (a, b *osvdb.DB) {
	tb.Helper()
	data := osvData(tb)
	base := readFile(tb, filepath.Join(data, vulnfixture.Snapshot20250701+".zip"))
	newer := readFile(tb, filepath.Join(data, vulnfixture.Snapshot20260821+".zip"))
	zr, err := zip.NewReader(bytes.NewReader(newer), int64(len(newer)))
	if err != nil {
		tb.Fatal(err)
	}
	var rec []byte
	for _, f := range zr.File {
		if f.Name == addedAdvisory+".json" {
			rc, _ := f.Open()
			rec, _ = io.ReadAll(rc)
			rc.Close()
		}
	}
	if rec == nil {
		tb.Fatalf("%s not in the 2026 snapshot", addedAdvisory)
	}
	br, err := zip.NewReader(bytes.NewReader(base), int64(len(base)))
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range br.File {
		if err := zw.Copy(f); err != nil {
			tb.Fatal(err)
		}
	}
	w, _ := zw.Create(addedAdvisory + ".json")
	w.Write(rec)
	zw.Close()
	if a, err = osvdb.LoadZip(bytes.NewReader(base), int64(len(base)), "a", osvdb.DefaultLimits()); err != nil {
		tb.Fatal(err)
	}
	if b, err = osvdb.LoadZip(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "b", osvdb.DefaultLimits()); err != nil {
		tb.Fatal(err)
	}
	return a, b
}

// catalogue opens a service on the 2025-07-01 snapshot holding affected
// real artifacts (bundles of the "textnew" program, which links
// golang.org/x/text v0.21.0) and size-affected certified artifacts that
// hold other packages, inserted directly into the same tables.
func catalogue(tb testing.TB, size, affected int) *Service {
	tb.Helper()
	data := osvData(tb)
	src := filepath.Join(tb.TempDir(), "go.zip")
	copyFile(tb, filepath.Join(data, vulnfixture.Snapshot20250701+".zip"), src)
	s := newService(tb, src, nil)
	bin := readFile(tb, programs(tb)["textnew"].Path)
	for i := 0; i < affected; i++ {
		out := submitBytes(tb, s, fmt.Sprintf("textnew-%d", i),
			tarGz(tb, map[string][]byte{"bin/textnew": bin, "VERSION": []byte(fmt.Sprint(i))}), nil)
		if out.State != StateCertified {
			tb.Fatalf("textnew bundle %d: %s", i, out.State)
		}
	}
	ctx := context.Background()
	now := time.Now().UTC()
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		for i := 0; i < size-affected; i++ {
			sum := sha256.Sum256([]byte(fmt.Sprint("filler", i)))
			a := &artifactRow{
				SHA256: hex.EncodeToString(sum[:]), Name: fmt.Sprint("filler-", i), Size: 1, Kind: "go-binary",
				VerifierVersion: s.verifier, State: StateCertified, Current: "sha256:" + hex.EncodeToString(sum[:]),
				Created: now, Updated: now,
				Components: []vulnref.Component{
					{Ecosystem: "Go", Name: "stdlib", Version: "1.26.8"},
					{Ecosystem: "Go", Name: fmt.Sprintf("example.com/filler/m%d", i%500), Version: "1.0.0"},
					{Ecosystem: "Go", Name: "golang.org/x/sys", Version: "0.30.0"},
				},
			}
			if err := putArtifact(ctx, tx, a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestReinspectionFollowsTheAffectedSet: a one-advisory change re-inspects
// exactly the artifacts holding the package, whatever the catalogue size.
func TestReinspectionFollowsTheAffectedSet(t *testing.T) {
	a, b := oneAdvisoryVariants(t)
	const affected = 3
	s := catalogue(t, 2000, affected)
	ctx := context.Background()
	rep, err := s.apply(ctx, 0, b, "b", "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Added != 1 || rep.Packages != 1 || rep.Reinspected != affected || len(rep.Revoked) != affected {
		t.Fatalf("adding %s: %+v; want 1 added, 1 package, %d re-inspected and revoked", addedAdvisory, rep, affected)
	}
	rep, err = s.apply(ctx, 0, a, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Removed != 1 || rep.Reinspected != affected || len(rep.Recertified) != affected {
		t.Fatalf("removing %s: %+v; want %d re-inspected and recertified", addedAdvisory, rep, affected)
	}
}

// BenchmarkReinspectOneAdvisory applies a one-advisory change (adding,
// then removing GO-2026-5970) to catalogues of 1,000 and 10,000 certified
// artifacts of which the same 10 are affected, alternating between the
// two in the same run, and reports each time per update and their ratio:
// near 1 means the work follows the affected set, not the catalogue.
func BenchmarkReinspectOneAdvisory(b *testing.B) {
	va, vb := oneAdvisoryVariants(b)
	const affected = 10
	small := catalogue(b, 1000, affected)
	large := catalogue(b, 10000, affected)
	ctx := context.Background()
	var tSmall, tLarge time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		next := vb
		if i%2 == 1 {
			next = va
		}
		for _, c := range []struct {
			s *Service
			t *time.Duration
		}{{small, &tSmall}, {large, &tLarge}} {
			start := time.Now()
			rep, err := c.s.apply(ctx, 0, next, fmt.Sprint(i), "")
			if err != nil {
				b.Fatal(err)
			}
			*c.t += time.Since(start)
			if rep.Reinspected != affected {
				b.Fatalf("re-inspected %d, want %d", rep.Reinspected, affected)
			}
		}
	}
	b.ReportMetric(float64(tSmall.Milliseconds())/float64(b.N), "ms/update@1k")
	b.ReportMetric(float64(tLarge.Milliseconds())/float64(b.N), "ms/update@10k")
	b.ReportMetric(float64(tLarge)/float64(tSmall), "ratio_10k/1k")
}
