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
