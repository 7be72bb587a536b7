package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certverify"
	"github.com/ztota/ztota/internal/certverify/certverifytest"
)

// TestVerifyStateRefusesAnOlderRevocationList performs attack 4 of issue 6
// through `ztota verify`: list version 2 revokes the certificate; the older,
// unexpired version 1 does not. The old command passed the certificate
// with version 1. With --state the first run (v2) is refused as revoked and
// records v2; the second (v1) is refused as a rollback and leaves the state
// file unchanged; --min-revocations-version refuses v1 even without state.
func TestVerifyStateRefusesAnOlderRevocationList(t *testing.T) {
	dir := t.TempDir()
	f := certverifytest.New(t)
	env, _ := f.Issue(t, attest.KindCertificate, attest.VerdictPass)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	list := func(v int64, entries ...attest.Revocation) string {
		return write("revocations-v"+string(rune('0'+v))+".json", f.Revocations(t, v, entries...))
	}
	cert, art := write("cert.json", env), write("app.bin", []byte("artifact")) // f.Artifact is its sha256
	v1 := list(1)
	v2 := list(2, attest.Revocation{ArtifactSHA256: f.Artifact, CertificateDigest: attest.DigestOf(env), Advisories: []string{"GO-2025-0001"}, Time: f.Now})
	state := filepath.Join(dir, "verify-state.json")
	verify := func(args ...string) (int, string) {
		return run(t, append([]string{"verify", cert, "--root", filepath.Join(f.Dir, "root.json"), "--artifact", art}, args...)...)
	}

	if code, out := verify("--revocations", v1); code != 0 {
		t.Fatalf("v1 without state (the attack's starting point): %d %s", code, out)
	}
	if code, out := verify("--revocations", v2, "--state", state); code == 0 || !strings.Contains(out, certverify.ErrRevoked.Error()) {
		t.Fatalf("v2: exit %d %s, want revoked", code, out)
	}
	before, err := os.ReadFile(state)
	if err != nil {
		t.Fatalf("no state written: %v", err)
	}
	if code, out := verify("--revocations", v1, "--state", state); code == 0 || !strings.Contains(out, attest.ErrRollback.Error()) {
		t.Fatalf("older v1 with state: exit %d %s, want a rollback refusal", code, out)
	}
	if after, _ := os.ReadFile(state); !bytes.Equal(before, after) {
		t.Fatal("the refused run changed the state file")
	}
	if code, out := verify("--revocations", v1, "--min-revocations-version", "2"); code == 0 || !strings.Contains(out, attest.ErrRollback.Error()) {
		t.Fatalf("v1 below --min-revocations-version: exit %d %s", code, out)
	}
	if code, out := verify("--state", state); code == 0 || !strings.Contains(out, certverify.ErrRevoked.Error()) {
		t.Fatalf("no list with state: exit %d %s, want revoked by the recorded v2", code, out)
	}
}
