package server_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/devauth"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/server"
)

func TestDeploymentsRefuseBadWavesAndUnknownOrUnfitDevices(t *testing.T) {
	e := newEnv(t, nil)
	st := e.Server.Store()
	e.enroll(t, "a1", "hw1", "fleet")
	e.enroll(t, "a2", "hw1", "fleet")
	e.enroll(t, "b1", "hw2", "other")
	target := e.release(t, "1.0", 1, "hw1")
	body := func(extra string) []byte {
		return []byte(fmt.Sprintf(`{"release":%q,%s}`, target, extra))
	}
	cases := []struct {
		name string
		body []byte
		code int
	}{
		{"waves not increasing", body(`"devices":["a1"],"waves":[50,10,100]`), 400},
		{"waves repeating", body(`"devices":["a1"],"waves":[50,50,100]`), 400},
		{"last wave not 100", body(`"devices":["a1"],"waves":[10,50]`), 400},
		{"wave above 100", body(`"devices":["a1"],"waves":[10,150]`), 400},
		{"negative wave", body(`"devices":["a1"],"waves":[-1,100]`), 400},
		{"zero wave", body(`"devices":["a1"],"waves":[0,100]`), 400},
		{"NaN wave", body(`"devices":["a1"],"waves":[NaN,100]`), 400},
		{"infinite wave", body(`"devices":["a1"],"waves":[1e999]`), 400},
		{"21 waves", body(`"devices":["a1"],"waves":[` + strings.Repeat("1,", 20) + `100]`), 400},
		{"wave as a string", body(`"devices":["a1"],"waves":["100"]`), 400},
		{"threshold above 1", body(`"devices":["a1"],"failure_threshold":2`), 400},
		{"negative threshold", body(`"devices":["a1"],"failure_threshold":-0.5`), 400},
		{"unknown release", []byte(`{"release":"app@9.9","devices":["a1"]}`), 404},
		{"unknown device", body(`"devices":["a1","ghost"]`), 400},
		{"traversal device id", body(`"devices":["../a1"]`), 400},
		{"device of other hardware", body(`"devices":["a1","b1"]`), 400},
		{"group of other hardware", body(`"group":"other"`), 400},
		{"both devices and group", body(`"devices":["a1"],"group":"fleet"`), 400},
		{"neither devices nor group", body(`"waves":[100]`), 400},
		{"empty group", body(`"group":"nobody"`), 400},
		{"device listed twice", body(`"devices":["a1","a1"]`), 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			unchanged(t, st, func() { wantRefused(t, c.name, e.api(t, "POST", "/v1/deployments", c.body), c.code) })
		})
	}
	if a := e.api(t, "POST", "/v1/deployments", body(`"group":"fleet","waves":[50,100]`)); a.code != http.StatusCreated {
		t.Fatalf("a valid deployment was refused: %s", a)
	}
}

func TestUnknownDeviceAnswers404(t *testing.T) {
	e := newEnv(t, nil)
	e.enroll(t, "known", "hw1", "")
	for _, p := range []string{"/v1/devices/ghost", "/v1/devices/ghost/history", "/v1/deployments/dep-ghost"} {
		wantRefused(t, p, e.api(t, "GET", p, nil), http.StatusNotFound)
	}
	if a := e.api(t, "GET", "/v1/devices/known/history", nil); a.code != http.StatusOK {
		t.Errorf("history of an enrolled device: %s", a)
	}
}

func TestAPITokensAreCheckedAndScoped(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	st := e.Server.Store()
	e.enroll(t, "d1", "hw1", "fleet")
	target := e.release(t, "1.0", 1, "hw1")
	viewer, err := e.Admin.NewToken(ctx, server.ScopeViewer, "v")
	if err != nil {
		t.Fatal(err)
	}
	integrator, err := e.Admin.NewToken(ctx, server.ScopeIntegrator, "i")
	if err != nil {
		t.Fatal(err)
	}
	deploy := []byte(fmt.Sprintf(`{"release":%q,"devices":["d1"]}`, target))
	path, tf := e.uploaded(t, "2.0", 100, "hw1")
	_ = tf
	type call struct{ method, path string }
	admin := []call{{"POST", "/v1/deployments"}, {"POST", "/v1/tokens"}, {"POST", "/v1/enroll-tokens"}, {"POST", "/v1/roots/image"}}
	integ := []call{{"PUT", "/v1/artifacts/" + sha256Hex([]byte("x"))}, {"GET", "/v1/image/targets"}, {"POST", "/v1/image/targets"}}
	view := []call{{"GET", "/v1/devices"}, {"GET", "/v1/devices/d1"}, {"GET", "/v1/devices/d1/history"}, {"GET", "/v1/releases"}, {"GET", "/v1/deployments"}}
	bodies := map[string][]byte{"/v1/deployments": deploy, "/v1/tokens": []byte(`{"scope":"admin","name":"x"}`), "/v1/enroll-tokens": []byte(`{}`)}
	all := append(append(append([]call{}, admin...), integ...), view...)
	for _, c := range all {
		t.Run("no token "+c.method+" "+c.path, func(t *testing.T) {
			unchanged(t, st, func() {
				wantRefused(t, "no token", e.request(t, nil, c.method, c.path, "", bodies[c.path]), 401)
				wantRefused(t, "unknown token", e.request(t, nil, c.method, c.path, server.NewToken(), bodies[c.path]), 401)
				wantRefused(t, "token of 300 bytes", e.request(t, nil, c.method, c.path, strings.Repeat("a", 300), bodies[c.path]), 401)
			})
		})
	}
	for _, c := range append(append([]call{}, admin...), integ...) {
		t.Run("viewer "+c.method+" "+c.path, func(t *testing.T) {
			unchanged(t, st, func() {
				wantRefused(t, "viewer", e.request(t, nil, c.method, c.path, viewer, bodies[c.path]), 403)
			})
		})
	}
	for _, c := range admin {
		t.Run("integrator "+c.method+" "+c.path, func(t *testing.T) {
			unchanged(t, st, func() {
				wantRefused(t, "integrator", e.request(t, nil, c.method, c.path, integrator, bodies[c.path]), 403)
			})
		})
	}
	for _, c := range view {
		if a := e.request(t, nil, c.method, c.path, viewer, nil); a.code != 200 {
			t.Errorf("viewer %s %s: %s", c.method, c.path, a)
		}
	}
	// The integrator may release.
	body := e.nextTargets(t, e.targetsKey(t), func(m *md) { m.Signed.Targets[path] = tf })
	if a := e.request(t, nil, "POST", "/v1/image/targets", integrator, body); a.code != http.StatusCreated {
		t.Fatalf("integrator release: %s", a)
	}
	if a := e.request(t, nil, "POST", "/v1/deployments", "", deploy); a.code != 401 {
		t.Fatalf("deploy without a token: %s", a)
	}
}

func TestDeviceRequestsMustBeSignedByThatDevice(t *testing.T) {
	e := newEnv(t, nil)
	st := e.Server.Store()
	a := e.enroll(t, "dev-a", "hw1", "")
	b := e.enroll(t, "dev-b", "hw1", "")
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	// a's key, claiming to be b (the signature names b: does not verify).
	aAsB := &http.Client{Transport: &devauth.Transport{DeviceID: "dev-b", Key: a.key, Now: e.clk.Now}}
	unknown := &http.Client{Transport: &devauth.Transport{DeviceID: "dev-x", Key: stranger, Now: e.clk.Now}}
	stale := &http.Client{Transport: &devauth.Transport{DeviceID: "dev-a", Key: a.key, Now: func() time.Time { return e.clk.Now().Add(-time.Hour) }}}
	reportsB := "/v1/devices/dev-b/reports"
	batchB := signAll(t, b.key, b.rep(report.StateIdle, ""))
	cases := []struct {
		name   string
		hc     *http.Client
		method string
		path   string
		body   []byte
		codes  []int
	}{
		{"unsigned director read", nil, "GET", "/director/dev-a/timestamp.json", nil, []int{401}},
		{"unsigned reports", nil, "POST", "/v1/devices/dev-a/reports", signAll(t, a.key, a.rep(report.StateIdle, "")), []int{401}},
		{"a reads b's director", a.hc, "GET", "/director/dev-b/timestamp.json", nil, []int{401, 403}},
		{"a reads b's director targets", a.hc, "GET", "/director/dev-b/1.targets.json", nil, []int{401, 403}},
		{"a's key claims b's id", aAsB, "GET", "/director/dev-b/timestamp.json", nil, []int{401}},
		{"unknown device", unknown, "GET", "/director/dev-x/timestamp.json", nil, []int{401}},
		{"stale request time", stale, "GET", "/director/dev-a/timestamp.json", nil, []int{401}},
		{"a posts to b's reports", a.hc, "POST", reportsB, batchB, []int{401, 403}},
		{"a's key claims b's id to post", aAsB, "POST", reportsB, batchB, []int{401}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			unchanged(t, st, func() {
				got := e.request(t, c.hc, c.method, c.path, "", c.body)
				for _, code := range c.codes {
					if got.code == code {
						wantRefused(t, c.name, got, code)
						return
					}
				}
				t.Errorf("%s: got %s, want one of %v", c.name, got, c.codes)
			})
		})
	}
	// Each device can read its own director.
	for _, d := range []*device{a, b} {
		if got := e.request(t, d.hc, "GET", "/director/"+d.id+"/timestamp.json", "", nil); got.code != 200 {
			t.Errorf("%s reading its own director: %s", d.id, got)
		}
	}
}

func TestReportSignedByAnotherDeviceSpoilsTheWholeBatch(t *testing.T) {
	e := newEnv(t, nil)
	st := e.Server.Store()
	a := e.enroll(t, "dev-a", "hw1", "")
	b := e.enroll(t, "dev-b", "hw1", "")
	okB1 := mustSign(t, b.key, b.rep(report.StateChecking, ""))
	// A report about b, but signed with a's key.
	forged := mustSign(t, a.key, b.rep(report.StateCommitted, "app/1.0/app.tar"))
	// A report about a, signed by a, smuggled into b's batch.
	aboutA := mustSign(t, a.key, a.rep(report.StateFailed, ""))
	// A report about a, signed with b's key.
	bAboutA := mustSign(t, b.key, a.rep(report.StateIdle, ""))
	okB2 := mustSign(t, b.key, b.rep(report.StateIdle, ""))
	for name, batch := range map[string][]report.Signed{
		"forged by a":      {okB1, forged, okB2},
		"a's own report":   {okB1, aboutA},
		"b signs for a":    {bAboutA, okB2},
		"bit-flipped body": {okB1, flip(okB2)},
	} {
		t.Run(name, func(t *testing.T) {
			unchanged(t, st, func() {
				got := e.request(t, b.hc, "POST", "/v1/devices/dev-b/reports", "", marshal(t, batch))
				if got.code != 400 && got.code != 403 {
					t.Errorf("got %s, want 400 or 403", got)
				}
				if got.errMsg() == "" {
					t.Errorf("no JSON error: %s", got)
				}
			})
		})
	}
	if n := countRows(t, st, "reports"); n != 0 {
		t.Fatalf("%d reports stored from refused batches", n)
	}
}

func TestReplayedReportPostIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	st := e.Server.Store()
	d := e.enroll(t, "dev-a", "hw1", "")
	body := signAll(t, d.key, d.rep(report.StateIdle, ""))
	req, err := http.NewRequest("POST", e.URL+"/v1/devices/dev-a/reports", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	devauth.Sign(req, d.id, d.key, e.clk.Now(), body)
	send := func() answer {
		r2 := req.Clone(ctxT(t))
		r2.Body = http.NoBody
		r2.Body = nopCloser{strings.NewReader(string(body))}
		r2.ContentLength = int64(len(body))
		resp, err := http.DefaultClient.Do(r2)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		return answer{resp.StatusCode, buf[:n]}
	}
	if got := send(); got.code != 200 {
		t.Fatalf("first send: %s", got)
	}
	unchanged(t, st, func() {
		got := send()
		if got.code < 400 || got.code > 499 || got.errMsg() == "" {
			t.Errorf("replayed request: got %s, want a 4xx with a JSON error", got)
		}
	})
}
