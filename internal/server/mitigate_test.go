package server_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
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
	"github.com/ztota/ztota/internal/certclient"
	"github.com/ztota/ztota/internal/certverify/certverifytest"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
)

// fakeFeed is a certifier event feed over TLS serving events minted by
// the test: GET /v1/events?after=N&wait=D long-polls like certd's. With
// ignoreAfter it serves every event whatever the cursor (a certifier, or
// an attacker, delivering events again).
type fakeFeed struct {
	mu          sync.Mutex
	evs         []certclient.Event
	wake        chan struct{}
	afters      []int64 // the "after" of every request
	down        bool    // answer 503
	ignoreAfter bool
	srv         *httptest.Server
	caFile      string
}

func newFakeFeed(t *testing.T) *fakeFeed {
	f := &fakeFeed{wake: make(chan struct{})}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.caFile = filepath.Join(t.TempDir(), "certd-ca.pem")
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(f.caFile, pemData, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeFeed) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/events" {
		http.NotFound(w, r)
		return
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		f.mu.Lock()
		f.afters = append(f.afters, after)
		if f.down {
			f.mu.Unlock()
			http.Error(w, `{"error":"down"}`, http.StatusServiceUnavailable)
			return
		}
		out := []certclient.Event{}
		for _, e := range f.evs {
			if f.ignoreAfter || e.Seq > after {
				out = append(out, e)
			}
		}
		wake := f.wake
		f.mu.Unlock()
		if len(out) > 0 {
			json.NewEncoder(w).Encode(out)
			return
		}
		select {
		case <-wake:
		case <-timer.C:
			w.Write([]byte("[]"))
			return
		case <-r.Context().Done():
			return
		}
	}
}

// set replaces the served events and wakes long polls.
func (f *fakeFeed) set(evs ...certclient.Event) {
	f.mu.Lock()
	f.evs = evs
	close(f.wake)
	f.wake = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeFeed) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

// mint makes a feed entry whose envelope is the event signed with key.
func mint(t *testing.T, key *keys.Key, seq int64, kind, artifact string, data map[string]any) certclient.Event {
	t.Helper()
	d, _ := json.Marshal(data)
	e := certclient.Event{Seq: seq, Time: time.Now().UTC().Truncate(time.Second), Kind: kind, Artifact: artifact, Data: d}
	body, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if e.Envelope, err = attest.SignPayload(server.EventPayloadType, body, key); err != nil {
		t.Fatal(err)
	}
	return e
}

// mitigationBed is a server following a fake certifier feed, with four
// devices: d00 and d01 run release v1 (artifact A), d02 runs v2
// (artifact B), d03 is being given v1 by a running deployment.
type mitigationBed struct {
	*env
	cert     *certverifytest.Fixture
	feed     *fakeFeed
	cfg      func(*server.Config)
	v1, v2   string
	a, b     string // hex sha256 of v1's and v2's artifacts
	running  string // the running deployment of v1 to d03
	mu       sync.Mutex
	outcomes []server.MitigationOutcome
}

func newMitigationBed(t *testing.T) *mitigationBed {
	t.Helper()
	mb := &mitigationBed{cert: certverifytest.New(t), feed: newFakeFeed(t)}
	mb.cfg = func(c *server.Config) {
		c.CertdURL, c.CertdCAFile, c.CertifierRoot = mb.feed.srv.URL, mb.feed.caFile, mb.cert.Root
		c.FeedWait, c.FeedMaxBackoff = 2*time.Second, 100*time.Millisecond
		c.OnMitigation = func(_ context.Context, o server.MitigationOutcome) {
			mb.mu.Lock()
			mb.outcomes = append(mb.outcomes, o)
			mb.mu.Unlock()
		}
	}
	mb.env = newEnv(t, mb.cfg)
	ctx := ctxT(t)
	ds := mb.fleet(t, 4)
	mb.v1, mb.v2 = mb.release(t, "1.0", 1, "hw1"), mb.release(t, "2.0", 2, "hw1")
	// The gate (the same certifier root) lets only certified releases be
	// deployed: the certifier's bundles go to the server first.
	for _, target := range []string{mb.v1, mb.v2} {
		r, err := mb.Server.Store().Release(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		if a := mb.api(t, "PUT", "/v1/certificates/"+r.SHA256, issueFor(t, mb.cert, r.SHA256, attest.KindCertificate, attest.VerdictPass)); a.code != http.StatusOK {
			t.Fatalf("storing the certificate of %s: %d %s", target, a.code, a.body)
		}
	}
	for _, x := range []struct {
		target string
		devs   []*device
	}{{mb.v1, ds[:2]}, {mb.v2, ds[2:3]}} {
		ids := []string{}
		for _, d := range x.devs {
			ids = append(ids, fmt.Sprintf("%q", d.id))
		}
		mb.deploy(t, fmt.Sprintf(`{"release":%q,"devices":[%s]}`, x.target, strings.Join(ids, ",")))
		for _, d := range x.devs {
			mb.mustPost(t, d, d.rep(report.StateCommitted, x.target))
		}
	}
	mb.running = mb.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["d03"]}`, mb.v1)).ID
	for target, sha := range map[string]*string{mb.v1: &mb.a, mb.v2: &mb.b} {
		r, err := mb.Server.Store().Release(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		*sha = r.SHA256
	}
	return mb
}

// follow runs srv's follower until the test ends or stop is called.
func follow(t *testing.T, srv *server.Server) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.FollowFeed(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func waitCursor(t *testing.T, srv *server.Server, seq int64) {
	t.Helper()
	testbed.WaitFor(t, 20*time.Second, fmt.Sprintf("the feed cursor at %d", seq), func() bool {
		return srv.FeedStatus(context.Background()).Cursor == seq
	})
}

func (mb *mitigationBed) revocation(t *testing.T, seq int64, sha string, adv ...string) certclient.Event {
	return mint(t, mb.cert.Online.Certify, seq, "revocation", sha, map[string]any{
		"certificate": "sha256:" + certverifytest.HexSum("cert"), "advisories": adv, "reason": "vulnerable", "name": "app"})
}

func mitigatedDevices(t *testing.T, st *store.Store) []string {
	t.Helper()
	ms, err := st.Mitigations(ctxT(t), store.MitigationFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.DeviceID+"@"+m.Target)
	}
	return ids
}

// TestRevocationMitigatesExactlyTheDevicesRunningTheArtifact performs a
// certifier revocation of v1's artifact through the signed feed: exactly
// the devices whose installed release is v1 get an open mitigation (the
// device on v2 and the one only being given v1 do not), the running
// deployment of v1 is halted with the advisories in its reason and its
// device pointed back, one repair request names artifact, release,
// advisories and the device count, and the cursor moves past the event.
// Before this change the server did not read the feed at all.
func TestRevocationMitigatesExactlyTheDevicesRunningTheArtifact(t *testing.T) {
	mb := newMitigationBed(t)
	ctx := ctxT(t)
	st := mb.Server.Store()
	follow(t, mb.Server)
	mb.feed.set(
		mint(t, mb.cert.Online.Certify, 1, "certificate", mb.a, map[string]any{"verdict": "pass"}),
		mb.revocation(t, 2, mb.a, "GO-2024-0001", "GO-2024-0002"),
	)
	waitCursor(t, mb.Server, 2)

	want := []string{"d00@" + mb.v1, "d01@" + mb.v1}
	if got := mitigatedDevices(t, st); !slices.Equal(got, want) {
		t.Fatalf("mitigations: got %v, want %v", got, want)
	}
	ms, _ := st.Mitigations(ctx, store.MitigationFilter{})
	for _, m := range ms {
		if m.State != store.MitigationOpen || m.Artifact != mb.a || m.EventSeq != 2 ||
			!slices.Equal(m.Advisories, []string{"GO-2024-0001", "GO-2024-0002"}) || m.Opened.IsZero() {
			t.Fatalf("mitigation %+v", m)
		}
	}
	dep, err := st.Deployment(ctx, mb.running)
	if err != nil {
		t.Fatal(err)
	}
	if dep.Status != store.DeployHalted || !strings.Contains(dep.Reason, "GO-2024-0001") || !strings.Contains(dep.Reason, mb.a) {
		t.Fatalf("deployment of the revoked release: %s %q", dep.Status, dep.Reason)
	}
	if d, _ := st.Device(ctx, "d03"); d.Assigned != "" {
		t.Fatalf("d03 still assigned %q after the halt", d.Assigned)
	}
	rs, err := st.Repairs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Artifact != mb.a || rs[0].Devices != 2 || !slices.Equal(rs[0].Releases, []string{mb.v1}) ||
		!slices.Equal(rs[0].Advisories, []string{"GO-2024-0001", "GO-2024-0002"}) || rs[0].State != store.RepairOpen {
		t.Fatalf("repair requests: %+v", rs)
	}
	// The API and its views.
	a := mb.api(t, "GET", "/v1/repairs/"+strconv.FormatInt(rs[0].ID, 10), nil)
	var rv server.RepairView
	if a.code != 200 || json.Unmarshal(a.body, &rv) != nil || len(rv.Mitigations) != 2 || rv.Devices != 2 {
		t.Fatalf("GET repair: %s", a)
	}
	a = mb.api(t, "GET", "/v1/mitigations?state=open&device=d01", nil)
	var got []store.Mitigation
	if a.code != 200 || json.Unmarshal(a.body, &got) != nil || len(got) != 1 || got[0].DeviceID != "d01" {
		t.Fatalf("GET mitigations of d01: %s", a)
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if len(mb.outcomes) != 1 || !slices.Equal(mb.outcomes[0].Devices, []string{"d00", "d01"}) ||
		!slices.Equal(mb.outcomes[0].Halted, []string{mb.running}) || !mb.outcomes[0].NewRepair {
		t.Fatalf("after-mitigation hook calls: %+v", mb.outcomes)
	}
}

// TestEventDeliveredTwiceIsActedOnOnce performs a feed that delivers the
// same signed revocation twice in one page and again on every later poll
// (it ignores the cursor), then a failing re-inspection of the same
// artifact: one mitigation per device, one repair request (the second
// event merges into it), one hook call per event that found new work.
func TestEventDeliveredTwiceIsActedOnOnce(t *testing.T) {
	mb := newMitigationBed(t)
	st := mb.Server.Store()
	mb.feed.ignoreAfter = true
	rev := mb.revocation(t, 1, mb.a, "GO-2024-0001")
	mb.feed.set(rev, rev)
	follow(t, mb.Server)
	waitCursor(t, mb.Server, 1)
	mb.feed.set(rev, rev, mint(t, mb.cert.Online.Certify, 2, attest.KindReinspection, mb.a,
		map[string]any{"verdict": "fail", "advisories": []string{"GO-2024-0003"}}))
	waitCursor(t, mb.Server, 2)
	// A few more polls that serve both events again.
	mb.feed.mu.Lock()
	n := len(mb.feed.afters)
	mb.feed.mu.Unlock()
	testbed.WaitFor(t, 20*time.Second, "two more polls", func() bool {
		mb.feed.mu.Lock()
		defer mb.feed.mu.Unlock()
		return len(mb.feed.afters) >= n+2
	})
	if got := mitigatedDevices(t, st); !slices.Equal(got, []string{"d00@" + mb.v1, "d01@" + mb.v1}) {
		t.Fatalf("mitigations after a doubled delivery: %v", got)
	}
	rs, _ := st.Repairs(ctxT(t))
	if len(rs) != 1 || !slices.Equal(rs[0].Advisories, []string{"GO-2024-0001", "GO-2024-0003"}) {
		t.Fatalf("repair requests: %+v", rs)
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if len(mb.outcomes) != 2 || mb.outcomes[0].EventSeq != 1 || len(mb.outcomes[0].Devices) != 2 ||
		mb.outcomes[1].EventSeq != 2 || len(mb.outcomes[1].Devices) != 0 {
		t.Fatalf("hook calls: %+v", mb.outcomes)
	}
}

// TestForgedEventIsRefusedAndTheCursorHolds performs a feed entry signed
// with a key that is not the certifier's (and one whose signed payload
// names another artifact than the entry): nothing is recorded, the cursor
// stays below it, the status names the refused event, and the follower
// keeps retrying so that the genuine event at that position is acted on.
func TestForgedEventIsRefusedAndTheCursorHolds(t *testing.T) {
	mb := newMitigationBed(t)
	st := mb.Server.Store()
	other := certverifytest.New(t) // another certifier's keys
	follow(t, mb.Server)
	mb.feed.set(mb.revocation(t, 1, mb.b), mint(t, other.Online.Certify, 2, "revocation", mb.a,
		map[string]any{"advisories": []string{"GO-FORGED"}}))
	testbed.WaitFor(t, 20*time.Second, "the forged event refused", func() bool {
		fs := mb.Server.FeedStatus(context.Background())
		return fs.Refused == 2 && fs.Failures >= 2 && strings.Contains(fs.LastError, "certifier event refused")
	})
	if c := mb.Server.FeedStatus(ctxT(t)).Cursor; c != 1 {
		t.Fatalf("cursor after the forged event: %d, want 1", c)
	}
	if got := mitigatedDevices(t, st); !slices.Equal(got, []string{"d02@" + mb.v2}) {
		t.Fatalf("mitigations: %v", got)
	}
	if dep, _ := st.Deployment(ctxT(t), mb.running); dep.Status != store.DeployRunning {
		t.Fatalf("deployment of v1 after a forged revocation: %s", dep.Status)
	}
	// The status is visible to a viewer.
	a := mb.api(t, "GET", "/v1/feed", nil)
	var fs server.FeedStatus
	if a.code != 200 || json.Unmarshal(a.body, &fs) != nil || fs.Refused != 2 || fs.Cursor != 1 || !fs.Enabled {
		t.Fatalf("GET /v1/feed: %s", a)
	}

	// A genuine envelope re-labelled: the feed entry says artifact A, the
	// signed payload says B.
	genuine := mb.revocation(t, 2, mb.b, "GO-2024-0001")
	relabelled := genuine
	relabelled.Artifact = mb.a
	mb.feed.set(mb.revocation(t, 1, mb.b), relabelled)
	testbed.WaitFor(t, 20*time.Second, "the relabelled event refused", func() bool {
		fs := mb.Server.FeedStatus(context.Background())
		return fs.Refused == 2 && strings.Contains(fs.LastError, "is not the feed's entry")
	})
	// The certifier serves the genuine event: acted on.
	mb.feed.set(mb.revocation(t, 1, mb.b), mb.revocation(t, 2, mb.a, "GO-2024-0001"))
	waitCursor(t, mb.Server, 2)
	if got := mitigatedDevices(t, st); !slices.Equal(got, []string{"d02@" + mb.v2, "d00@" + mb.v1, "d01@" + mb.v1}) {
		t.Fatalf("mitigations after the genuine event: %v", got)
	}
	// The follower clears its status after the page it acted on (the
	// cursor moves first, inside the event's transaction).
	testbed.WaitFor(t, 20*time.Second, "the status cleared after recovery", func() bool {
		fs := mb.Server.FeedStatus(context.Background())
		return fs.Refused == 0 && fs.LastError == ""
	})
}

// TestRestartResumesFromTheCursor performs a server restart in the middle
// of the feed, with a certifier that then serves everything again from
// the start: the restarted server asks for events after its stored
// cursor, does not act on the first event again, and acts on the next.
// A certifier that is down meanwhile is retried, not fatal.
func TestRestartResumesFromTheCursor(t *testing.T) {
	mb := newMitigationBed(t)
	stop := follow(t, mb.Server)
	rev := mb.revocation(t, 1, mb.a, "GO-2024-0001")
	mb.feed.set(rev)
	waitCursor(t, mb.Server, 1)
	stop()

	// Down first: the new server keeps retrying.
	mb.feed.setDown(true)
	cfg := server.Config{DataDir: filepath.Join(mb.Dir, "server"), Logger: mb.Log, Now: mb.clk.Now}
	mb.cfg(&cfg)
	srv2, err := server.New(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	mb.feed.mu.Lock()
	mb.feed.afters = nil
	mb.feed.mu.Unlock()
	follow(t, srv2)
	testbed.WaitFor(t, 20*time.Second, "retries while the certifier is down", func() bool {
		return srv2.FeedStatus(context.Background()).Failures >= 3
	})
	mb.feed.mu.Lock()
	mb.feed.ignoreAfter = true
	mb.feed.mu.Unlock()
	mb.feed.set(rev, mint(t, mb.cert.Online.Certify, 2, attest.KindReinspection, mb.b,
		map[string]any{"verdict": "fail", "advisories": []string{"GO-2024-0009"}}))
	mb.feed.setDown(false)
	waitCursor(t, srv2, 2)

	mb.feed.mu.Lock()
	afters := slices.Clone(mb.feed.afters)
	mb.feed.mu.Unlock()
	if len(afters) == 0 || afters[0] != 1 {
		t.Fatalf("the restarted server asked for events after %v, want 1 first", afters)
	}
	if got := mitigatedDevices(t, srv2.Store()); !slices.Equal(got, []string{"d00@" + mb.v1, "d01@" + mb.v1, "d02@" + mb.v2}) {
		t.Fatalf("mitigations after the restart: %v", got)
	}
	rs, _ := srv2.Store().Repairs(ctxT(t))
	if len(rs) != 2 {
		t.Fatalf("repair requests after the restart: %+v", rs)
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if len(mb.outcomes) != 2 || mb.outcomes[0].EventSeq != 1 || mb.outcomes[1].EventSeq != 2 {
		t.Fatalf("hook calls (event 1 must not be acted on twice): %+v", mb.outcomes)
	}
}

// TestMitigationAPIsRefuseBadInput sends malformed ids and filters to the
// new views, and a viewer-scope check.
func TestMitigationAPIsRefuseBadInput(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct {
		path string
		code int
	}{
		{"/v1/repairs/0", 400},
		{"/v1/repairs/-3", 400},
		{"/v1/repairs/abc", 400},
		{"/v1/repairs/99999999999999999999", 400},
		{"/v1/repairs/7", 404},
		{"/v1/repairs?x=1", 400},
		{"/v1/mitigations?state=bogus", 400},
		{"/v1/mitigations?repair=x", 400},
		{"/v1/mitigations?bogus=1", 400},
		{"/v1/mitigations?device=a&device=b", 400},
		{"/v1/mitigations?device=" + strings.Repeat("a", 300), 400},
	} {
		wantRefused(t, c.path, e.api(t, "GET", c.path, nil), c.code)
	}
	if a := e.request(t, nil, "GET", "/v1/mitigations", "", nil); a.code != http.StatusUnauthorized {
		t.Fatalf("mitigations without a token: %s", a)
	}
	if a := e.api(t, "GET", "/v1/mitigations", nil); a.code != 200 || strings.TrimSpace(string(a.body)) != "[]" {
		t.Fatalf("empty list: %s", a)
	}
	if a := e.api(t, "GET", "/v1/feed", nil); a.code != 200 || !strings.Contains(string(a.body), `"enabled":false`) {
		t.Fatalf("feed status without a certifier: %s", a)
	}
}

// TestFeedConfigurationIsChecked: a certifier URL without the root to
// verify its events, or over plain http without the insecure flag, or a
// pinned CA without a URL, refuses to start (a root file that is not a
// signed certifier root is refused by the CLI that loads it:
// TestServerCertifierRootMustBeSelfSigned).
func TestFeedConfigurationIsChecked(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"signed":{}}`), 0o644)
	for _, c := range []struct {
		name string
		cfg  server.Config
		want string
	}{
		{"no root", server.Config{CertdURL: "https://127.0.0.1:1"}, "--certifier-root"},
		{"plain http", server.Config{CertdURL: "http://127.0.0.1:1", CertifierRoot: certverifytest.New(t).Root}, "--certd"},
		{"ca without url", server.Config{CertdCAFile: bad}, "needs --certd"},
	} {
		c.cfg.DataDir = filepath.Join(dir, c.name)
		_, err := server.New(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error naming %q", c.name, err, c.want)
		}
	}
}
