package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/tufrepo"
)

func (e *env) newToken(t *testing.T, scope string, ttl time.Duration) server.TokenResponse {
	t.Helper()
	tr, err := e.Admin.CreateToken(ctxT(t), server.TokenRequest{Scope: scope, Name: "t-" + scope, TTLSeconds: int64(ttl / time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestStolenTokensExpireAndCanBeRevoked performs the token half of attack
// 5: a stolen API token used to work for ever. Tokens now expire (90 days
// by default), can be listed without their secrets and revoked; an expired
// or revoked token gets a 401 that says so.
func TestStolenTokensExpireAndCanBeRevoked(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	short := e.newToken(t, server.ScopeViewer, time.Minute)
	def := e.newToken(t, server.ScopeIntegrator, 0)
	if want := e.clk.Now().Add(server.DefaultTokenTTL); !def.Expires.Equal(want) {
		t.Fatalf("default expiry %s, want %s", def.Expires, want)
	}
	if a := e.request(t, nil, "GET", "/v1/devices", short.Token, nil); a.code != http.StatusOK {
		t.Fatalf("fresh token: %s", a)
	}
	e.clk.Advance(time.Minute)
	a := e.request(t, nil, "GET", "/v1/devices", short.Token, nil)
	wantRefused(t, "expired token", a, http.StatusUnauthorized)
	if !strings.Contains(a.errMsg(), "expired") {
		t.Errorf("expired token: message %q does not say so", a.errMsg())
	}

	// The list shows ids, names, scopes and times, never a secret.
	raw := e.api(t, "GET", "/v1/tokens", nil)
	if raw.code != http.StatusOK {
		t.Fatal(raw)
	}
	for _, secret := range []string{short.Token, def.Token, e.token} {
		if strings.Contains(string(raw.body), secret) || strings.Contains(string(raw.body), store.HashToken(secret)) {
			t.Fatal("the token list shows a secret or its full hash")
		}
	}
	list, err := e.Admin.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]store.APIToken{}
	for _, tk := range list {
		byID[tk.ID] = tk
	}
	initial := byID[store.TokenID(e.token)]
	if len(list) != 3 || initial.Scope != server.ScopeAdmin || !initial.Expires.IsZero() || byID[short.ID].Name != "t-viewer" || byID[def.ID].Scope != server.ScopeIntegrator {
		t.Fatalf("token list %+v", list)
	}

	// Revoking works at once and is answered 401 with a clear message.
	if a := e.request(t, nil, "GET", "/v1/image/targets", def.Token, nil); a.code != http.StatusOK {
		t.Fatalf("integrator token before revocation: %s", a)
	}
	rv, err := e.Admin.RevokeToken(ctx, def.ID)
	if err != nil || rv.Revoked.IsZero() {
		t.Fatalf("revoke: %+v %v", rv, err)
	}
	a = e.request(t, nil, "GET", "/v1/image/targets", def.Token, nil)
	wantRefused(t, "revoked token", a, http.StatusUnauthorized)
	if !strings.Contains(a.errMsg(), "revoked") {
		t.Errorf("revoked token: message %q does not say so", a.errMsg())
	}
	wantRefused(t, "unknown id", e.api(t, "POST", "/v1/tokens/0123456789abcdef/revoke", nil), http.StatusNotFound)
	wantRefused(t, "negative ttl", e.api(t, "POST", "/v1/tokens", []byte(`{"scope":"viewer","ttl_seconds":-1}`)), http.StatusBadRequest)

	// The initial admin token does not expire, and cannot be revoked
	// while it is the only valid admin token.
	e.clk.Advance(10 * 365 * 24 * time.Hour)
	if a := e.api(t, "GET", "/v1/tokens", nil); a.code != http.StatusOK {
		t.Fatalf("initial admin token after ten years: %s", a)
	}
	wantRefused(t, "revoking the last admin token", e.api(t, "POST", "/v1/tokens/"+store.TokenID(e.token)+"/revoke", nil), http.StatusConflict)
	admin2 := e.newToken(t, server.ScopeAdmin, time.Hour)
	if a := e.request(t, nil, "POST", "/v1/tokens/"+store.TokenID(e.token)+"/revoke", admin2.Token, nil); a.code != http.StatusOK {
		t.Fatalf("revoking the initial admin token: %s", a)
	}
	wantRefused(t, "revoked initial admin token", e.api(t, "GET", "/v1/tokens", nil), http.StatusUnauthorized)
}

// TestDecommissionedDeviceIsLockedOut performs the device half of attack 5:
// a stolen device key used to work for ever. After 'ztota devices revoke'
// the device's signed requests get 403 "device decommissioned" (even
// though its key was cached by earlier requests), its reports are not
// stored, its director is no longer re-signed, it counts as cancelled (not
// failed) in the running deployment, which completes without it, and no
// new deployment may name it.
func TestDecommissionedDeviceIsLockedOut(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	st := e.Server.Store()
	a, b := e.enroll(t, "dev-a", "hw1", "fleet"), e.enroll(t, "dev-b", "hw1", "fleet")
	v1 := e.release(t, "1.0", 1, "hw1")
	dep := e.deploy(t, fmt.Sprintf(`{"release":%q,"group":"fleet"}`, v1))
	// dev-b checks in and reports: its key is now in the server's cache.
	if r := e.request(t, b.hc, "GET", "/director/dev-b/timestamp.json", "", nil); r.code != http.StatusOK {
		t.Fatalf("dev-b before: %s", r)
	}
	e.mustPost(t, b, b.rep(report.StateDownloading, v1))
	e.mustPost(t, a, a.rep(report.StateCommitted, v1))
	if v := e.view(t, dep.ID); v.Status != store.DeployRunning {
		t.Fatalf("deployment finished while dev-b is still assigned: %+v", v)
	}

	res, err := e.Admin.DecommissionDevice(ctx, "dev-b")
	if err != nil {
		t.Fatal(err)
	}
	if res.Device.Decommissioned.IsZero() || len(res.Cancelled) != 1 || res.Cancelled[0] != dep.ID {
		t.Fatalf("decommission answer %+v", res)
	}
	v := e.view(t, dep.ID)
	wantStatus(t, v, store.DevCancelled, "dev-b")
	wantStatus(t, v, store.DevCommitted, "dev-a")
	if v.Status != store.DeployCompleted {
		t.Fatalf("deployment %s after the decommission, want completed (dev-b no longer counts)", v.Status)
	}

	reportsBefore := countRows(t, st, "reports")
	for name, r := range map[string]answer{
		"director timestamp": e.request(t, b.hc, "GET", "/director/dev-b/timestamp.json", "", nil),
		"director targets":   e.request(t, b.hc, "GET", "/director/dev-b/1.targets.json", "", nil),
		"reports":            e.post(t, b, b.rep(report.StateCommitted, v1)),
	} {
		wantRefused(t, name, r, http.StatusForbidden)
		if !strings.Contains(r.errMsg(), "device decommissioned") {
			t.Errorf("%s: message %q", name, r.errMsg())
		}
	}
	if n := countRows(t, st, "reports"); n != reportsBefore {
		t.Fatalf("a decommissioned device's report was stored")
	}
	// The other device is unaffected.
	e.mustPost(t, a, a.rep(report.StateIdle, ""))

	// No new deployment names it; a group deployment leaves it out.
	v2 := e.release(t, "2.0", 2, "hw1")
	wantRefused(t, "deploying to it", e.api(t, "POST", "/v1/deployments", []byte(fmt.Sprintf(`{"release":%q,"devices":["dev-b"]}`, v2))), http.StatusBadRequest)
	gv := e.deploy(t, fmt.Sprintf(`{"release":%q,"group":"fleet"}`, v2))
	if len(gv.Devices) != 1 || gv.Devices[0].DeviceID != "dev-a" {
		t.Fatalf("group deployment devices %+v", gv.Devices)
	}

	// Its director is no longer re-signed; dev-a's is.
	tsB, _ := st.LatestMeta(ctx, "director/dev-b", tufrepo.Timestamp)
	tsA, _ := st.LatestMeta(ctx, "director/dev-a", tufrepo.Timestamp)
	e.clk.Advance(31 * 24 * time.Hour)
	if err := e.Server.ResignExpiring(ctx); err != nil {
		t.Fatal(err)
	}
	if m, _ := st.LatestMeta(ctx, "director/dev-b", tufrepo.Timestamp); m.Version != tsB.Version {
		t.Fatalf("dev-b's director timestamp re-signed: version %d -> %d", tsB.Version, m.Version)
	}
	if m, _ := st.LatestMeta(ctx, "director/dev-a", tufrepo.Timestamp); m.Version <= tsA.Version {
		t.Fatalf("dev-a's director not re-signed")
	}
	// The device list says so.
	var devs []store.Device
	if err := json.Unmarshal(e.api(t, "GET", "/v1/devices", nil).body, &devs); err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if (d.ID == "dev-b") == d.Decommissioned.IsZero() {
			t.Errorf("device %s decommissioned=%s", d.ID, d.Decommissioned)
		}
	}
}
