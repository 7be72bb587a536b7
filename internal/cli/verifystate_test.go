package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/certverify"
)

// TestVerifyStateRefusesAnOlderRevocationList performs attack 4 of issue 6
// through `ztota verify`: list version 2 revokes the certificate; the older,
// unexpired version 1 does not. The old command passed the certificate
// with version 1. With --state the first run (v2) is refused as revoked and
// records v2; the second (v1) is refused as a rollback and leaves the state
// file unchanged; --min-revocations-version refuses v1 even without state.
func TestVerifyStateRefusesAnOlderRevocationList(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	now := time.Now().UTC().Truncate(time.Second)
	if err := certroot.Init(keys, certroot.Options{Now: now}); err != nil {
		t.Fatal(err)
	}
	online, err := certroot.LoadOnline(keys)
	if err != nil {
		t.Fatal(err)
	}
	artifact := []byte("the artifact")
	sum := sha256.Sum256(artifact)
	sha := hex.EncodeToString(sum[:])
	r := attest.Result{Kind: attest.KindCertificate, Verdict: attest.VerdictPass, Issued: now, ValidUntil: now.Add(time.Hour), Components: 1}
	r.Verifier.ID, r.Verifier.Version = "test-verifier", "1"
	r.DB.ID, r.Policy.Digest, r.Policy.Version = "sha256:"+sha, "sha256:"+sha, 1
	r.Artifact.Name, r.Artifact.Size = "app", int64(len(artifact))
	env, err := attest.Sign([]attest.Subject{{Name: "app", SHA256: sha}}, r, online.Certify)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	list := func(v int64, entries ...attest.Revocation) string {
		b, err := attest.SignRevocations(attest.RevocationList{Version: v, Issued: now, Expires: now.Add(time.Hour), Entries: entries}, online.Revoke)
		if err != nil {
			t.Fatal(err)
		}
		return write("revocations-v"+string(rune('0'+v))+".json", b)
	}
	cert, art := write("cert.json", env), write("app.bin", artifact)
	v1 := list(1)
	v2 := list(2, attest.Revocation{ArtifactSHA256: sha, CertificateDigest: attest.DigestOf(env), Advisories: []string{"GO-2025-0001"}, Time: now})
	state := filepath.Join(dir, "verify-state.json")
	verify := func(args ...string) (int, string) {
		return run(t, append([]string{"verify", cert, "--root", filepath.Join(keys, "root.json"), "--artifact", art}, args...)...)
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
