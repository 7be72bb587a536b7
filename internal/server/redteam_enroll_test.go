package server_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/enroll"
)

// TestDecommissionedDeviceCannotEnrollAgain performs the enrollment of a
// decommissioned device, as a stolen or lost device (or a proxy replaying
// its recorded request) would: first the exact POST /v1/enroll the
// device sent when it enrolled, then a fresh token with a new key for the
// same device id. Each is answered 403 "device decommissioned" (the replay
// used to get 201, which told the device it was enrolled again), the
// stored key does not change, and the fresh token stays unused.
func TestDecommissionedDeviceCannotEnrollAgain(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	tok, err := e.Admin.EnrollToken(ctx, "fleet", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	recorded, _ := json.Marshal(enroll.NewRequest(tok, "dev-b", "hw1", pub))
	if a := e.api(t, "POST", "/v1/enroll", recorded); a.code != http.StatusCreated {
		t.Fatalf("enrolling: %s", a)
	}
	if _, err := e.Admin.DecommissionDevice(ctx, "dev-b"); err != nil {
		t.Fatal(err)
	}

	a := e.api(t, "POST", "/v1/enroll", recorded)
	wantRefused(t, "replayed enrollment", a, http.StatusForbidden)
	if !strings.Contains(a.errMsg(), "device decommissioned") {
		t.Errorf("replayed enrollment: message %q", a.errMsg())
	}

	fresh, err := e.Admin.EnrollToken(ctx, "fleet", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pub2, _, _ := ed25519.GenerateKey(rand.Reader)
	body, _ := json.Marshal(enroll.NewRequest(fresh, "dev-b", "hw1", pub2))
	a = e.api(t, "POST", "/v1/enroll", body)
	wantRefused(t, "new token for the decommissioned id", a, http.StatusForbidden)
	if !strings.Contains(a.errMsg(), "device decommissioned") || strings.Contains(a.errMsg(), "UNIQUE") {
		t.Errorf("new token for the decommissioned id: message %q", a.errMsg())
	}
	d, err := e.Server.Store().Device(ctx, "dev-b")
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(ed25519.PublicKey(d.PublicKey)) || d.Decommissioned.IsZero() {
		t.Fatalf("dev-b after the tries: key changed or no longer decommissioned: %+v", d)
	}
	// The fresh token was not consumed: another device enrolls with it.
	body, _ = json.Marshal(enroll.NewRequest(fresh, "dev-c", "hw1", pub2))
	if a := e.api(t, "POST", "/v1/enroll", body); a.code != http.StatusCreated {
		t.Fatalf("the fresh token after the refusal: %s", a)
	}
}

// TestEnrollWithAnEnrolledDeviceIDSaysSo performs enrollment of an id
// that is already enrolled (with another token): 409 naming the device,
// not the database's constraint text.
func TestEnrollWithAnEnrolledDeviceIDSaysSo(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	e.enroll(t, "dev-a", "hw1", "fleet")
	tok, err := e.Admin.EnrollToken(ctx, "fleet", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	body, _ := json.Marshal(enroll.NewRequest(tok, "dev-a", "hw1", pub))
	a := e.api(t, "POST", "/v1/enroll", body)
	wantRefused(t, "second enrollment of dev-a", a, http.StatusConflict)
	if want := "device dev-a is already enrolled"; !strings.Contains(a.errMsg(), want) || strings.Contains(a.errMsg(), "UNIQUE") {
		t.Errorf("message %q, want it to say %q", a.errMsg(), want)
	}
}

// TestEnrollTokenTTLOutOfRangeIsRefused performs 'ztota token enroll
// --ttl 1000h' and '--ttl -5h': both used to be answered 201 with a token
// valid 24 hours, silently. Now a lifetime outside 1 s to 30 days is 400
// saying the range and no token is made; 0 still means the default.
func TestEnrollTokenTTLOutOfRangeIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	before := countRows(t, e.Server.Store(), "enroll_tokens")
	for _, ttl := range []string{"-18000", "3600000"} {
		a := e.api(t, "POST", "/v1/enroll-tokens", []byte(`{"group":"g","ttl_seconds":`+ttl+`}`))
		wantRefused(t, "ttl_seconds "+ttl, a, http.StatusBadRequest)
		if !strings.Contains(a.errMsg(), "ttl_seconds must be between 1 and 2592000") {
			t.Errorf("ttl_seconds %s: message %q", ttl, a.errMsg())
		}
	}
	if n := countRows(t, e.Server.Store(), "enroll_tokens"); n != before {
		t.Fatalf("%d enrollment tokens made by refused requests", n-before)
	}
	var out struct{ Expires time.Time }
	a := e.api(t, "POST", "/v1/enroll-tokens", []byte(`{"group":"g","ttl_seconds":0}`))
	if a.code != http.StatusCreated || json.Unmarshal(a.body, &out) != nil || out.Expires.Sub(e.clk.Now()) != 24*time.Hour {
		t.Fatalf("ttl_seconds 0: %s, want 201 with the 24 h default", a)
	}
}
