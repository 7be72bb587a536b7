package certd

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certverify"
	"github.com/ztota/ztota/internal/vulnfixture"
	"github.com/ztota/ztota/internal/vulnref"
)

// blockModuleOnly is a policy under which module-only findings block as
// present ones do: the verdicts of a module-level verifier.
const blockModuleOnly = `{"version":1,"name":"module-level","reject":"any","module_only":{"all":true}}`

// TestNewVerifierCertifiesWhatAbsentCodeRejected performs the upgrade
// path: cryptoold (x/crypto with four advisories against 2025-01-01, none
// of whose vulnerable symbols is linked in) is rejected by a service that
// blocks at module level, as the verifier before 1.2.0 did. The service
// restarts with the default policy and a new verifier version: every
// artifact, the rejected one included, is re-inspected from its stored
// bytes, and cryptoold is certified. The certificate lists the four
// findings as module-only and not blocking, and verifies offline with its
// log receipt. netold, which holds vulnerable symbols, stays rejected.
func TestNewVerifierCertifiesWhatAbsentCodeRejected(t *testing.T) {
	data := osvData(t)
	progs := programs(t)
	src := filepath.Join(data, vulnfixture.Snapshot20250101+".zip")
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: dir, OSV: []string{src}, Policy: []byte(blockModuleOnly), VerifierVersion: "1.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	crypto := submitFile(t, s, "cryptoold", progs["cryptoold"].Path)
	net := submitFile(t, s, "netold", progs["netold"].Path)
	wantIDs := mustExpected(t, "cryptoold", vulnfixture.Snapshot20250101)
	if crypto.State != StateRejected || !slices.Equal(crypto.Result.Advisories, wantIDs) {
		t.Fatalf("cryptoold under a module-level policy: %s for %v, want rejected for %v", crypto.State, crypto.Result.Advisories, wantIDs)
	}
	if net.State != StateRejected {
		t.Fatalf("netold: %s", net.State)
	}
	s.Close()

	s, err = Open(ctx, Config{DataDir: dir, OSV: []string{src}, Policy: []byte(`{"version":2,"name":"default","reject":"any"}`)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Lookup(ctx, crypto.Artifact)
	if err != nil {
		t.Fatal(err)
	}
	if out.State != StateCertified || out.Result.Kind != attest.KindCertificate {
		t.Fatalf("cryptoold after the new verifier: %s (%s), want certified", out.State, out.Result.Kind)
	}
	res, err := attest.ReadResult(out.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verifier.Version != VerifierVersion {
		t.Errorf("certificate by verifier %s, want %s", res.Verifier.Version, VerifierVersion)
	}
	var ids []string
	for _, f := range res.Findings {
		ids = append(ids, f.ID)
		if f.Level != vulnref.LevelModuleOnly || f.Blocking || len(f.Symbols) != 0 {
			t.Errorf("certificate finding %s: level %q blocking %v symbols %v; want module-only, not blocking", f.ID, f.Level, f.Blocking, f.Symbols)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("certificate lists %v, want the module-only %v", ids, wantIDs)
	}
	b, err := s.Bundle(ctx, out.Result.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certverify.Verify(b.Envelope, certverify.Options{Root: s.root, ArtifactSHA256: crypto.Artifact,
		Receipt: &b.Receipt, Kind: b.Kind, RequireReceipt: true}); err != nil {
		t.Errorf("offline verification of the new certificate: %v", err)
	}
	if out, err := s.Lookup(ctx, net.Artifact); err != nil || out.State != StateRejected {
		t.Errorf("netold after the new verifier: %v, %v; want still rejected", out.State, err)
	}
}

// TestBundleFindingsNameTheirSymbols submits netold inside a tar.gz
// bundle: the findings whose vulnerable functions are linked in are
// present and name them (package path and symbol), the others are
// module-only, and exactly the present ones block.
func TestBundleFindingsNameTheirSymbols(t *testing.T) {
	data := osvData(t)
	progs := programs(t)
	s := newService(t, filepath.Join(data, vulnfixture.Snapshot20250101+".zip"), nil)
	out := submitBytes(t, s, "bundle", tarGz(t, map[string][]byte{"usr/bin/netold": readFile(t, progs["netold"].Path)}), nil)
	if out.State != StateRejected {
		t.Fatalf("state %s", out.State)
	}
	wantPresent := mustExpectedSymbol(t, "netold", vulnfixture.Snapshot20250101)
	if !slices.Equal(out.Result.Advisories, wantPresent) {
		t.Errorf("rejected for %v, want the present %v", out.Result.Advisories, wantPresent)
	}
	moduleOnly := 0
	for _, f := range out.Findings {
		switch f.Level {
		case vulnref.LevelPresent:
			if len(f.Symbols) == 0 || !f.Blocking {
				t.Errorf("present %s: symbols %v blocking %v", f.ID, f.Symbols, f.Blocking)
			}
			for _, sym := range f.Symbols {
				if !strings.HasPrefix(sym, f.Package+"/") && !strings.HasPrefix(sym, f.Package+".") {
					t.Errorf("%s: symbol %q outside module %s", f.ID, sym, f.Package)
				}
			}
		case vulnref.LevelModuleOnly:
			moduleOnly++
			if f.Blocking {
				t.Errorf("module-only %s blocks", f.ID)
			}
		default:
			t.Errorf("%s: level %q", f.ID, f.Level)
		}
	}
	all := mustExpected(t, "netold", vulnfixture.Snapshot20250101)
	if moduleOnly != len(all)-len(wantPresent) {
		t.Errorf("%d module-only findings, want %d", moduleOnly, len(all)-len(wantPresent))
	}
}

// TestCertifyOwnBinary builds the ztota binary and certifies it with each
// real snapshot under the default policy, printing its findings. It passes
// unless a vulnerable symbol is truly linked into ztota, and then names it.
// The findings at both levels are also compared with govulncheck's module
// and symbol scans of the same binary.
func TestCertifyOwnBinary(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("SKIPPING: builds the ztota binary (not in -short mode nor under the race detector)")
	}
	data := osvData(t)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "ztota")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ztota") // as internal/e2e builds it, sharing the build cache
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building ztota: %v\n%s", err, out)
	}
	gv, err := vulnfixture.Govulncheck(ctx, vulnfixture.DefaultCacheDir())
	if err != nil {
		t.Fatalf("install govulncheck (needs the Go module proxy): %v", err)
	}
	for _, snap := range vulnfixture.Snapshots() {
		t.Run(snap, func(t *testing.T) {
			s := newService(t, filepath.Join(data, snap+".zip"), nil)
			out := submitFile(t, s, "ztota", bin)
			dbDir := filepath.Join(t.TempDir(), snap)
			if err := vulnfixture.BuildVulnDB(filepath.Join(data, snap+".zip"), dbDir); err != nil {
				t.Fatal(err)
			}
			var all, sym []string
			for _, f := range out.Findings {
				all = append(all, f.ID)
				if f.Level == vulnref.LevelPresent {
					sym = append(sym, f.ID)
				}
			}
			for level, ours := range map[string][]string{vulnfixture.ScanModule: uniq(all), vulnfixture.ScanSymbol: uniq(sym)} {
				theirs, err := vulnfixture.ScanLevelIDs(ctx, gv, dbDir, bin, level)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ours, theirs) {
					t.Errorf("%s level: the verifier finds %v in ztota, govulncheck %v", level, ours, theirs)
				}
			}
			present := 0
			for _, f := range out.Findings {
				t.Logf("%s %s@%s: %s%s %v", f.ID, f.Package, f.Version, f.Level, map[bool]string{true: " BLOCKING"}[f.Blocking], f.Symbols)
				if f.Level != vulnref.LevelModuleOnly {
					present++
					t.Errorf("ztota links vulnerable code: %s in %s@%s (symbols %v; %s)", f.ID, f.Package, f.Version, f.Symbols, f.LevelNote)
				}
			}
			t.Logf("ztota against %s: %s, %d findings, %d present", snap, out.State, len(out.Findings), present)
			if present == 0 && out.State != StateCertified {
				t.Errorf("state %s without a present finding", out.State)
			}
		})
	}
}
