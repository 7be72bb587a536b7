package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certverify/certverifytest"
	"github.com/ztota/ztota/internal/devauth"
	"github.com/ztota/ztota/internal/enroll"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tlsutil"
)

// nudgeGet sends one nudge long poll signed by d (or by nobody with a
// nil client) and returns the answer and the sequence in it.
func nudgeGet(ctx context.Context, hc *http.Client, base, dev, query string) (int, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/devices/"+dev+"/nudge"+query, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, 0, nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		return 0, 0, fmt.Errorf("content type %q", ct)
	}
	var a server.NudgeAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return 0, 0, fmt.Errorf("answer %q: %v", body, err)
	}
	return resp.StatusCode, a.Seq, nil
}

// mustSeq asks for the device's sequence without waiting.
func mustSeq(t *testing.T, hc *http.Client, base, dev string) int64 {
	t.Helper()
	code, m, err := nudgeGet(ctxT(t), hc, base, dev, "?after=0&wait=0")
	if err != nil || code != http.StatusOK {
		t.Fatalf("nudge sequence of %s: %d %v", dev, code, err)
	}
	return m
}

type nudgeResult struct {
	code int
	seq  int64
	err  error
}

// longPoll starts a long poll in the background.
func longPoll(ctx context.Context, hc *http.Client, base, dev string, after int64, wait int) <-chan nudgeResult {
	ch := make(chan nudgeResult, 1)
	go func() {
		code, m, err := nudgeGet(ctx, hc, base, dev, fmt.Sprintf("?after=%d&wait=%d", after, wait))
		ch <- nudgeResult{code, m, err}
	}()
	return ch
}

func waitWaiters(t *testing.T, srv *server.Server, n int) {
	t.Helper()
	testbed.WaitFor(t, 60*time.Second, fmt.Sprintf("%d nudge long polls waiting", n), func() bool { return srv.NudgeWaiters() == n })
}

// TestNudgeAnswersTheLongPollOnNudge: a device's long poll answers when
// the server nudges it, with a new sequence; a nudge of another device
// does not answer it; a new revocation list stored nudges every device.
func TestNudgeAnswersTheLongPollOnNudge(t *testing.T) {
	e := newEnv(t, nil)
	d, other := e.enroll(t, "d1", "hw1", "fleet"), e.enroll(t, "d2", "hw1", "fleet")
	m0 := mustSeq(t, d.hc, e.URL, d.id)
	if m0 <= 0 {
		t.Fatalf("first sequence %d, want a positive start value", m0)
	}
	if code, m, err := nudgeGet(ctxT(t), d.hc, e.URL, d.id, ""); err != nil || code != 200 || m != m0 {
		t.Fatalf("without after: %d %d %v, want 200 and %d at once", code, m, err, m0)
	}
	ch := longPoll(ctxT(t), d.hc, e.URL, d.id, m0, 55)
	waitWaiters(t, e.Server, 1)
	e.Server.Nudge(other.id)
	if m := mustSeq(t, other.hc, e.URL, other.id); m != m0+1 {
		t.Fatalf("the other device's sequence %d, want %d", m, m0+1)
	}
	if n := e.Server.NudgeWaiters(); n != 1 {
		t.Fatalf("after a nudge of another device %d long polls wait, want 1", n)
	}
	select {
	case r := <-ch:
		t.Fatalf("a nudge of another device answered this one: %+v", r)
	default:
	}
	e.Server.Nudge(d.id)
	r := <-ch
	if r.err != nil || r.code != 200 || r.seq != m0+1 {
		t.Fatalf("nudged long poll: %+v, want 200 with seq %d", r, m0+1)
	}
	// A poll with an old sequence answers at once.
	if code, m, err := nudgeGet(ctxT(t), d.hc, e.URL, d.id, fmt.Sprintf("?after=%d&wait=55", m0)); err != nil || code != 200 || m != m0+1 {
		t.Fatalf("stale after: %d %d %v", code, m, err)
	}
	// Every device: both long polls answer.
	ch1, ch2 := longPoll(ctxT(t), d.hc, e.URL, d.id, m0+1, 55), longPoll(ctxT(t), other.hc, e.URL, other.id, m0+1, 55)
	waitWaiters(t, e.Server, 2)
	e.Server.NudgeAll()
	for _, ch := range []<-chan nudgeResult{ch1, ch2} {
		if r := <-ch; r.err != nil || r.code != 200 || r.seq != m0+2 {
			t.Fatalf("after NudgeAll: %+v, want seq %d", r, m0+2)
		}
	}
}

// TestNudgeAnswersAtWaitWithTheSameSequence: nothing happened, so the
// long poll answers when its wait passes with the sequence it was given.
func TestNudgeAnswersAtWaitWithTheSameSequence(t *testing.T) {
	e := newEnv(t, nil)
	d := e.enroll(t, "d1", "hw1", "fleet")
	m0 := mustSeq(t, d.hc, e.URL, d.id)
	r := <-longPoll(ctxT(t), d.hc, e.URL, d.id, m0, 1)
	if r.err != nil || r.code != 200 || r.seq != m0 {
		t.Fatalf("long poll without a nudge: %+v, want 200 with the same seq %d", r, m0)
	}
	if n := e.Server.NudgeWaiters(); n != 0 {
		t.Fatalf("%d long polls still counted", n)
	}
}

// TestNudgeOfAnotherDeviceIsRefused plays a device that asks for another
// device's nudges, an unsigned request and one signed by an unknown key.
func TestNudgeOfAnotherDeviceIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	d, victim := e.enroll(t, "d1", "hw1", "fleet"), e.enroll(t, "d2", "hw1", "fleet")
	if code, _, err := nudgeGet(ctxT(t), d.hc, e.URL, victim.id, "?after=0&wait=0"); err != nil || code != http.StatusForbidden {
		t.Fatalf("d1 asking for d2's nudges: %d %v, want 403", code, err)
	}
	if code, _, err := nudgeGet(ctxT(t), http.DefaultClient, e.URL, d.id, "?after=0&wait=0"); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("unsigned: %d %v, want 401", code, err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	forged := &http.Client{Transport: &devauth.Transport{DeviceID: d.id, Key: key, Now: e.clk.Now}}
	if code, _, err := nudgeGet(ctxT(t), forged, e.URL, d.id, "?after=0&wait=0"); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("signed by another key: %d %v, want 401", code, err)
	}
}

// TestNudgeBadParametersAreRefused: every malformed parameter is 400
// with a clear message; a wait beyond the longest is clamped.
func TestNudgeBadParametersAreRefused(t *testing.T) {
	e := newEnv(t, nil)
	d := e.enroll(t, "d1", "hw1", "fleet")
	for _, q := range []string{"?after=-1", "?after=abc", "?after=1&after=2", "?after=", "?after=+5", "?after=99999999999999999999",
		"?after=9999999999999999999", "?wait=x", "?wait=-5", "?wait=1s", "?wait=1&wait=2", "?wait=12345678901234567890", "?foo=1", "?after=1&x=%00"} {
		a := e.request(t, d.hc, "GET", "/v1/devices/d1/nudge"+q, "", nil)
		wantRefused(t, q, a, http.StatusBadRequest)
	}
	m0 := mustSeq(t, d.hc, e.URL, d.id)
	if code, m, err := nudgeGet(ctxT(t), d.hc, e.URL, d.id, "?after=0&wait=3600"); err != nil || code != 200 || m != m0 {
		t.Fatalf("wait=3600 (clamped): %d %d %v", code, m, err)
	}
}

// TestNudgeLongPollsPerDeviceAreBounded: a device (or a stolen key) may
// hold only a few long polls open; the next is refused with 429.
func TestNudgeLongPollsPerDeviceAreBounded(t *testing.T) {
	e := newEnv(t, nil)
	d := e.enroll(t, "d1", "hw1", "fleet")
	m0 := mustSeq(t, d.hc, e.URL, d.id)
	var chs []<-chan nudgeResult
	for range 4 {
		chs = append(chs, longPoll(ctxT(t), d.hc, e.URL, d.id, m0, 55))
	}
	waitWaiters(t, e.Server, 4)
	if code, _, err := nudgeGet(ctxT(t), d.hc, e.URL, d.id, fmt.Sprintf("?after=%d&wait=55", m0)); err != nil || code != http.StatusTooManyRequests {
		t.Fatalf("a fifth long poll: %d %v, want 429", code, err)
	}
	e.Server.Nudge(d.id)
	for _, ch := range chs {
		if r := <-ch; r.code != 200 || r.seq != m0+1 {
			t.Fatalf("%+v", r)
		}
	}
}

// TestNudgeSequenceChangesOnRestartAndShutdownAnswersWaiters: a server
// restarted over the same data answers with another sequence (the agent
// refreshes at once), and a server shutting down answers its long polls
// at once instead of holding them for their wait.
func TestNudgeSequenceChangesOnRestartAndShutdownAnswersWaiters(t *testing.T) {
	e := newEnv(t, nil)
	d := e.enroll(t, "d1", "hw1", "fleet")
	m1 := mustSeq(t, d.hc, e.URL, d.id)
	e.Server.Close()

	srv, err := server.New(ctxT(t), server.Config{DataDir: filepath.Join(e.Dir, "server"), Logger: e.Log, Now: e.clk.Now, InsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	m2 := mustSeq(t, d.hc, base, d.id)
	if m2 == m1 {
		t.Fatalf("the restarted server answers the same sequence %d", m1)
	}
	ch := longPoll(ctxT(t), d.hc, base, d.id, m2, 55)
	waitWaiters(t, srv, 1)
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	// Serve has returned: without the shutdown answer the poll would
	// still wait for its 55 s.
	select {
	case r := <-ch:
		if r.err != nil || r.code != 200 || r.seq != m2 {
			t.Fatalf("long poll at shutdown: %+v, want 200 with seq %d", r, m2)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll was not answered at shutdown")
	}
}

// TestNudgeWakesOnlyTheNudgedOfManyWaiters: 2,000 devices long-poll at
// once; a nudge of one answers exactly that one while the 1,999 others
// keep waiting. It also logs what the waiting costs the server process
// (goroutines and memory per waiting device, client and server in one
// process here, so an upper bound).
func TestNudgeWakesOnlyTheNudgedOfManyWaiters(t *testing.T) {
	const n = 2000
	e := newEnv(t, nil)
	ctx := ctxT(t)
	type dev struct {
		id string
		hc *http.Client
	}
	devs := make([]dev, n)
	base := &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0, DisableCompression: true}
	defer base.CloseIdleConnections()
	tx, err := e.Server.Store().DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range devs {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		id := "w" + strconv.Itoa(i)
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, public_key, hardware_id, grp, enrolled) VALUES (?,?,?,?,?)`,
			id, []byte(pub), "hw1", "fleet", e.clk.Now().Unix()); err != nil {
			t.Fatal(err)
		}
		devs[i] = dev{id, &http.Client{Transport: &devauth.Transport{Base: base, DeviceID: id, Key: priv, Now: e.clk.Now}}}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	m0 := mustSeq(t, devs[0].hc, e.URL, devs[0].id)
	before := memNow()
	pollCtx, stop := context.WithCancel(ctx)
	defer stop()
	answers := make(chan string, n)
	var wg sync.WaitGroup
	for _, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, m, err := nudgeGet(pollCtx, d.hc, e.URL, d.id, fmt.Sprintf("?after=%d&wait=55", m0))
			if pollCtx.Err() != nil {
				return
			}
			answers <- fmt.Sprintf("%s %d %d %v", d.id, code, m, err)
		}()
	}
	waitWaiters(t, e.Server, n)
	after := memNow()
	t.Logf("%d waiting long polls (client and server in this process): %.1f KiB and %.1f goroutines per waiting device",
		n, float64(after.bytes-before.bytes)/n/1024, float64(after.goroutines-before.goroutines)/n)

	e.Server.Nudge("w1234")
	got := <-answers
	if want := fmt.Sprintf("w1234 200 %d <nil>", m0+1); got != want {
		t.Fatalf("answer %q, want %q", got, want)
	}
	if w := e.Server.NudgeWaiters(); w != n-1 {
		t.Fatalf("%d long polls wait after the nudge of one device, want %d", w, n-1)
	}
	select {
	case a := <-answers:
		t.Fatalf("a device that was not nudged was answered: %s", a)
	default:
	}
	stop()
	wg.Wait()
	waitWaiters(t, e.Server, 0)
}

type memSample struct {
	bytes      uint64
	goroutines int
}

func memNow() memSample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{bytes: ms.HeapInuse + ms.StackInuse, goroutines: runtime.NumGoroutine()}
}

// TestNudgeLongPollOutlivesTheWriteBoundOverHTTP2: the server bounds each
// response write (Timeouts.WriteIdle, here 300 ms), and an HTTP/2 stream
// is reset when its write deadline passes even while nothing is written;
// a long poll waiting three times that long still gets its answer.
func TestNudgeLongPollOutlivesTheWriteBoundOverHTTP2(t *testing.T) {
	b := testbed.New(t, testbed.Options{TLS: true, Server: func(c *server.Config) {
		c.Timeouts.WriteIdle = 300 * time.Millisecond
	}})
	ctx := ctxT(t)
	tok, err := b.Admin.EnrollToken(ctx, "fleet", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	body, _ := json.Marshal(enroll.NewRequest(tok, "d1", "hw1", pub))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.URL+"/v1/enroll", bytes.NewReader(body))
	resp, err := b.Admin.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("enrolling: %s", resp.Status)
	}
	base, err := tlsutil.Transport(b.CA)
	if err != nil {
		t.Fatal(err)
	}
	defer base.CloseIdleConnections()
	hc := &http.Client{Transport: &devauth.Transport{Base: base, DeviceID: "d1", Key: priv}}
	m0 := mustSeq(t, hc, b.URL, "d1")
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/devices/d1/nudge?after=%d&wait=1", b.URL, m0), nil)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatalf("long poll past the write bound: %v", err)
	}
	defer resp.Body.Close()
	var a server.NudgeAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != 200 || a.Seq != m0 {
		t.Fatalf("long poll past the write bound: %s %+v %v", resp.Status, a, err)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("answered over %s: the test needs HTTP/2", resp.Proto)
	}
}

// TestNudgeANewRevocationListNudgesEveryDevice: storing a newer signed
// list answers every waiting long poll; the same list stored again (no
// change) and a refused list nudge nobody.
func TestNudgeANewRevocationListNudgesEveryDevice(t *testing.T) {
	g := newGateEnv(t)
	d1, d2 := g.enroll(t, "d1", "hw1", "fleet"), g.enroll(t, "d2", "hw1", "fleet")
	if a := g.api(t, "PUT", "/v1/revocations", g.fx.Revocations(t, 1)); a.code != http.StatusOK {
		t.Fatalf("storing list 1: %s", a)
	}
	m0 := mustSeq(t, d1.hc, g.URL, d1.id)
	ch1, ch2 := longPoll(ctxT(t), d1.hc, g.URL, d1.id, m0, 55), longPoll(ctxT(t), d2.hc, g.URL, d2.id, m0, 55)
	waitWaiters(t, g.Server, 2)
	if a := g.api(t, "PUT", "/v1/revocations", g.fx.Revocations(t, 1)); a.code != http.StatusOK {
		t.Fatalf("storing list 1 again: %s", a)
	}
	if a := g.api(t, "PUT", "/v1/revocations", certverifytest.New(t).Revocations(t, 9)); a.code == http.StatusOK {
		t.Fatalf("a list of another certifier was stored: %s", a)
	}
	if n := g.Server.NudgeWaiters(); n != 2 {
		t.Fatalf("after an unchanged and a refused list %d long polls wait, want 2", n)
	}
	rev := attest.Revocation{ArtifactSHA256: certverifytest.HexSum("a"), Advisories: []string{"GO-2099-0002"}, Time: g.fx.Now}
	if a := g.api(t, "PUT", "/v1/revocations", g.fx.Revocations(t, 2, rev)); a.code != http.StatusOK {
		t.Fatalf("storing list 2: %s", a)
	}
	for _, ch := range []<-chan nudgeResult{ch1, ch2} {
		if r := <-ch; r.err != nil || r.code != 200 || r.seq != m0+1 {
			t.Fatalf("after a new list: %+v, want seq %d", r, m0+1)
		}
	}
}

// TestNudgeMitigationNudgesExactlyTheMitigatedDevices: a certifier
// revocation followed from the feed nudges the devices running the
// revoked artifact (d00, d01), once, and not d02 (enrolled, running
// nothing of it). The roll-out of a fix is off, so only the mitigation
// nudges.
func TestNudgeMitigationNudgesExactlyTheMitigatedDevices(t *testing.T) {
	cert, feed := certverifytest.New(t), newFakeFeed(t)
	mitigated := make(chan struct{}, 1)
	e := newEnv(t, func(c *server.Config) {
		c.CertdURL, c.CertdCAFile, c.CertifierRoot = feed.srv.URL, feed.caFile, cert.Root
		c.FeedWait, c.FeedMaxBackoff = 2*time.Second, 100*time.Millisecond
		c.Repair.NoAutoFix = true
		c.OnMitigation = func(context.Context, server.MitigationOutcome) { mitigated <- struct{}{} }
	})
	ds := e.fleet(t, 3)
	v1 := e.release(t, "1.0", 1, "hw1")
	r, err := e.Server.Store().Release(ctxT(t), v1)
	if err != nil {
		t.Fatal(err)
	}
	if a := e.api(t, "PUT", "/v1/certificates/"+r.SHA256, issueFor(t, cert, r.SHA256, attest.KindCertificate, attest.VerdictPass)); a.code != http.StatusOK {
		t.Fatalf("storing the certificate: %s", a)
	}
	e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["d00","d01"]}`, v1))
	for _, d := range ds[:2] {
		e.mustPost(t, d, d.rep(report.StateCommitted, v1))
	}
	follow(t, e.Server)
	before := map[string]int64{}
	for _, d := range ds {
		before[d.id] = e.Server.NudgeSeq(d.id)
	}
	feed.set(mint(t, cert.Online.Certify, 1, "revocation", r.SHA256, map[string]any{
		"certificate": "sha256:" + certverifytest.HexSum("cert"), "advisories": []string{"GO-2024-0001"}, "reason": "vulnerable"}))
	select {
	case <-mitigated:
	case <-time.After(30 * time.Second):
		t.Fatal("no mitigation 30 s after the revocation")
	}
	for d, want := range map[string]int64{"d00": before["d00"] + 1, "d01": before["d01"] + 1, "d02": before["d02"]} {
		if got := e.Server.NudgeSeq(d); got != want {
			t.Errorf("%s: nudge sequence %d, want %d", d, got, want)
		}
	}
}
