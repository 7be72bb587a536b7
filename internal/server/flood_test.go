package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/devauth"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/server"
)

// TestOneDeviceFloodingDoesNotStopTheOthers performs field failure 8: one
// device floods signed report POSTs. The old server kept one replay cache
// for every device and failed closed when it was full, so one misbehaving
// device made every device's reports fail with 503. Each device now has
// its own window: the flooding device is answered 503 with Retry-After
// (a 5xx, so its outbox retries rather than drops), and only it; every
// other device still reports (200); the flooder reports again once its
// window has passed.
func TestOneDeviceFloodingDoesNotStopTheOthers(t *testing.T) {
	const window = 8
	e := newEnv(t, func(c *server.Config) { c.DeviceReplayWindow = window })
	devs := e.fleet(t, 4)
	noisy, others := devs[0], devs[1:]
	for i := 0; i < window; i++ {
		e.mustPost(t, noisy, noisy.rep(report.StateIdle, ""))
	}
	refused := 0
	for i := 0; i < 3*window; i++ {
		a := e.post(t, noisy, noisy.rep(report.StateIdle, ""))
		if a.code == http.StatusServiceUnavailable && strings.Contains(a.errMsg(), "too many requests") {
			refused++
		}
		// Interleaved with the flood, every other device still reports,
		// up to its own whole window.
		if i%3 == 0 {
			for _, d := range others {
				e.mustPost(t, d, d.rep(report.StateChecking, ""))
			}
		}
	}
	if refused != 3*window {
		t.Fatalf("%d of %d flooding requests refused with 503", refused, 3*window)
	}
	// Retry-After tells the device when to come back.
	req, _ := http.NewRequestWithContext(ctxT(t), "POST", e.URL+"/v1/devices/"+noisy.id+"/reports", bytes.NewReader(signAll(t, noisy.key, noisy.rep(report.StateIdle, ""))))
	resp, err := noisy.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("flooding device: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	e.clk.Advance(2*devauth.MaxSkew + time.Second)
	e.mustPost(t, noisy, noisy.rep(report.StateIdle, ""))
}

// TestDeviceBodiesAreBoundedPerRouteBeforeAuthentication: the old
// verifier read up to 1 MiB of any device request before checking the
// signature. A body larger than its route needs (none for director GETs,
// the report batch bound for reports) is now refused with 413 from its
// declared length, before the device is even looked up.
func TestDeviceBodiesAreBoundedPerRouteBeforeAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	d := e.enroll(t, "dev-a", "hw1", "")
	send := func(hc *http.Client, method, path string, n int) answer {
		req, _ := http.NewRequestWithContext(ctxT(t), method, e.URL+path, bytes.NewReader(make([]byte, n)))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return answer{resp.StatusCode, b.Bytes()}
	}
	// Unsigned, for a device that does not exist: 413, not 401.
	wantRefused(t, "director GET with a body, unsigned", send(http.DefaultClient, "GET", "/director/ghost/timestamp.json", 10), http.StatusRequestEntityTooLarge)
	wantRefused(t, "report batch over the bound, unsigned", send(http.DefaultClient, "POST", "/v1/devices/ghost/reports", 2<<20), http.StatusRequestEntityTooLarge)
	// Signed by an enrolled device: the same.
	wantRefused(t, "director GET with a body", send(d.hc, "GET", "/director/dev-a/timestamp.json", 1), http.StatusRequestEntityTooLarge)
	wantRefused(t, "report batch over the bound", send(d.hc, "POST", "/v1/devices/dev-a/reports", 65*report.MaxSignedLen+1), http.StatusRequestEntityTooLarge)
	// The largest batch the agent sends still fits.
	var rs []report.Report
	for i := 0; i < 64; i++ {
		r := d.rep(report.StateFailed, "app/1.0/app.tar")
		r.Detail = strings.Repeat("x", report.MaxDetail)
		rs = append(rs, r)
	}
	if got := e.mustPost(t, d, rs...); got.Accepted != 64 {
		t.Fatalf("a full batch of 64: %+v", got)
	}
}
