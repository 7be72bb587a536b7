package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/certverify/certverifytest"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/vulnref"
)

// writeBundle signs and logs a result about sha with fx's certifier and
// writes its bundle (as 'ztota cert submit --out' does) to a file.
func writeBundle(t *testing.T, fx *certverifytest.Fixture, sha, kind, verdict string, findings ...vulnref.Finding) string {
	t.Helper()
	r := attest.Result{Kind: kind, Verdict: verdict, Issued: fx.Now, ValidUntil: fx.Now.Add(time.Hour), Components: 1, Findings: findings}
	r.Verifier.ID, r.Verifier.Version = "test-verifier", "1"
	r.DB.ID, r.Policy.Digest, r.Policy.Version = "sha256:"+certverifytest.HexSum("db"), "sha256:"+certverifytest.HexSum("policy"), 1
	r.Artifact.Name, r.Artifact.Size = "app.tar", 1
	env, err := attest.Sign([]attest.Subject{{Name: "app.tar", SHA256: sha}}, r, fx.Online.Certify)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tx, err := fx.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := fx.Log.Append(ctx, tx, kind, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	rc, err := fx.Log.Receipt(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(certBundle{Envelope: env, Kind: kind, Receipt: &rc})
	p := filepath.Join(t.TempDir(), kind+".json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReleaseWithARejectionFailsWithExit3ShowingFindings runs 'ztota
// release --certificate' with the certifier's rejection of the artifact:
// exit 3, the findings shown, nothing published. With the certificate the
// release is published with it, 'deploy' says what the gate checked, and
// after 'revocations push' of a list that revokes it the deployment is
// refused naming the advisory.
func TestReleaseWithARejectionFailsWithExit3ShowingFindings(t *testing.T) {
	fx := certverifytest.New(t)
	b := testbed.New(t, testbed.Options{Server: func(c *server.Config) { c.CertifierRoot = fx.Root }})
	admin := []string{"--server", b.URL, "--insecure-http", "--token", b.Admin.Token}
	art := filepath.Join(t.TempDir(), "app.tar")
	if err := os.WriteFile(art, []byte("the module's bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	sha, _, err := release.HashFile(art)
	if err != nil {
		t.Fatal(err)
	}
	rel := []string{"release", art, "--name", "app", "--version", "1.0", "--counter", "1", "--hardware", "hw1", "--keys", b.KeysDir}

	rej := writeBundle(t, fx, sha, attest.KindRejection, attest.VerdictFail,
		vulnref.Finding{ID: "GO-2023-1571", Ecosystem: "Go", Package: "golang.org/x/net", Version: "v0.5.0", Fixed: "v0.7.0", Severity: "HIGH", Blocking: true})
	code, out := run(t, append(append(rel, "--certificate", rej), admin...)...)
	if code != 3 || !strings.Contains(out, "GO-2023-1571") || !strings.Contains(out, "golang.org/x/net@v0.5.0") || !strings.Contains(out, "release refused") {
		t.Fatalf("release with a rejection: exit %d\n%s", code, out)
	}
	if rels, err := b.Admin.Releases(testbed.Ctx(t)); err != nil || len(rels) != 0 {
		t.Fatalf("a rejected release was published: %+v %v", rels, err)
	}

	cert := writeBundle(t, fx, sha, attest.KindCertificate, attest.VerdictPass)
	code, out = run(t, append(append(rel, "--certificate", cert), admin...)...)
	if code != 0 || !strings.Contains(out, "certificate sha256:") {
		t.Fatalf("release with a certificate: exit %d\n%s", code, out)
	}
	ag := b.Agent(b.AgentConfig("dev-1", "hw1"))
	if err := ag.Enroll(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	target := "app/1.0/app.tar"
	code, out = run(t, append([]string{"deploy", target, "--devices", "dev-1"}, admin...)...)
	if code != 0 || !strings.Contains(out, "certified: certificate sha256:") {
		t.Fatalf("deploy of a certified release: exit %d\n%s", code, out)
	}
	if _, err := b.Admin.Halt(testbed.Ctx(t), strings.Fields(out)[1]); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(t.TempDir(), "revocations.json")
	os.WriteFile(list, fx.Revocations(t, 2, attest.Revocation{ArtifactSHA256: sha, Advisories: []string{"GO-2099-0001"}, Time: fx.Now}), 0o644)
	code, out = run(t, append([]string{"revocations", "push", list}, admin...)...)
	if code != 0 || !strings.Contains(out, "revocation list version 2 stored (1 entries") {
		t.Fatalf("revocations push: exit %d\n%s", code, out)
	}
	code, out = run(t, append([]string{"deploy", target, "--devices", "dev-1"}, admin...)...)
	if code != 1 || !strings.Contains(out, "409") || !strings.Contains(out, "GO-2099-0001") {
		t.Fatalf("deploy of a revoked release: exit %d\n%s", code, out)
	}
}

// TestServerCertifierRootMustBeSelfSigned loads the certifier root the
// server pins: the certifier's root.json loads; a root whose content was
// changed after signing is refused.
func TestServerCertifierRootMustBeSelfSigned(t *testing.T) {
	fx := certverifytest.New(t)
	p := filepath.Join(fx.Dir, "root.json")
	if _, err := loadCertifierRoot(p); err != nil {
		t.Fatalf("the certifier's root: %v", err)
	}
	data, _ := os.ReadFile(p)
	bad := filepath.Join(t.TempDir(), "root.json")
	os.WriteFile(bad, []byte(strings.Replace(string(data), `"version": 1`, `"version": 2`, 1)), 0o644)
	if strings.Contains(string(data), `"version":1`) {
		os.WriteFile(bad, []byte(strings.Replace(string(data), `"version":1`, `"version":2`, 1)), 0o644)
	}
	if _, err := loadCertifierRoot(bad); !errors.Is(err, certroot.ErrSignature) {
		t.Fatalf("a changed root: %v, want certroot.ErrSignature", err)
	}
}
