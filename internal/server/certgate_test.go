package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certverify/certverifytest"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/vulnref"
)

// gateEnv is a server with a pinned certifier root and the certifier
// (trust material and log) of that root.
type gateEnv struct {
	*env
	fx *certverifytest.Fixture
}

func newGateEnv(t *testing.T) *gateEnv {
	t.Helper()
	fx := certverifytest.New(t)
	e := newEnv(t, func(c *server.Config) { c.CertifierRoot = fx.Root })
	return &gateEnv{env: e, fx: fx}
}

// issueFor signs and logs a result of kind and verdict for the artifact
// sha with fx's certifier and returns the bundle as certd serves it.
func issueFor(t *testing.T, fx *certverifytest.Fixture, sha, kind, verdict string, findings ...vulnref.Finding) []byte {
	t.Helper()
	r := attest.Result{Kind: kind, Verdict: verdict, Issued: fx.Now, ValidUntil: fx.Now.Add(time.Hour), Components: 1, Findings: findings}
	r.Verifier.ID, r.Verifier.Version = "test-verifier", "1"
	r.DB.ID, r.Policy.Digest, r.Policy.Version = "sha256:"+certverifytest.HexSum("db"), "sha256:"+certverifytest.HexSum("policy"), 1
	r.Artifact.Name, r.Artifact.Size = "app", 1
	env, err := attest.Sign([]attest.Subject{{Name: "app", SHA256: sha}}, r, fx.Online.Certify)
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
	return marshal(t, server.CertBundle{Envelope: env, Kind: kind, Receipt: &rc})
}

// gateDump is dbDump plus the gate's tables.
func gateDump(t *testing.T, st *store.Store) string {
	t.Helper()
	var sb strings.Builder
	sb.WriteString(dbDump(t, st))
	for _, q := range []string{`SELECT sha256, cert_digest, hex(bundle), issued, valid_until, stored FROM certificates ORDER BY sha256`,
		`SELECT version, hex(data), hex(list), expires, stored FROM revocations`} {
		rows, err := st.DB().QueryContext(ctxT(t), q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&sb, "%v\n", vals)
		}
		rows.Close()
	}
	return sb.String()
}

func gateUnchanged(t *testing.T, st *store.Store, fn func()) {
	t.Helper()
	before := gateDump(t, st)
	fn()
	if after := gateDump(t, st); after != before {
		t.Errorf("a refused request changed the stored state:\n%s", lineDiff(before, after))
	}
}

// wantRefusedSaying checks a refusal with the status and a message that
// contains every one of want.
func wantRefusedSaying(t *testing.T, what string, a answer, code int, want ...string) {
	t.Helper()
	wantRefused(t, what, a, code)
	for _, w := range want {
		if !strings.Contains(a.errMsg(), w) {
			t.Errorf("%s: message %q does not say %q", what, a.errMsg(), w)
		}
	}
}

func (e *env) tryDeploy(t *testing.T, target string, devs ...string) answer {
	t.Helper()
	return e.api(t, "POST", "/v1/deployments", marshal(t, server.DeployRequest{Release: target, Devices: devs, FailureThreshold: 1}))
}

// released publishes a random artifact and returns its target and sha256.
func (e *env) released(t *testing.T, version string) (string, string) {
	t.Helper()
	r := e.Release(artifact(t, 512), version, 1, "hw")
	return r.Target, r.SHA256
}

// TestGateUncertifiedReleaseIsRefusedAtDeploy deploys a release whose
// artifact the certifier never certified: refused with 409 naming the
// missing certificate, no deployment made; once its bundle is stored the
// same deployment goes through and says what was checked.
func TestGateUncertifiedReleaseIsRefusedAtDeploy(t *testing.T) {
	g := newGateEnv(t)
	g.enroll(t, "dev1", "hw", "")
	target, sha := g.released(t, "1.0")
	gateUnchanged(t, g.Server.Store(), func() {
		wantRefusedSaying(t, "deploying an uncertified release", g.tryDeploy(t, target, "dev1"), http.StatusConflict,
			"has no certificate from the certifier", sha)
	})
	if a := g.api(t, "PUT", "/v1/certificates/"+sha, issueFor(t, g.fx, sha, attest.KindCertificate, attest.VerdictPass)); a.code != http.StatusOK {
		t.Fatalf("storing the certificate: %s", a)
	}
	a := g.tryDeploy(t, target, "dev1")
	if a.code != http.StatusCreated {
		t.Fatalf("deploying the certified release: %s", a)
	}
	var v server.DeploymentView
	json.Unmarshal(a.body, &v)
	if !strings.HasPrefix(v.Gate, "certified: certificate sha256:") {
		t.Errorf("the deployment answer says %q about the gate", v.Gate)
	}
}

// TestGateRevokedReleaseIsRefusedAtDeploy revokes a certified artifact in
// a newer signed list pushed to the server: its deployment is refused
// with 409 naming the advisories, and its certificate cannot be stored
// again.
func TestGateRevokedReleaseIsRefusedAtDeploy(t *testing.T) {
	g := newGateEnv(t)
	g.enroll(t, "dev1", "hw", "")
	target, sha := g.released(t, "1.0")
	bundle := issueFor(t, g.fx, sha, attest.KindCertificate, attest.VerdictPass)
	if a := g.api(t, "PUT", "/v1/certificates/"+sha, bundle); a.code != http.StatusOK {
		t.Fatalf("storing the certificate: %s", a)
	}
	if a := g.api(t, "PUT", "/v1/revocations", g.fx.Revocations(t, 1)); a.code != http.StatusOK {
		t.Fatalf("storing list 1: %s", a)
	}
	list := g.fx.Revocations(t, 2, attest.Revocation{ArtifactSHA256: sha, Advisories: []string{"GO-2099-0001"}, Time: g.fx.Now, Reason: "vulnerable"})
	if a := g.api(t, "PUT", "/v1/revocations", list); a.code != http.StatusOK {
		t.Fatalf("storing list 2: %s", a)
	}
	gateUnchanged(t, g.Server.Store(), func() {
		wantRefusedSaying(t, "deploying a revoked release", g.tryDeploy(t, target, "dev1"), http.StatusConflict,
			"may not be deployed", "certificate revoked", "GO-2099-0001")
		wantRefusedSaying(t, "storing a revoked certificate again", g.api(t, "PUT", "/v1/certificates/"+sha, bundle), http.StatusConflict,
			"certificate revoked", "GO-2099-0001")
	})
}

// TestGateBundleForAnotherDigestIsRefused stores a valid certificate of
// artifact A under artifact B's sha256: refused, nothing stored.
func TestGateBundleForAnotherDigestIsRefused(t *testing.T) {
	g := newGateEnv(t)
	_, shaB := g.released(t, "1.0")
	bundleA := issueFor(t, g.fx, certverifytest.HexSum("another artifact"), attest.KindCertificate, attest.VerdictPass)
	gateUnchanged(t, g.Server.Store(), func() {
		wantRefusedSaying(t, "a certificate of another artifact", g.api(t, "PUT", "/v1/certificates/"+shaB, bundleA),
			http.StatusBadRequest, "certificate is for another artifact")
	})
}

// TestGateForgedBundleIsRefused offers bundles the pinned certifier did
// not sign or log: one of another certifier (its own keys and log), one
// with a tampered signature, one whose receipt proves another entry, and
// one without a receipt. All refused, nothing stored.
func TestGateForgedBundleIsRefused(t *testing.T) {
	g := newGateEnv(t)
	_, sha := g.released(t, "1.0")
	other := certverifytest.New(t)
	foreign := issueFor(t, other, sha, attest.KindCertificate, attest.VerdictPass)

	var b server.CertBundle
	json.Unmarshal(issueFor(t, g.fx, sha, attest.KindCertificate, attest.VerdictPass), &b)
	var envl struct {
		Signatures []struct{ Sig string }
	}
	json.Unmarshal(b.Envelope, &envl)
	sig := envl.Signatures[0].Sig
	flipped := []byte(sig)
	flipped[3] = map[bool]byte{true: 'B', false: 'A'}[flipped[3] == 'A'] // still base64, another signature
	tampered := b
	tampered.Envelope = bytes.Replace(b.Envelope, []byte(sig), flipped, 1)

	other2 := issueFor(t, g.fx, certverifytest.HexSum("x"), attest.KindCertificate, attest.VerdictPass)
	var ob server.CertBundle
	json.Unmarshal(other2, &ob)
	wrongReceipt := b
	wrongReceipt.Receipt = ob.Receipt
	noReceipt := b
	noReceipt.Receipt = nil

	gateUnchanged(t, g.Server.Store(), func() {
		for _, c := range []struct {
			name string
			body []byte
			want string
		}{
			{"signed by another certifier", foreign, "not signed by a threshold of the role's keys"},
			{"tampered signature", marshal(t, tampered), "not signed by a threshold of the role's keys"},
			{"receipt of another entry", marshal(t, wrongReceipt), "not proved to be in the transparency log"},
			{"no receipt", marshal(t, noReceipt), "no log receipt"},
		} {
			wantRefusedSaying(t, c.name, g.api(t, "PUT", "/v1/certificates/"+sha, c.body), http.StatusBadRequest, c.want)
		}
	})
}

// TestGateOlderRevocationListIsRefused pushes version 3 and then version
// 2 (unexpired, validly signed): the older list is refused with 409 and
// version 3 stays; a forged list, an expired list and one that drops a
// revocation are refused as well.
func TestGateOlderRevocationListIsRefused(t *testing.T) {
	g := newGateEnv(t)
	rev := attest.Revocation{ArtifactSHA256: certverifytest.HexSum("a"), Advisories: []string{"GO-2099-0002"}, Time: g.fx.Now}
	v2 := g.fx.Revocations(t, 2)
	v3 := g.fx.Revocations(t, 3, rev)
	if a := g.api(t, "PUT", "/v1/revocations", v3); a.code != http.StatusOK {
		t.Fatalf("storing list 3: %s", a)
	}
	other := certverifytest.New(t)
	gateUnchanged(t, g.Server.Store(), func() {
		wantRefusedSaying(t, "an older list", g.api(t, "PUT", "/v1/revocations", v2), http.StatusConflict,
			"revocation list version older than the trusted one", "version 2 offered, version 3 trusted")
		wantRefusedSaying(t, "a newer list that drops a revocation", g.api(t, "PUT", "/v1/revocations", g.fx.Revocations(t, 4)),
			http.StatusConflict, "drops a revocation")
		wantRefusedSaying(t, "a list of another certifier", g.api(t, "PUT", "/v1/revocations", other.Revocations(t, 9, rev)),
			http.StatusBadRequest, "not signed by a threshold")
		g.clk.Advance(2 * time.Hour)
		wantRefusedSaying(t, "an expired list", g.api(t, "PUT", "/v1/revocations", g.fx.Revocations(t, 5, rev)),
			http.StatusBadRequest, "expired")
		g.clk.Advance(-2 * time.Hour)
	})
	a := g.api(t, "PUT", "/v1/revocations", v3)
	var ans server.RevocationsAnswer
	json.Unmarshal(a.body, &ans)
	if a.code != http.StatusOK || !ans.Unchanged || ans.Version != 3 {
		t.Errorf("pushing the stored list again: %s", a)
	}
	got := g.api(t, "GET", "/v1/revocations", nil)
	if got.code != http.StatusOK || !bytes.Equal(got.body, v3) {
		t.Errorf("the served list is not version 3 as signed: %s", got)
	}
}

// TestGateRejectionBundleIsRefusedNamingFindings stores the certifier's
// signed rejection as if it were a certificate: refused with 409 naming
// the blocking findings.
func TestGateRejectionBundleIsRefusedNamingFindings(t *testing.T) {
	g := newGateEnv(t)
	_, sha := g.released(t, "1.0")
	rej := issueFor(t, g.fx, sha, attest.KindRejection, attest.VerdictFail,
		vulnref.Finding{ID: "GO-2023-1571", Ecosystem: "Go", Package: "golang.org/x/net", Version: "v0.5.0", Fixed: "v0.7.0", Severity: "HIGH", Blocking: true},
		vulnref.Finding{ID: "GO-2023-0001", Ecosystem: "Go", Package: "golang.org/x/text", Version: "v0.3.0", Severity: "LOW"})
	gateUnchanged(t, g.Server.Store(), func() {
		a := g.api(t, "PUT", "/v1/certificates/"+sha, rej)
		wantRefusedSaying(t, "a rejection", a, http.StatusConflict, "the certifier rejected", "GO-2023-1571 (golang.org/x/net@v0.5.0, fixed in v0.7.0)")
		if strings.Contains(a.errMsg(), "GO-2023-0001") {
			t.Errorf("the message names a finding that did not block: %q", a.errMsg())
		}
	})
}

// TestGateBadInputChangesNothing sends malformed, oversized and hostile
// bodies and paths to the gate's endpoints: each is refused with a clear
// 4xx and nothing stored changes.
func TestGateBadInputChangesNothing(t *testing.T) {
	g := newGateEnv(t)
	_, sha := g.released(t, "1.0")
	good := issueFor(t, g.fx, sha, attest.KindCertificate, attest.VerdictPass)
	var b server.CertBundle
	json.Unmarshal(good, &b)
	dupKeys := []byte(`{"envelope":` + string(b.Envelope) + `,"Envelope":` + string(b.Envelope) + `,"kind":"certificate","receipt":` + string(marshal(t, b.Receipt)) + `}`)
	unknown := []byte(`{"envelope":` + string(b.Envelope) + `,"kind":"certificate","receipt":` + string(marshal(t, b.Receipt)) + `,"trust_me":true}`)
	list := g.fx.Revocations(t, 1)
	dupList := bytes.Replace(list, []byte(`{"payloadType"`), []byte(`{"PAYLOADTYPE":"x","payloadType"`), 1)
	if bytes.Equal(dupList, list) {
		t.Fatalf("the list envelope does not start with payload: %s", list[:40])
	}
	huge := bytes.Repeat([]byte(" "), attest.MaxEnvelopeSize+64<<10+1)
	gateUnchanged(t, g.Server.Store(), func() {
		for _, c := range []struct {
			name, method, path string
			body               []byte
			code               int
			want               string
		}{
			{"not JSON", "PUT", "/v1/certificates/" + sha, []byte("{envelope"), 400, "malformed JSON"},
			{"trailing data", "PUT", "/v1/certificates/" + sha, append(bytes.Clone(good), []byte(" {}")...), 400, "malformed JSON"},
			{"duplicate keys differing in case", "PUT", "/v1/certificates/" + sha, dupKeys, 400, "duplicate JSON object key"},
			{"unknown field", "PUT", "/v1/certificates/" + sha, unknown, 400, "unknown field"},
			{"empty object", "PUT", "/v1/certificates/" + sha, []byte(`{}`), 400, "no envelope"},
			{"oversized bundle", "PUT", "/v1/certificates/" + sha, huge, 413, "at most"},
			{"bad sha in path", "PUT", "/v1/certificates/" + strings.ToUpper(sha), good, 400, "64 lowercase hex"},
			{"list not JSON", "PUT", "/v1/revocations", []byte("nope"), 400, "revocation list"},
			{"list with duplicate keys", "PUT", "/v1/revocations", dupList, 400, "duplicate JSON object key"},
			{"oversized list", "PUT", "/v1/revocations", bytes.Repeat([]byte(" "), attest.MaxRevocationsSize+1), 413, "at most"},
		} {
			wantRefusedSaying(t, c.name, g.api(t, c.method, c.path, c.body), c.code, c.want)
		}
	})
	// Who may write and read.
	viewer, err := g.Admin.CreateToken(ctxT(t), server.TokenRequest{Scope: server.ScopeViewer, Name: "v"})
	if err != nil {
		t.Fatal(err)
	}
	gateUnchanged(t, g.Server.Store(), func() {
		wantRefused(t, "a viewer storing a certificate", g.request(t, nil, "PUT", "/v1/certificates/"+sha, viewer.Token, good), http.StatusForbidden)
		wantRefused(t, "a viewer pushing a list", g.request(t, nil, "PUT", "/v1/revocations", viewer.Token, list), http.StatusForbidden)
		wantRefused(t, "no token", g.request(t, nil, "GET", "/v1/revocations", "", nil), http.StatusUnauthorized)
	})
}

// TestGateServerWithoutCertifierRootBehavesAsBefore deploys an
// uncertified release on a server without a certifier root: it goes
// through as before and the answer says releases are not gated; the
// gate's endpoints say there is no certifier root.
func TestGateServerWithoutCertifierRootBehavesAsBefore(t *testing.T) {
	e := newEnv(t, nil)
	e.enroll(t, "dev1", "hw", "")
	target, sha := e.released(t, "1.0")
	a := e.tryDeploy(t, target, "dev1")
	if a.code != http.StatusCreated {
		t.Fatalf("deploying without a certifier root: %s", a)
	}
	var v server.DeploymentView
	json.Unmarshal(a.body, &v)
	if v.Gate != server.GateUngated {
		t.Errorf("gate %q, want %q", v.Gate, server.GateUngated)
	}
	fx := certverifytest.New(t)
	wantRefusedSaying(t, "storing a certificate", e.api(t, "PUT", "/v1/certificates/"+sha,
		issueFor(t, fx, sha, attest.KindCertificate, attest.VerdictPass)), http.StatusNotImplemented, "no certifier root")
	wantRefusedSaying(t, "reading the list", e.api(t, "GET", "/v1/revocations", nil), http.StatusNotImplemented, "no certifier root")
}

// TestGateDevicesReadTheMirrorWithSignedRequests fetches the certificate
// and the list as a device: the certifier's bytes unchanged, a version
// ETag for conditional polls; unsigned requests and requests for another
// device's path are refused.
func TestGateDevicesReadTheMirrorWithSignedRequests(t *testing.T) {
	g := newGateEnv(t)
	d1 := g.enroll(t, "dev1", "hw", "")
	g.enroll(t, "dev2", "hw", "")
	_, sha := g.released(t, "1.0")
	bundle := issueFor(t, g.fx, sha, attest.KindCertificate, attest.VerdictPass)
	if a := g.api(t, "PUT", "/v1/certificates/"+sha, bundle); a.code != http.StatusOK {
		t.Fatal(a)
	}
	wantRefused(t, "a device asking before any list", g.request(t, d1.hc, "GET", "/v1/devices/dev1/revocations", "", nil), http.StatusNotFound)
	list := g.fx.Revocations(t, 7)
	if a := g.api(t, "PUT", "/v1/revocations", list); a.code != http.StatusOK {
		t.Fatal(a)
	}
	if a := g.request(t, d1.hc, "GET", "/v1/devices/dev1/certificates/"+sha, "", nil); a.code != 200 || !bytes.Equal(a.body, bundle) {
		t.Errorf("the device's certificate: %s", a)
	}
	if a := g.request(t, d1.hc, "GET", "/v1/devices/dev1/revocations", "", nil); a.code != 200 || !bytes.Equal(a.body, list) {
		t.Errorf("the device's list: %s", a)
	}
	req, _ := http.NewRequestWithContext(ctxT(t), "GET", g.URL+"/v1/devices/dev1/revocations", nil)
	req.Header.Set("If-None-Match", `"7"`)
	resp, err := d1.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("a conditional poll of the same version: %d, want 304", resp.StatusCode)
	}
	wantRefused(t, "unsigned", g.request(t, nil, "GET", "/v1/devices/dev1/revocations", "", nil), http.StatusUnauthorized)
	wantRefused(t, "another device's path", g.request(t, d1.hc, "GET", "/v1/devices/dev2/certificates/"+sha, "", nil), http.StatusForbidden)
}

// TestGateExpiredCertificateIsRefusedAtDeploy stores a certificate valid
// for an hour and deploys two hours later: the stored bundle is verified
// again at deploy time and refused as expired.
func TestGateExpiredCertificateIsRefusedAtDeploy(t *testing.T) {
	g := newGateEnv(t)
	g.enroll(t, "dev1", "hw", "")
	target, sha := g.released(t, "1.0")
	if a := g.api(t, "PUT", "/v1/certificates/"+sha, issueFor(t, g.fx, sha, attest.KindCertificate, attest.VerdictPass)); a.code != http.StatusOK {
		t.Fatalf("storing the certificate: %s", a)
	}
	g.clk.Advance(2 * time.Hour)
	gateUnchanged(t, g.Server.Store(), func() {
		wantRefusedSaying(t, "deploying with an expired certificate", g.tryDeploy(t, target, "dev1"), http.StatusConflict,
			"may not be deployed", "expired")
	})
}

// TestGateRevocationStopsTheNextWave revokes a release while its first
// wave runs: when that wave completes, the next wave is not opened; the
// deployment halts naming the advisory and the second wave's devices are
// cancelled, their directors never listing the release.
func TestGateRevocationStopsTheNextWave(t *testing.T) {
	g := newGateEnv(t)
	d0 := g.enroll(t, "d00", "hw", "fleet")
	g.enroll(t, "d01", "hw", "fleet")
	target, sha := g.released(t, "1.0")
	if a := g.api(t, "PUT", "/v1/certificates/"+sha, issueFor(t, g.fx, sha, attest.KindCertificate, attest.VerdictPass)); a.code != http.StatusOK {
		t.Fatalf("storing the certificate: %s", a)
	}
	dep := g.deploy(t, fmt.Sprintf(`{"release":%q,"group":"fleet","waves":[50,100],"failure_threshold":0.5}`, target))
	wantStatus(t, dep, store.DevAssigned, "d00")
	wantStatus(t, dep, store.DevPending, "d01")
	list := g.fx.Revocations(t, 1, attest.Revocation{ArtifactSHA256: sha, Advisories: []string{"GO-2099-0003"}, Time: g.fx.Now, Reason: "vulnerable"})
	if a := g.api(t, "PUT", "/v1/revocations", list); a.code != http.StatusOK {
		t.Fatalf("storing the list: %s", a)
	}
	g.mustPost(t, d0, d0.rep(report.StateCommitted, target))
	v := g.view(t, dep.ID)
	if v.Status != store.DeployHalted || !strings.Contains(v.Reason, "GO-2099-0003") || !strings.Contains(v.Reason, "revoked") {
		t.Fatalf("deployment after the revocation: %s %q, want halted naming GO-2099-0003", v.Status, v.Reason)
	}
	wantStatus(t, v, store.DevCommitted, "d00")
	wantStatus(t, v, store.DevCancelled, "d01")
	wantDirector(t, g.env, "", "d01")
}
