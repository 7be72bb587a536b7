package agent_test

// Attacks on the certification gate of the device (cert.go): the agent
// pins a certifier root and installs only artifacts with a certificate for
// exactly their sha256, logged, not revoked in a fresh revocation list
// that never goes back. The server is the testbed's, configured with the
// same certifier root (it mirrors bundles and lists); attacks are played
// by the front in front of it (a lying server or a man in the middle).

import (
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/certverify"
	"github.com/ztota/ztota/internal/certverify/certverifytest"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/translog"
	"github.com/ztota/ztota/internal/verifystate"
)

// certBed is a testbed whose server pins a test certifier's root, and
// that certifier.
type certBed struct {
	b  *testbed.Bed
	f  *front
	fx *certverifytest.Fixture
}

func newCertBed(t *testing.T) *certBed {
	t.Helper()
	fx := certverifytest.New(t)
	b, f := bed(t, testbed.Options{Server: func(c *server.Config) { c.CertifierRoot = fx.Root }})
	return &certBed{b: b, f: f, fx: fx}
}

// device starts an agent that enforces certification under the test
// certifier's root.
func (cb *certBed) device(t *testing.T, id string, tweak ...func(*agent.Config)) *agent.Agent {
	t.Helper()
	return device(t, cb.b, id, "board-a", append([]func(*agent.Config){func(c *agent.Config) {
		c.CertifierRoot = filepath.Join(cb.fx.Dir, certroot.CurrentRootFile)
	}}, tweak...)...)
}

// bundle signs and logs a result of kind and verdict for sha and returns
// the bundle as the certification service serves it.
func (cb *certBed) bundle(t *testing.T, sha, kind, verdict string) []byte {
	t.Helper()
	cb.fx.Artifact = sha
	env, rc := cb.fx.Issue(t, kind, verdict)
	b, err := json.Marshal(server.CertBundle{Envelope: env, Kind: kind, Receipt: rc})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// certified releases a module version and uploads its certificate.
func (cb *certBed) certified(t *testing.T, version string, counter uint64) release.Result {
	t.Helper()
	r := cb.b.Release(cb.b.ScriptBundle(version, true, 4096), version, counter, "board-a")
	if _, err := cb.b.Admin.PutCertificate(testbed.Ctx(t), r.SHA256, cb.bundle(t, r.SHA256, attest.KindCertificate, attest.VerdictPass)); err != nil {
		t.Fatal(err)
	}
	return r
}

// push uploads revocation list version to the server.
func (cb *certBed) push(t *testing.T, version int64, entries ...attest.Revocation) []byte {
	t.Helper()
	l := cb.fx.Revocations(t, version, entries...)
	if _, err := cb.b.Admin.PushRevocations(testbed.Ctx(t), l); err != nil {
		t.Fatal(err)
	}
	return l
}

func revocation(sha, advisory string) attest.Revocation {
	return attest.Revocation{ArtifactSHA256: sha, Advisories: []string{advisory}, Time: time.Now().UTC().Truncate(time.Second), Reason: "vulnerable"}
}

func certPath(id, sha string) string { return "/v1/devices/" + id + "/certificates/" + sha }
func listPath(id string) string      { return "/v1/devices/" + id + "/revocations" }

// reportSaying waits for a report of state whose detail contains want and
// returns how many such reports the server holds.
func reportSaying(t *testing.T, b *testbed.Bed, a *agent.Agent, id, state, want string) int {
	t.Helper()
	n := 0
	testbed.WaitFor(t, 10*time.Second, "a "+state+" report from "+id+" saying "+want, func() bool {
		a.FlushReports(testbed.Ctx(t))
		n = countSaying(b, id, state, want)
		return n > 0
	})
	return n
}

func countSaying(b *testbed.Bed, id, state, want string) int {
	n := 0
	for _, r := range b.History(id) {
		if r.State == state && strings.Contains(r.Detail, want) {
			n++
		}
	}
	return n
}

// notInstalled checks that nothing was installed and the target is not
// refused for good (a transient refusal).
func notInstalledNotRefused(t *testing.T, a *agent.Agent, sha string) {
	t.Helper()
	if got := testbed.Installed(t, a); got != "" {
		t.Fatalf("the device installed %s", got)
	}
	if why, ok := a.Refused()[sha]; ok {
		t.Fatalf("a transient refusal was made final: %s", why)
	}
}

// TestRevokedBetweenDeployAndInstallIsRefused performs a revocation that
// lands after the release was certified and deployed but before the
// device installs it: the device fetches the newest list before the
// download and refuses the artifact for good, naming the advisory.
func TestRevokedBetweenDeployAndInstallIsRefused(t *testing.T) {
	cb := newCertBed(t)
	a := cb.device(t, "dev-cert-1")
	cb.push(t, 1)
	r := cb.certified(t, "1.0.0", 1)
	cb.b.Deploy(r.Target, "dev-cert-1")
	cb.push(t, 2, revocation(r.SHA256, "GO-2026-0001"))
	err := a.Cycle(testbed.Ctx(t))
	if !errors.Is(err, agent.ErrRefused) || !errors.Is(err, certverify.ErrRevoked) {
		t.Fatalf("cycle: %v, want a refusal for a revoked certificate", err)
	}
	if got := testbed.Installed(t, a); got != "" {
		t.Fatalf("the device installed %s", got)
	}
	if _, ok := a.Refused()[r.SHA256]; !ok {
		t.Fatal("the revoked artifact is not in the refused set")
	}
	reportSaying(t, cb.b, a, "dev-cert-1", "refused", "GO-2026-0001")
	cb.f.mu.Lock()
	seen := append([]string(nil), cb.f.seen...)
	cb.f.mu.Unlock()
	for _, p := range seen {
		if strings.HasPrefix(p, "/image/targets/") {
			t.Fatalf("the revoked artifact was downloaded: %s", p)
		}
	}
}

// TestRevokedArtifactOfferedForInstallIsRefused performs the offer of an
// artifact the device already knows to be revoked (its periodic check
// recorded the list) by a server that answers the list request with "not
// modified": the recorded list still counts.
func TestRevokedArtifactOfferedForInstallIsRefused(t *testing.T) {
	cb := newCertBed(t)
	a := cb.device(t, "dev-cert-2")
	cb.push(t, 1)
	r := cb.certified(t, "1.0.0", 1)
	cb.b.Deploy(r.Target, "dev-cert-2")
	cb.push(t, 2, revocation(r.SHA256, "GO-2026-0002"))
	if err := a.CheckRevocations(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	cb.f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == listPath("dev-cert-2") {
			w.WriteHeader(http.StatusNotModified)
			return true
		}
		return false
	})
	err := a.Cycle(testbed.Ctx(t))
	if !errors.Is(err, certverify.ErrRevoked) || !errors.Is(err, agent.ErrRefused) {
		t.Fatalf("cycle: %v, want a refusal for a revoked certificate", err)
	}
	if got := testbed.Installed(t, a); got != "" {
		t.Fatalf("the device installed %s", got)
	}
	reportSaying(t, cb.b, a, "dev-cert-2", "refused", "GO-2026-0002")
}

// TestUncertifiedArtifactIsInstalledOnlyOnceItsCertificateArrives
// performs a server that has no certificate for the assigned artifact
// (404): nothing is installed and nothing is refused for good; once the
// certificate is there, the release installs.
func TestUncertifiedArtifactIsInstalledOnlyOnceItsCertificateArrives(t *testing.T) {
	cb := newCertBed(t)
	a := cb.device(t, "dev-cert-3")
	cb.push(t, 1)
	r := cb.certified(t, "1.0.0", 1)
	cb.b.Deploy(r.Target, "dev-cert-3")
	cb.f.setHook(func(w http.ResponseWriter, req *http.Request) bool {
		if req.URL.Path == certPath("dev-cert-3", r.SHA256) {
			http.Error(w, "not found", http.StatusNotFound)
			return true
		}
		return false
	})
	for i := 0; i < 3; i++ {
		if err := a.Cycle(testbed.Ctx(t)); !errors.Is(err, agent.ErrNoCertificate) {
			t.Fatalf("cycle %d: %v, want %v", i, err, agent.ErrNoCertificate)
		}
	}
	notInstalledNotRefused(t, a, r.SHA256)
	reportSaying(t, cb.b, a, "dev-cert-3", "failed", "no certificate")
	cb.f.clear()
	testbed.CycleInstalls(t, a, r.SHA256, "once the certificate is served")
}

// TestStaleRevocationListIsRefused performs a man in the middle serving
// an expired (genuinely signed) revocation list: nothing is installed,
// the device reports the list stale, and nothing is refused for good.
func TestStaleRevocationListIsRefused(t *testing.T) {
	cb := newCertBed(t)
	a := cb.device(t, "dev-cert-4")
	cb.push(t, 1)
	r := cb.certified(t, "1.0.0", 1)
	cb.b.Deploy(r.Target, "dev-cert-4")
	old, err := attest.SignRevocations(attest.RevocationList{Version: 5, Issued: cb.fx.Now.Add(-3 * time.Hour),
		Expires: cb.fx.Now.Add(-time.Hour)}, cb.fx.Online.Revoke)
	if err != nil {
		t.Fatal(err)
	}
	cb.f.set(listPath("dev-cert-4"), old)
	err = a.Cycle(testbed.Ctx(t))
	if !errors.Is(err, attest.ErrExpired) {
		t.Fatalf("cycle: %v, want %v", err, attest.ErrExpired)
	}
	notInstalledNotRefused(t, a, r.SHA256)
	reportSaying(t, cb.b, a, "dev-cert-4", "failed", "revocation list stale")
	cb.f.clear()
	testbed.CycleInstalls(t, a, r.SHA256, "once a fresh list is served")
}

// TestReplayedOlderRevocationListIsRefused performs the replay of an
// older, unexpired revocation list after the device recorded a newer one:
// refused (attest.ErrRollback) and reported at once, the recorded version
// unchanged, nothing installed.
func TestReplayedOlderRevocationListIsRefused(t *testing.T) {
	cb := newCertBed(t)
	a := cb.device(t, "dev-cert-5")
	v1 := cb.push(t, 1)
	r := cb.certified(t, "1.0.0", 1)
	cb.b.Deploy(r.Target, "dev-cert-5")
	cb.push(t, 2, revocation(certverifytest.HexSum("another artifact"), "GO-2026-0005"))
	if err := a.CheckRevocations(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	cb.f.set(listPath("dev-cert-5"), v1)
	err := a.Cycle(testbed.Ctx(t))
	if !errors.Is(err, attest.ErrRollback) {
		t.Fatalf("cycle: %v, want %v", err, attest.ErrRollback)
	}
	notInstalledNotRefused(t, a, r.SHA256)
	reportSaying(t, cb.b, a, "dev-cert-5", "failed", attest.ErrRollback.Error())
	if v := recordedVersion(t, cb.b, "dev-cert-5"); v != 2 {
		t.Fatalf("recorded revocation list version %d after the replay, want 2", v)
	}
}

// TestForgedRevocationListIsRefused performs a man in the middle serving
// a list of a high version signed with a key that is not the certifier's
// revocation key: refused (attest.ErrSignature), reported, not recorded,
// nothing installed.
func TestForgedRevocationListIsRefused(t *testing.T) {
	cb := newCertBed(t)
	a := cb.device(t, "dev-cert-6")
	cb.push(t, 1)
	r := cb.certified(t, "1.0.0", 1)
	cb.b.Deploy(r.Target, "dev-cert-6")
	forged, err := attest.SignRevocations(attest.RevocationList{Version: 99, Issued: cb.fx.Now, Expires: cb.fx.Now.Add(time.Hour)},
		cb.fx.Online.Certify)
	if err != nil {
		t.Fatal(err)
	}
	cb.f.set(listPath("dev-cert-6"), forged)
	err = a.Cycle(testbed.Ctx(t))
	if !errors.Is(err, attest.ErrSignature) {
		t.Fatalf("cycle: %v, want %v", err, attest.ErrSignature)
	}
	notInstalledNotRefused(t, a, r.SHA256)
	reportSaying(t, cb.b, a, "dev-cert-6", "failed", "revocation list")
	if v := recordedVersion(t, cb.b, "dev-cert-6"); v == 99 {
		t.Fatal("the forged list was recorded")
	}
}

// TestCertificateForAnotherDigestIsRefused performs a server answering
// the certificate request with a genuine certificate of another artifact.
func TestCertificateForAnotherDigestIsRefused(t *testing.T) {
	cb := newCertBed(t)
	a := cb.device(t, "dev-cert-7")
	cb.push(t, 1)
	r := cb.certified(t, "1.0.0", 1)
	cb.b.Deploy(r.Target, "dev-cert-7")
	cb.f.set(certPath("dev-cert-7", r.SHA256), cb.bundle(t, certverifytest.HexSum("another artifact"), attest.KindCertificate, attest.VerdictPass))
	err := a.Cycle(testbed.Ctx(t))
	if !errors.Is(err, certverify.ErrWrongSubject) {
		t.Fatalf("cycle: %v, want %v", err, certverify.ErrWrongSubject)
	}
	notInstalledNotRefused(t, a, r.SHA256)
	reportSaying(t, cb.b, a, "dev-cert-7", "failed", "another artifact")
}

// TestCertificateWithoutReceiptIsRefused performs a server stripping the
// log receipt from the bundle (a certificate the log may never have
// seen).
func TestCertificateWithoutReceiptIsRefused(t *testing.T) {
	cb := newCertBed(t)
	a := cb.device(t, "dev-cert-8")
	cb.push(t, 1)
	r := cb.certified(t, "1.0.0", 1)
	cb.b.Deploy(r.Target, "dev-cert-8")
	var b server.CertBundle
	if err := json.Unmarshal(cb.bundle(t, r.SHA256, attest.KindCertificate, attest.VerdictPass), &b); err != nil {
		t.Fatal(err)
	}
	b.Receipt = nil
	stripped, _ := json.Marshal(b)
	cb.f.set(certPath("dev-cert-8", r.SHA256), stripped)
	err := a.Cycle(testbed.Ctx(t))
	if !errors.Is(err, certverify.ErrNotLogged) {
		t.Fatalf("cycle: %v, want %v", err, certverify.ErrNotLogged)
	}
	notInstalledNotRefused(t, a, r.SHA256)
	reportSaying(t, cb.b, a, "dev-cert-8", "failed", "transparency log")
}

// TestRejectedArtifactIsRefused performs a server offering, for the
// assigned artifact, the certifier's signed rejection: a final verdict.
func TestRejectedArtifactIsRefused(t *testing.T) {
	cb := newCertBed(t)
	a := cb.device(t, "dev-cert-9")
	cb.push(t, 1)
	r := cb.certified(t, "1.0.0", 1)
	cb.b.Deploy(r.Target, "dev-cert-9")
	cb.f.set(certPath("dev-cert-9", r.SHA256), cb.bundle(t, r.SHA256, attest.KindRejection, attest.VerdictFail))
	err := a.Cycle(testbed.Ctx(t))
	if !errors.Is(err, certverify.ErrNotCertified) || !errors.Is(err, agent.ErrRefused) {
		t.Fatalf("cycle: %v, want a final refusal (%v)", err, certverify.ErrNotCertified)
	}
	if _, ok := a.Refused()[r.SHA256]; !ok {
		t.Fatal("the rejected artifact is not in the refused set")
	}
	reportSaying(t, cb.b, a, "dev-cert-9", "refused", "verdict")
}

// TestRunningArtifactRevokedLaterIsReported performs a revocation of the
// artifact the device runs: the periodic list check reports it once
// ("revocation-seen", "revoked: <advisory>") and the module keeps running.
func TestRunningArtifactRevokedLaterIsReported(t *testing.T) {
	cb := newCertBed(t)
	a := cb.device(t, "dev-cert-10")
	traversable(t, filepath.Join(cb.b.Dir, "devices", "dev-cert-10")) // the module restarts degraded as uid 65534
	cb.push(t, 1)
	r := cb.certified(t, "1.0.0", 1)
	cb.b.Deploy(r.Target, "dev-cert-10")
	testbed.CycleInstalls(t, a, r.SHA256, "installing the certified release")
	cb.push(t, 2, revocation(r.SHA256, "GO-2026-0010"))
	for i := 0; i < 2; i++ {
		if err := a.CheckRevocations(testbed.Ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	reportSaying(t, cb.b, a, "dev-cert-10", "revocation-seen", "revoked: GO-2026-0010")
	if n := countSaying(cb.b, "dev-cert-10", "revocation-seen", "revoked: GO-2026-0010"); n != 1 {
		t.Fatalf("the revocation of the running artifact was reported %d times, want once", n)
	}
	if got := testbed.Installed(t, a); got != r.SHA256 || a.ModulePID() == 0 {
		t.Fatalf("the device runs %q (pid %d), want %s still running", got, a.ModulePID(), r.SHA256)
	}
}

// TestRevocationListThatCannotBeRefreshedPastItsExpiryIsReportedOnce
// performs a server (or path) that stops answering the list request once
// the device's newest list is about to expire: past the expiry the device
// reports "revocation list stale" once and keeps running.
func TestRevocationListThatCannotBeRefreshedPastItsExpiryIsReportedOnce(t *testing.T) {
	cb := newCertBed(t)
	a := cb.device(t, "dev-cert-11")
	cb.push(t, 1)
	r := cb.certified(t, "1.0.0", 1)
	cb.b.Deploy(r.Target, "dev-cert-11")
	testbed.CycleInstalls(t, a, r.SHA256, "installing the certified release")
	expires := time.Now().Add(2 * time.Second).UTC()
	short, err := attest.SignRevocations(attest.RevocationList{Version: 2, Issued: cb.fx.Now, Expires: expires}, cb.fx.Online.Revoke)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cb.b.Admin.PushRevocations(testbed.Ctx(t), short); err != nil {
		t.Fatal(err)
	}
	a.CheckRevocations(testbed.Ctx(t)) // records version 2 unless it already expired
	cb.f.setHook(func(w http.ResponseWriter, req *http.Request) bool {
		if req.URL.Path == listPath("dev-cert-11") {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	testbed.WaitFor(t, 10*time.Second, "the short list to expire", func() bool { return time.Now().After(expires) })
	for i := 0; i < 3; i++ {
		if err := a.CheckRevocations(testbed.Ctx(t)); !errors.Is(err, agent.ErrStaleRevocations) {
			t.Fatalf("check %d: %v, want %v", i, err, agent.ErrStaleRevocations)
		}
	}
	reportSaying(t, cb.b, a, "dev-cert-11", "failed", "revocation list stale")
	if n := countSaying(cb.b, "dev-cert-11", "failed", "revocation list stale"); n != 1 {
		t.Fatalf("the stale list was reported %d times, want once", n)
	}
	if got := testbed.Installed(t, a); got != r.SHA256 || a.ModulePID() == 0 {
		t.Fatalf("the device runs %q (pid %d), want %s still running (policy: keep running)", got, a.ModulePID(), r.SHA256)
	}
}

// TestAgentWithoutCertifierRootInstallsAsBefore: without certifier_root
// nothing is enforced and no certifier state is kept.
func TestAgentWithoutCertifierRootInstallsAsBefore(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	a := device(t, b, "dev-cert-12", "board-a")
	installV1(t, b, a, "dev-cert-12")
	if err := a.CheckRevocations(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b.Dir, "devices", "dev-cert-12", "certstate.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("certifier state kept without a certifier root: %v", err)
	}
}

// recordedVersion is the revocation list version the device recorded.
func recordedVersion(t *testing.T, b *testbed.Bed, id string) int64 {
	t.Helper()
	s, err := verifystate.Load(filepath.Join(b.Dir, "devices", id, "certstate.json"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Revocations == nil {
		return 0
	}
	return s.Revocations.Version
}

// installThenV2 installs a certified v1 (the device records the log's
// checkpoint of size 1), then certifies (log size 2) and deploys v2.
func installThenV2(t *testing.T, cb *certBed, a *agent.Agent, id string) release.Result {
	t.Helper()
	cb.push(t, 1)
	r1 := cb.certified(t, "1.0.0", 1)
	cb.b.Deploy(r1.Target, id)
	testbed.CycleInstalls(t, a, r1.SHA256, "installing v1")
	r2 := cb.certified(t, "2.0.0", 2)
	cb.b.Deploy(r2.Target, id)
	return r2
}

// TestLaterReceiptWithoutAConsistencyProofIsNotInstalled performs a
// receipt of a larger log tree than the one the device recorded, with no
// way for the device to fetch a consistency proof (no certifier_log_url):
// the device cannot tell a fork from growth, so it refuses it as
// transient (certverify.ErrLogInconsistent), installs nothing and refuses
// nothing for good.
func TestLaterReceiptWithoutAConsistencyProofIsNotInstalled(t *testing.T) {
	cb := newCertBed(t)
	a := cb.device(t, "dev-cert-13")
	r2 := installThenV2(t, cb, a, "dev-cert-13")
	err := a.Cycle(testbed.Ctx(t))
	if !errors.Is(err, certverify.ErrLogInconsistent) {
		t.Fatalf("cycle: %v, want %v", err, certverify.ErrLogInconsistent)
	}
	if _, ok := a.Refused()[r2.SHA256]; ok {
		t.Fatal("an unproved checkpoint was made a final refusal")
	}
	reportSaying(t, cb.b, a, "dev-cert-13", "failed", "not consistent")
}

// TestLaterReceiptIsInstalledWithAConsistencyProofFromTheLog: with
// certifier_log_url the device fetches the proof that the larger tree
// extends the recorded one, verifies it, installs, and records the newer
// checkpoint.
func TestLaterReceiptIsInstalledWithAConsistencyProofFromTheLog(t *testing.T) {
	cb := newCertBed(t)
	logSrv := httptest.NewServer(cb.fx.Log.Handler())
	t.Cleanup(logSrv.Close)
	a := cb.device(t, "dev-cert-14", func(c *agent.Config) { c.CertifierLogURL = logSrv.URL })
	r2 := installThenV2(t, cb, a, "dev-cert-14")
	testbed.CycleInstalls(t, a, r2.SHA256, "installing v2 with a consistency proof")
	s, err := verifystate.Load(filepath.Join(cb.b.Dir, "devices", "dev-cert-14", "certstate.json"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Checkpoint == nil || s.Checkpoint.Size != 2 {
		t.Fatalf("recorded checkpoint %+v, want the log's tree of size 2", s.Checkpoint)
	}
}

// TestForkedLogCheckpointIsRefused performs a split view: a second log
// under the certifier's own origin and log key (a certifier or log key
// compromise) whose tree has the size the device recorded but other
// contents, receipting a certificate for the assigned artifact. Refused
// (certverify.ErrLogInconsistent), reported at once, nothing installed.
func TestForkedLogCheckpointIsRefused(t *testing.T) {
	cb := newCertBed(t)
	a := cb.device(t, "dev-cert-15")
	cb.push(t, 1)
	r1 := cb.certified(t, "1.0.0", 1) // the real log's tree: size 1
	cb.b.Deploy(r1.Target, "dev-cert-15")
	testbed.CycleInstalls(t, a, r1.SHA256, "installing v1")
	r2 := cb.b.Release(cb.b.ScriptBundle("2.0.0", true, 4096), "2.0.0", 2, "board-a")
	fork := *cb.fx
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "fork.db")+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	signer, err := certroot.LogSigner(certverifytest.Origin, cb.fx.Online.Log)
	if err != nil {
		t.Fatal(err)
	}
	if fork.Log, err = translog.Open(db, certverifytest.Origin, signer); err != nil {
		t.Fatal(err)
	}
	fork.DB = db
	forked := (&certBed{b: cb.b, f: cb.f, fx: &fork}).bundle(t, r2.SHA256, attest.KindCertificate, attest.VerdictPass)
	if _, err := cb.b.Admin.PutCertificate(testbed.Ctx(t), r2.SHA256, forked); err != nil {
		t.Fatal(err) // the server checks origin and key only; the device keeps the log's history
	}
	cb.b.Deploy(r2.Target, "dev-cert-15")
	err = a.Cycle(testbed.Ctx(t))
	if !errors.Is(err, certverify.ErrLogInconsistent) || !strings.Contains(err.Error(), "forked") {
		t.Fatalf("cycle: %v, want %v (forked)", err, certverify.ErrLogInconsistent)
	}
	if got := testbed.Installed(t, a); got != r1.SHA256 {
		t.Fatalf("the device runs %s, want v1 %s", got, r1.SHA256)
	}
	reportSaying(t, cb.b, a, "dev-cert-15", "failed", "forked")
}

// TestRunningAgentSeesARevocationOfWhatItRuns performs a revocation of
// the running artifact while the agent runs its loop with nothing new in
// the TUF repositories (check-ins answer "not modified", no full refresh
// due): the periodic list check (revocations_interval) finds it and
// reports it.
func TestRunningAgentSeesARevocationOfWhatItRuns(t *testing.T) {
	cb := newCertBed(t)
	cfg := cb.b.AgentConfig("dev-cert-16", "board-a")
	cfg.CertifierRoot = filepath.Join(cb.fx.Dir, certroot.CurrentRootFile)
	cfg.RevocationsInterval = agent.Duration(300 * time.Millisecond)
	cfg.FullRefresh = agent.Duration(time.Hour)
	a, err := agent.New(testbed.Ctx(t), cfg, cb.b.Log)
	if err != nil {
		t.Fatal(err)
	}
	cb.push(t, 1)
	r := cb.certified(t, "1.0.0", 1)
	ctx, cancel := contextWithCancel(t)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testbed.WaitFor(t, 10*time.Second, "enrollment", func() bool {
		_, err := cb.b.Server.Store().Device(testbed.Ctx(t), "dev-cert-16")
		return err == nil
	})
	cb.b.Deploy(r.Target, "dev-cert-16")
	testbed.WaitFor(t, 20*time.Second, "v1 committed", func() bool { return hasState(cb.b, "dev-cert-16", "committed") })
	cb.push(t, 2, revocation(r.SHA256, "GO-2026-0016"))
	testbed.WaitFor(t, 20*time.Second, "the revocation of the running artifact reported", func() bool {
		return countSaying(cb.b, "dev-cert-16", "revocation-seen", "revoked: GO-2026-0016") == 1
	})
}
