package server_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certverify/certverifytest"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tufrepo"
	"github.com/ztota/ztota/internal/webhook"
)

// hookReceiver is a repair webhook receiver over TLS that answers 500 to
// its first fail requests and records the others.
type hookReceiver struct {
	mu       sync.Mutex
	fail     int
	attempts int
	got      []hookReq
	srv      *httptest.Server
	caFile   string
}

type hookReq struct {
	body                    []byte
	sig, keyID, event, seqH string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, webhook.MaxBody+1))
		h.mu.Lock()
		defer h.mu.Unlock()
		h.attempts++
		if err != nil || h.fail > 0 {
			h.fail--
			http.Error(w, "not now", http.StatusInternalServerError)
			return
		}
		h.got = append(h.got, hookReq{body: body, sig: r.Header.Get(webhook.SignatureHeader), keyID: r.Header.Get(webhook.KeyIDHeader),
			event: r.Header.Get(webhook.EventHeader), seqH: r.Header.Get(webhook.SeqHeader)})
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	h.caFile = filepath.Join(t.TempDir(), "hook-ca.pem")
	if err := os.WriteFile(h.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *hookReceiver) received() []hookReq {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// events verifies every received webhook with pub and returns their
// bodies.
func (h *hookReceiver) events(t *testing.T, pub ed25519.PublicKey) []server.WebhookBody {
	t.Helper()
	var out []server.WebhookBody
	for _, r := range h.received() {
		if err := webhook.Verify(pub, r.body, r.sig); err != nil {
			t.Fatalf("webhook %s does not verify: %v", r.body, err)
		}
		if r.keyID != webhook.KeyID(pub) {
			t.Fatalf("key id %q, want %q", r.keyID, webhook.KeyID(pub))
		}
		var b server.WebhookBody
		if err := json.Unmarshal(r.body, &b); err != nil {
			t.Fatal(err)
		}
		if r.event != b.Event || r.seqH != strconv.FormatInt(b.Seq, 10) {
			t.Fatalf("headers %q %q disagree with the body %+v", r.event, r.seqH, b)
		}
		out = append(out, b)
	}
	return out
}

// fixBed is a server following a fake certifier feed and sending repair
// webhooks to a receiver. Devices d00-d02 (hw1) and d04 (hw2) run v1
// (module app, release counter 5, artifact a; its backup is vb, counter
// 4); d03 runs a release of another module.
type fixBed struct {
	*env
	cert   *certverifytest.Fixture
	feed   *fakeFeed
	hook   *hookReceiver
	cfg    func(*server.Config)
	devs   map[string]*device
	v1, vb string
	v1File string
	a      string
}

func newFixBed(t *testing.T, adjust func(*server.Config)) *fixBed {
	t.Helper()
	fb := &fixBed{cert: certverifytest.New(t), feed: newFakeFeed(t), hook: newHookReceiver(t), devs: map[string]*device{}}
	fb.cfg = func(c *server.Config) {
		c.CertdURL, c.CertdCAFile, c.CertifierRoot = fb.feed.srv.URL, fb.feed.caFile, fb.cert.Root
		c.FeedWait, c.FeedMaxBackoff = 2*time.Second, 100*time.Millisecond
		c.Repair.Webhook, c.Repair.WebhookCAFile, c.Repair.WebhookMaxBackoff = fb.hook.srv.URL, fb.hook.caFile, 300*time.Millisecond
		if adjust != nil {
			adjust(c)
		}
	}
	fb.env = newEnv(t, fb.cfg)
	for _, d := range fb.fleet(t, 4) {
		fb.devs[d.id] = d
	}
	fb.devs["d04"] = fb.enroll(t, "d04", "hw2", "fleet")
	fb.vb = fb.publish(t, "", "app", "0.9", 4, "app", "", "hw1", "hw2")
	fb.v1File = artifact(t, 512)
	fb.v1 = fb.publish(t, fb.v1File, "app", "1.0", 5, "app", fb.vb, "hw1", "hw2")
	other := fb.publish(t, "", "other", "1.0", 1, "other", "", "hw1")
	for _, target := range []string{fb.v1, other} {
		fb.certify(t, target)
	}
	fb.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["d00","d01","d02","d04"]}`, fb.v1))
	fb.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["d03"]}`, other))
	for _, id := range []string{"d00", "d01", "d02", "d03", "d04"} {
		target := fb.v1
		if id == "d03" {
			target = other
		}
		fb.mustPost(t, fb.devs[id], fb.devs[id].rep(report.StateCommitted, target))
	}
	fb.a = fb.sha(t, fb.v1)
	return fb
}

// publish signs and uploads a release (a fresh random artifact when file
// is "").
func (fb *fixBed) publish(t *testing.T, file, name, version string, counter uint64, module, backup string, hw ...string) string {
	t.Helper()
	if file == "" {
		file = artifact(t, 512)
	}
	r, err := release.Publish(ctxT(t), fb.Admin, release.Options{Artifact: file, KeysDir: fb.KeysDir,
		Meta: tufrepo.ImageMeta{Name: name, Version: version, ReleaseCounter: counter, HardwareIDs: hw, Module: module, Backup: backup}})
	if err != nil {
		t.Fatal(err)
	}
	return r.Target
}

func (fb *fixBed) sha(t *testing.T, target string) string {
	t.Helper()
	r, err := fb.Server.Store().Release(ctxT(t), target)
	if err != nil {
		t.Fatal(err)
	}
	return r.SHA256
}

// certify stores a passing certificate of target's artifact.
func (fb *fixBed) certify(t *testing.T, target string) {
	t.Helper()
	sha := fb.sha(t, target)
	if a := fb.api(t, "PUT", "/v1/certificates/"+sha, issueFor(t, fb.cert, sha, attest.KindCertificate, attest.VerdictPass)); a.code != http.StatusOK {
		t.Fatalf("storing the certificate of %s: %s", target, a)
	}
}

func (fb *fixBed) revoke(t *testing.T, seq int64, sha string, adv ...string) {
	t.Helper()
	// Reports from before the revocation are not part of a timeline.
	fb.clk.Advance(time.Second)
	fb.feed.set(mint(t, fb.cert.Online.Certify, seq, "revocation", sha, map[string]any{
		"certificate": "sha256:" + certverifytest.HexSum("cert"), "advisories": adv, "reason": "vulnerable"}))
	waitCursor(t, fb.Server, seq)
}

func (fb *fixBed) repair(t *testing.T) store.Repair {
	t.Helper()
	rs, err := fb.Server.Store().Repairs(ctxT(t))
	if err != nil || len(rs) == 0 {
		t.Fatalf("repair requests: %v %v", rs, err)
	}
	return rs[len(rs)-1] // the oldest
}

func (fb *fixBed) webhookKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	a := fb.api(t, "GET", "/v1/webhook-key", nil)
	var k server.WebhookKey
	if a.code != 200 || json.Unmarshal(a.body, &k) != nil || k.Alg != "ed25519" {
		t.Fatalf("GET /v1/webhook-key: %s", a)
	}
	pub, err := base64.StdEncoding.DecodeString(k.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize || k.KeyID != webhook.KeyID(pub) {
		t.Fatalf("webhook key %+v", k)
	}
	return pub
}

func waitFixDeployment(t *testing.T, st *store.Store) store.Repair {
	t.Helper()
	var r store.Repair
	testbed.WaitFor(t, 20*time.Second, "the fix deployment", func() bool {
		rs, err := st.Repairs(context.Background())
		if err != nil || len(rs) == 0 {
			return false
		}
		r = rs[len(rs)-1]
		return r.Deployment != ""
	})
	return r
}

func deploymentCount(t *testing.T, st *store.Store) int {
	t.Helper()
	ds, err := st.Deployments(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return len(ds)
}

// TestRevokedReleaseGetsTheCertifiedFixAutomatically performs the whole
// repair: the certifier revokes v1, the server opens a repair request;
// v2 (counter 6, hw1 only) is published, then certified, and the server
// deploys it by itself in waves [10, 100] to exactly the mitigated hw1
// devices (not d03 on another module, not d04 whose hardware v2 does not
// support); a device that switches to v1's backup keeps its mitigation
// open; the devices commit v2 and their mitigations close naming v2 with
// their timelines; d04 is decommissioned (abandoned) and the repair
// request closes. The webhook receiver got opened, fix-deployed and
// closed, in order, each signed with the server's webhook key.
func TestRevokedReleaseGetsTheCertifiedFixAutomatically(t *testing.T) {
	fb := newFixBed(t, nil)
	ctx := ctxT(t)
	st := fb.Server.Store()
	follow(t, fb.Server)
	before := deploymentCount(t, st)
	fb.revoke(t, 1, fb.a, "GO-2024-0001")
	if r := fb.repair(t); r.State != store.RepairOpen || r.Open != 4 || r.Deployment != "" {
		t.Fatalf("repair request after the revocation: %+v", r)
	}
	v2 := fb.publish(t, "", "app", "2.0", 6, "app", "", "hw1")
	if fds, err := fb.Server.Autofix(ctx); err != nil || len(fds) != 0 {
		t.Fatalf("fix scan with an uncertified v2: %+v %v", fds, err)
	}
	if n := deploymentCount(t, st); n != before {
		t.Fatalf("deployments before v2 is certified: %d, want %d", n, before)
	}
	fb.certify(t, v2)
	r := waitFixDeployment(t, st)
	if r.FixRelease != v2 {
		t.Fatalf("fix release %q, want %s", r.FixRelease, v2)
	}
	v := fb.view(t, r.Deployment)
	var devs []string
	waves := map[int]int{}
	for _, d := range v.Devices {
		devs = append(devs, d.DeviceID)
		waves[d.Wave]++
	}
	if v.Target != v2 || !slices.Equal(devs, []string{"d00", "d01", "d02"}) || !slices.Equal(v.Waves, []float64{10, 100}) ||
		waves[0] != 1 || waves[1] != 2 {
		t.Fatalf("fix deployment %+v", v)
	}
	// A second trigger does not deploy again.
	if fds, err := fb.Server.Autofix(ctx); err != nil || len(fds) != 0 || deploymentCount(t, st) != before+1 {
		t.Fatalf("second fix scan: %+v %v (%d deployments)", fds, err, deploymentCount(t, st))
	}

	// d01 switches to v1's backup: protected, not fixed.
	d00, d01, d02 := fb.devs["d00"], fb.devs["d01"], fb.devs["d02"]
	fb.mustPost(t, d01, d01.rep(report.StateRevocationSeen, fb.v1), d01.rep(report.StateOnBackup, fb.vb), d01.rep(report.StateCommitted, fb.vb))
	if ms, _ := st.Mitigations(ctx, store.MitigationFilter{Device: "d01"}); len(ms) != 1 || ms[0].State != store.MitigationOpen {
		t.Fatalf("d01 on the backup: %+v", ms)
	}
	// The devices install the fix, wave by wave.
	fb.mustPost(t, d00, d00.rep(report.StateCommitted, v2))
	fb.mustPost(t, d01, d01.rep(report.StateCommitted, v2))
	fb.mustPost(t, d02, d02.rep(report.StateCommitted, v2))
	if v := fb.view(t, r.Deployment); v.Status != store.DeployCompleted {
		t.Fatalf("fix deployment after the commits: %+v", v)
	}
	ms, _ := st.Mitigations(ctx, store.MitigationFilter{State: store.MitigationClosed})
	if len(ms) != 3 {
		t.Fatalf("closed mitigations: %+v", ms)
	}
	for _, m := range ms {
		if m.ClosedBy != v2 || m.Closed.IsZero() || m.FixDeployment != r.Deployment {
			t.Fatalf("closed mitigation %+v", m)
		}
	}
	if r := fb.repair(t); r.State != store.RepairOpen || r.Open != 1 || r.ClosedCount != 3 {
		t.Fatalf("repair request with d04 still open: %+v", r)
	}
	// The view shows d01's timeline.
	a := fb.api(t, "GET", "/v1/mitigations?state=closed&device=d01", nil)
	var got []store.Mitigation
	if a.code != 200 || json.Unmarshal(a.body, &got) != nil || len(got) != 1 {
		t.Fatalf("GET closed mitigations of d01: %s", a)
	}
	var states []string
	for _, e := range got[0].Timeline {
		states = append(states, e.State)
	}
	if !slices.Equal(states, []string{"revocation-seen", "on-backup", "committed", "committed"}) {
		t.Fatalf("d01's timeline %v", got[0].Timeline)
	}
	// d04 (hw2) has no fix; it is decommissioned: abandoned, and the
	// repair request closes.
	if a := fb.api(t, "POST", "/v1/devices/d04/decommission", nil); a.code != 200 {
		t.Fatalf("decommission: %s", a)
	}
	r = fb.repair(t)
	if r.State != store.RepairClosed || r.Closed.IsZero() || r.Open != 0 || r.ClosedCount != 4 {
		t.Fatalf("repair request after the last mitigation: %+v", r)
	}
	if ms, _ := st.Mitigations(ctx, store.MitigationFilter{State: store.MitigationAbandoned}); len(ms) != 1 || ms[0].DeviceID != "d04" {
		t.Fatalf("abandoned: %+v", ms)
	}

	pub := fb.webhookKey(t)
	testbed.WaitFor(t, 20*time.Second, "three webhooks", func() bool { return len(fb.hook.received()) >= 3 })
	evs := fb.hook.events(t, pub)
	var kinds []string
	for i, e := range evs {
		kinds = append(kinds, e.Event)
		if e.Repair.ID != r.ID || e.Repair.Artifact != fb.a || (i > 0 && e.Seq <= evs[i-1].Seq) {
			t.Fatalf("webhook %d: %+v", i, e)
		}
	}
	if !slices.Equal(kinds, []string{"repair.opened", "repair.fix-deployed", "repair.closed"}) {
		t.Fatalf("webhooks %v", kinds)
	}
	if evs[1].Repair.FixRelease != v2 || evs[1].Repair.Deployment != r.Deployment || evs[2].Repair.State != store.RepairClosed ||
		!slices.Equal(evs[0].Repair.Devices, []string{"d00", "d01", "d02", "d04"}) || !slices.Equal(evs[0].Repair.Advisories, []string{"GO-2024-0001"}) {
		t.Fatalf("webhook bodies %+v", evs)
	}
	// A tampered body fails Verify.
	first := fb.hook.received()[0]
	tampered := []byte(strings.Replace(string(first.body), "repair.opened", "repair.closed", 1))
	if err := webhook.Verify(pub, tampered, first.sig); err == nil {
		t.Fatal("a tampered webhook body verified")
	}
}

// TestFixCertifiedBeforeTheRevocationIsDeployedAtOnce: a certified v2
// already exists when v1 is revoked; the server deploys it at once, with
// no other trigger. The mitigated devices are nudged when the mitigation
// is recorded and again when the fix is assigned. A "recovered" report of
// the revoked release closes nothing; of the fix, it closes.
func TestFixCertifiedBeforeTheRevocationIsDeployedAtOnce(t *testing.T) {
	var mu sync.Mutex
	var nudged [][]string
	fb := newFixBed(t, func(c *server.Config) {
		c.OnNudge = func(ids ...string) {
			mu.Lock()
			nudged = append(nudged, slices.Clone(ids))
			mu.Unlock()
		}
	})
	v2 := fb.publish(t, "", "app", "2.0", 6, "app", "", "hw1", "hw2")
	fb.certify(t, v2)
	follow(t, fb.Server)
	fb.revoke(t, 1, fb.a)
	r := waitFixDeployment(t, fb.Server.Store())
	v := fb.view(t, r.Deployment)
	var devs []string
	for _, d := range v.Devices {
		devs = append(devs, d.DeviceID)
	}
	if r.FixRelease != v2 || !slices.Equal(devs, []string{"d00", "d01", "d02", "d04"}) {
		t.Fatalf("fix %s deployment %+v", r.FixRelease, v)
	}
	// "recovered" of the revoked release closes nothing; of the fix, it
	// closes.
	d04 := fb.devs["d04"]
	fb.mustPost(t, d04, d04.rep(report.StateRecovered, fb.v1))
	if ms, _ := fb.Server.Store().Mitigations(ctxT(t), store.MitigationFilter{Device: "d04"}); len(ms) != 1 || ms[0].State != store.MitigationOpen {
		t.Fatalf("d04 after recovered of the revoked release: %+v", ms)
	}
	fb.mustPost(t, d04, d04.rep(report.StateRecovered, v2))
	if ms, _ := fb.Server.Store().Mitigations(ctxT(t), store.MitigationFilter{Device: "d04"}); len(ms) != 1 ||
		ms[0].State != store.MitigationClosed || ms[0].ClosedBy != v2 {
		t.Fatalf("d04 after recovered of the fix: %+v", ms)
	}
	testbed.WaitFor(t, 20*time.Second, "two nudges", func() bool { mu.Lock(); defer mu.Unlock(); return len(nudged) >= 2 })
	mu.Lock()
	defer mu.Unlock()
	all := []string{"d00", "d01", "d02", "d04"}
	if len(nudged) != 2 || !slices.Equal(nudged[0], all) || !slices.Equal(nudged[1], all) {
		t.Fatalf("nudges %v", nudged)
	}
}

// TestNoFixIsDeployedWithoutACertifiedHigherRelease performs every
// release that must not be taken for the fix: a lower counter, an
// uncertified one, one whose artifact the certifier revoked too, one for
// other hardware, one of another module, and v1's own bytes re-signed
// with a higher counter. No deployment is made and the repair stays open.
func TestNoFixIsDeployedWithoutACertifiedHigherRelease(t *testing.T) {
	fb := newFixBed(t, nil)
	ctx := ctxT(t)
	st := fb.Server.Store()
	fb.publish(t, "", "app", "1.5", 6, "app", "", "hw1", "hw2") // not certified
	revokedFix := fb.publish(t, "", "app", "1.6", 7, "app", "", "hw1", "hw2")
	otherHW := fb.publish(t, "", "app", "1.7", 8, "app", "", "hw3")
	otherModule := fb.publish(t, "", "tool", "1.8", 9, "tool", "", "hw1", "hw2")
	fb.publish(t, fb.v1File, "app", "1.9", 10, "app", "", "hw1", "hw2") // v1's bytes, certified with v1
	lower := fb.publish(t, "", "app", "0.8", 3, "app", "", "hw1", "hw2")
	for _, target := range []string{revokedFix, otherHW, otherModule, lower} {
		fb.certify(t, target)
	}
	before := deploymentCount(t, st)
	follow(t, fb.Server)
	fb.feed.set(mint(t, fb.cert.Online.Certify, 1, "revocation", fb.sha(t, revokedFix), map[string]any{"advisories": []string{"GO-1"}}),
		mint(t, fb.cert.Online.Certify, 2, "revocation", fb.a, map[string]any{"advisories": []string{"GO-2"}}))
	waitCursor(t, fb.Server, 2)
	if fds, err := fb.Server.Autofix(ctx); err != nil || len(fds) != 0 {
		t.Fatalf("fix scan: %+v %v", fds, err)
	}
	if n := deploymentCount(t, st); n != before {
		t.Fatalf("deployments: %d, want %d", n, before)
	}
	rs, _ := st.Repairs(ctx)
	for _, r := range rs {
		if r.Deployment != "" || r.State != store.RepairOpen {
			t.Fatalf("repair request %+v", r)
		}
	}
}

// TestFixIsDeployedOnceAcrossRestartAndBusyDevicesWait: d02 is busy in
// another running deployment when the fix is certified, so the fix
// deployment leaves it out; a server restarted on the same data (whose
// scan at start runs) deploys nothing again; once d02's other deployment
// is halted, the next scan gives d02 alone a deployment of the fix.
func TestFixIsDeployedOnceAcrossRestartAndBusyDevicesWait(t *testing.T) {
	fb := newFixBed(t, nil)
	ctx := ctxT(t)
	st := fb.Server.Store()
	follow(t, fb.Server)
	fb.revoke(t, 1, fb.a)
	v11 := fb.publish(t, "", "app", "1.1", 5, "app", "", "hw1") // same counter: not a fix
	fb.certify(t, v11)
	busy := fb.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["d02"]}`, v11))
	v2 := fb.publish(t, "", "app", "2.0", 6, "app", "", "hw1")
	fb.certify(t, v2)
	r := waitFixDeployment(t, st)
	v := fb.view(t, r.Deployment)
	if len(v.Devices) != 2 || v.Devices[0].DeviceID != "d00" || v.Devices[1].DeviceID != "d01" {
		t.Fatalf("fix deployment with d02 busy: %+v", v)
	}
	n := deploymentCount(t, st)

	cfg := server.Config{DataDir: filepath.Join(fb.Dir, "server"), Logger: fb.Log, Now: fb.clk.Now}
	fb.cfg(&cfg)
	srv2, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	if fds, err := srv2.Autofix(ctx); err != nil || len(fds) != 0 || deploymentCount(t, st) != n {
		t.Fatalf("restarted server's scan: %+v %v", fds, err)
	}
	if a := fb.api(t, "POST", "/v1/deployments/"+busy.ID+"/halt", nil); a.code != 200 {
		t.Fatalf("halt: %s", a)
	}
	// srv2's scan (this one, or its scan at start) gives d02 the fix.
	if _, err := srv2.Autofix(ctx); err != nil {
		t.Fatal(err)
	}
	ms, _ := st.Mitigations(ctx, store.MitigationFilter{Device: "d02"})
	if len(ms) != 1 || ms[0].FixDeployment == "" || ms[0].FixDeployment == r.Deployment {
		t.Fatalf("d02's mitigation after it is free: %+v", ms)
	}
	if v := fb.view(t, ms[0].FixDeployment); v.Target != v2 || len(v.Devices) != 1 || v.Devices[0].DeviceID != "d02" {
		t.Fatalf("d02's fix deployment %+v", v)
	}
	if fds, err := fb.Server.Autofix(ctx); err != nil || len(fds) != 0 || deploymentCount(t, st) != n+1 {
		t.Fatalf("the first server's scan after that: %+v %v", fds, err)
	}
	if rr := fb.repair(t); rr.Deployment != r.Deployment {
		t.Fatalf("the repair request's first fix deployment changed: %s -> %s", r.Deployment, rr.Deployment)
	}
}

// TestAutoFixOffLeavesTheRepairOpen: with the roll-out configured off, a
// certified fix is not deployed.
func TestAutoFixOffLeavesTheRepairOpen(t *testing.T) {
	fb := newFixBed(t, func(c *server.Config) { c.Repair.NoAutoFix = true })
	st := fb.Server.Store()
	v2 := fb.publish(t, "", "app", "2.0", 6, "app", "", "hw1", "hw2")
	fb.certify(t, v2)
	before := deploymentCount(t, st)
	follow(t, fb.Server)
	fb.revoke(t, 1, fb.a)
	if fds, err := fb.Server.Autofix(ctxT(t)); err != nil || len(fds) != 0 {
		t.Fatalf("fix scan with --auto-fix=false: %+v %v", fds, err)
	}
	if r := fb.repair(t); r.Deployment != "" || r.State != store.RepairOpen || deploymentCount(t, st) != before {
		t.Fatalf("repair %+v, %d deployments", r, deploymentCount(t, st))
	}
}

// TestRepairWebhookRetriesAndDeliversInOrder: a receiver that fails three
// times gets each event once it answers, in order, and the outbox records
// the attempts; mitigation and the fix roll-out did not wait for it.
func TestRepairWebhookRetriesAndDeliversInOrder(t *testing.T) {
	fb := newFixBed(t, nil)
	fb.hook.mu.Lock()
	fb.hook.fail = 3
	fb.hook.mu.Unlock()
	v2 := fb.publish(t, "", "app", "2.0", 6, "app", "", "hw1", "hw2")
	fb.certify(t, v2)
	follow(t, fb.Server)
	fb.revoke(t, 1, fb.a)
	waitFixDeployment(t, fb.Server.Store())
	testbed.WaitFor(t, 30*time.Second, "two webhooks delivered", func() bool { return len(fb.hook.received()) >= 2 })
	evs := fb.hook.events(t, fb.webhookKey(t))
	if len(evs) != 2 || evs[0].Event != "repair.opened" || evs[1].Event != "repair.fix-deployed" || evs[0].Seq >= evs[1].Seq {
		t.Fatalf("webhooks %+v", evs)
	}
	// The receiver answered before the server recorded the delivery.
	testbed.WaitFor(t, 10*time.Second, "both deliveries recorded", func() bool {
		ob, err := fb.Server.Store().Outbox(ctxT(t))
		return err == nil && len(ob) == 2 && !ob[1].Delivered.IsZero()
	})
	ob, err := fb.Server.Store().Outbox(ctxT(t))
	if err != nil || len(ob) != 2 || ob[0].Attempts != 4 || ob[1].Attempts != 1 || ob[0].Delivered.IsZero() || ob[1].Delivered.IsZero() {
		t.Fatalf("outbox %+v %v", ob, err)
	}
}

// TestRepairConfigurationIsChecked: a plain-http webhook without the
// insecure flag, a CA without a URL, a missing CA file and bad fix waves
// refuse to start; GET /v1/webhook-key needs a token.
func TestRepairConfigurationIsChecked(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		rc   server.RepairConfig
		want string
	}{
		{"plain http", server.RepairConfig{Webhook: "http://127.0.0.1:1/hook"}, "--repair-webhook"},
		{"not a url", server.RepairConfig{Webhook: "ftp://x"}, "--repair-webhook"},
		{"ca without url", server.RepairConfig{WebhookCAFile: "ca.pem"}, "needs --repair-webhook"},
		{"missing ca", server.RepairConfig{Webhook: "https://127.0.0.1:1/hook", WebhookCAFile: filepath.Join(dir, "nope.pem")}, "--repair-webhook-ca"},
		{"waves", server.RepairConfig{Waves: []float64{50}}, "waves"},
		{"threshold", server.RepairConfig{FailureThreshold: 2}, "failure_threshold"},
	} {
		_, err := server.New(context.Background(), server.Config{DataDir: filepath.Join(dir, "data"), Repair: c.rc})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error naming %q", c.name, err, c.want)
		}
	}
	e := newEnv(t, nil)
	if a := e.request(t, nil, "GET", "/v1/webhook-key", "", nil); a.code != http.StatusUnauthorized {
		t.Fatalf("webhook key without a token: %s", a)
	}
	for _, p := range []string{"/v1/mitigations?state=closed", "/v1/mitigations?state=abandoned"} {
		if a := e.api(t, "GET", p, nil); a.code != 200 {
			t.Fatalf("%s: %s", p, a)
		}
	}
}
