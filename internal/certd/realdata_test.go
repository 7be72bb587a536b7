package certd

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certverify"
	"github.com/ztota/ztota/internal/inventory"
	"github.com/ztota/ztota/internal/osvdb"
	"github.com/ztota/ztota/internal/vulnfixture"
)

// explained lists, per fixture program, advisories the verifier reports
// that govulncheck (binary mode, module scan) does not, with the reason.
// Nothing else may differ.
var explained = map[string]map[string]string{
	// Empty: the verifier filters Go advisories by the binary's GOOS and
	// GOARCH as govulncheck does (GO-2024-2961, x/crypto acme/autocert on
	// windows only, is not reported for the linux cryptoold binary).
}

// TestFindingsAgreeWithGovulncheck compares, for every fixture program and
// every snapshot, the advisory ids the verifier finds with those
// govulncheck v1.9.0 reported (vulnfixture.Expected, which vulnfixture's
// own test re-checks against a live govulncheck run).
func TestFindingsAgreeWithGovulncheck(t *testing.T) {
	data := osvData(t)
	progs := programs(t)
	for _, snap := range vulnfixture.Snapshots() {
		db, err := osvdb.Load(filepath.Join(data, snap+".zip"), osvdb.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		for name, p := range progs {
			want, ok := vulnfixture.Expected(name, snap)
			if !ok {
				t.Fatalf("no expected ids for %s/%s", name, snap)
			}
			inv, err := inventory.FromFile(p.Path, inventory.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, f := range db.MatchAll(inv.Components) {
				got[f.ID] = true
			}
			for _, id := range want {
				if !got[id] {
					t.Errorf("%s against %s: govulncheck reports %s, the verifier does not", name, snap, id)
				}
				delete(got, id)
			}
			for id := range got {
				if why, ok := explained[name][id]; ok {
					t.Logf("%s against %s: extra %s explained: %s", name, snap, id, why)
					continue
				}
				t.Errorf("%s against %s: the verifier reports %s, govulncheck does not", name, snap, id)
			}
		}
	}
}

// TestDatabaseUpdatesRevokeExactlyTheAffected certifies real Go binaries
// against the 2025-01-01 snapshot, then moves the source to 2025-07-01 and
// 2026-08-21 and checks exactly which certificates are revoked, for which
// advisories, and that every signed document verifies offline. Under the
// default policy only present (symbol-level) findings block, so the
// expectations are govulncheck's symbol-level findings.
func TestDatabaseUpdatesRevokeExactlyTheAffected(t *testing.T) {
	data := osvData(t)
	progs := programs(t)
	src := filepath.Join(t.TempDir(), "go-all.zip")
	copyFile(t, filepath.Join(data, vulnfixture.Snapshot20250101+".zip"), src)
	s := newService(t, src, nil)
	ctx := context.Background()

	sha := map[string]string{}
	for _, name := range []string{"control", "textnew", "recent", "textold", "netold", "cryptoold"} {
		out := submitFile(t, s, name, progs[name].Path)
		sha[name] = out.Artifact
		want, _ := vulnfixture.ExpectedSymbol(name, vulnfixture.Snapshot20250101)
		wantState := StateCertified
		if len(want) > 0 {
			wantState = StateRejected
		}
		if out.State != wantState {
			t.Fatalf("%s: state %s, want %s (findings %v)", name, out.State, wantState, findingIDs(out))
		}
		if wantState == StateRejected && !slices.Equal(out.Result.Advisories, want) {
			t.Errorf("%s: rejected for %v, want %v", name, out.Result.Advisories, want)
		}
	}
	// The same program inside a tar.gz bundle is found and judged the same.
	bundle := tarGz(t, map[string][]byte{"bin/recent": readFile(t, progs["recent"].Path), "README": []byte("hi\n")})
	bout := submitBytes(t, s, "recent-bundle", bundle, nil)
	if bout.State != StateCertified {
		t.Fatalf("bundle of recent: %s", bout.State)
	}
	sha["recent-bundle"] = bout.Artifact

	certOf := map[string]string{}
	for name, h := range sha {
		out, err := s.Lookup(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		certOf[name] = out.Result.Digest
	}

	// 2025-07-01: "recent" (and its bundle) gain five advisories, two of
	// them with vulnerable symbols in the binary.
	copyFile(t, filepath.Join(data, vulnfixture.Snapshot20250701+".zip"), src)
	reps, err := s.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 {
		t.Fatalf("poll reports %d updates, want 1", len(reps))
	}
	rep := reps[0]
	t.Logf("2025-01-01 → 2025-07-01: %+v", rep)
	wantRevoked := []string{sha["recent"], sha["recent-bundle"]}
	sort.Strings(wantRevoked)
	if !slices.Equal(rep.Revoked, wantRevoked) {
		t.Fatalf("revoked %v, want recent and its bundle %v", rep.Revoked, wantRevoked)
	}
	checkRevocation(t, s, sha["recent"], certOf["recent"], mustExpectedSymbol(t, "recent", vulnfixture.Snapshot20250701))

	// 2026-08-21: "textnew" gains GO-2026-5970; "recent" stays revoked.
	copyFile(t, filepath.Join(data, vulnfixture.Snapshot20260821+".zip"), src)
	reps, err = s.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 {
		t.Fatalf("poll reports %d updates, want 1", len(reps))
	}
	t.Logf("2025-07-01 → 2026-08-21: %+v", reps[0])
	if !slices.Equal(reps[0].Revoked, []string{sha["textnew"]}) {
		t.Fatalf("revoked %v, want only textnew %s", reps[0].Revoked, sha["textnew"])
	}
	checkRevocation(t, s, sha["textnew"], certOf["textnew"], []string{"GO-2026-5970"})

	// Final states.
	wantStates := map[string]string{
		"control": StateCertified, "textnew": StateRevoked, "recent": StateRevoked, "recent-bundle": StateRevoked,
		"textold": StateRejected, "netold": StateRejected, "cryptoold": StateCertified,
	}
	for name, want := range wantStates {
		out, err := s.Lookup(ctx, sha[name])
		if err != nil {
			t.Fatal(err)
		}
		if out.State != want {
			t.Errorf("%s ends %s, want %s", name, out.State, want)
		}
	}

	// Offline: control's certificate verifies with its log receipt and the
	// newest list; recent's is refused as revoked.
	list, _, err := s.RevocationList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, wantErr := range map[string]error{"control": nil, "recent": certverify.ErrRevoked, "textnew": certverify.ErrRevoked} {
		b, err := s.Bundle(ctx, certOf[name])
		if err != nil {
			t.Fatal(err)
		}
		_, err = certverify.Verify(b.Envelope, certverify.Options{
			Root: s.root, ArtifactSHA256: sha[name], Receipt: &b.Receipt, Kind: b.Kind,
			RequireReceipt: true, Revocations: list, RequireRevocations: true,
		})
		if !errors.Is(err, wantErr) {
			t.Errorf("offline verification of %s: %v, want %v", name, err, wantErr)
		}
	}
}

func mustExpectedSymbol(t *testing.T, name, snap string) []string {
	t.Helper()
	ids, ok := vulnfixture.ExpectedSymbol(name, snap)
	if !ok {
		t.Fatalf("no expected ids for %s/%s", name, snap)
	}
	return ids
}

func mustExpected(t *testing.T, name, snap string) []string {
	t.Helper()
	ids, ok := vulnfixture.Expected(name, snap)
	if !ok {
		t.Fatalf("no expected ids for %s/%s", name, snap)
	}
	return ids
}

// withExplained adds the explained extra ids of a program, sorted.
func withExplained(name string, ids []string) []string {
	out := slices.Clone(ids)
	for id := range explained[name] {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// checkRevocation asserts the newest signed list revokes cert of artifact
// for exactly the given advisories.
func checkRevocation(t *testing.T, s *Service, artifact, cert string, advisories []string) {
	t.Helper()
	data, _, err := s.RevocationList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l, err := attest.VerifyRevocations(s.root, data, nil, s.now())
	if err != nil {
		t.Fatal(err)
	}
	r, ok := l.Lookup(artifact, cert)
	if !ok {
		t.Fatalf("list version %d does not revoke %s", l.Version, artifact)
	}
	got := slices.Clone(r.Advisories)
	sort.Strings(got)
	if !slices.Equal(got, advisories) {
		t.Errorf("revocation of %s names %v, want %v", artifact[:12], got, advisories)
	}
}
