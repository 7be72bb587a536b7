package devauth

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestDeviceClockOffFollowsTheServerClock plays a device whose clock is
// two hours behind (no real-time clock, no time server reached yet):
// every signed request used to be refused as stale, for ever, and the
// device could neither check in nor report. With ServerClock the first
// refusal's Date header gives the offset, the request is signed again
// once and accepted, and the next request is accepted at the first try.
// Without ServerClock, and for a 401 that is not about the clock, nothing
// is retried.
func TestDeviceClockOffFollowsTheServerClock(t *testing.T) {
	f := newFleet(t, "dev-1")
	srv, got := server(t, &Verifier{Lookup: f.lookup, MaxBody: 1 << 10, Now: time.Now})
	behind := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	status := func(tr *Transport, body []byte) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/devices/dev-1/reports", nil)
		if body != nil {
			req, _ = http.NewRequest(http.MethodPost, srv.URL+"/v1/devices/dev-1/reports", bytesReader(body))
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	drain := func() []result {
		var rs []result
		for {
			select {
			case r := <-got:
				rs = append(rs, r)
			default:
				return rs
			}
		}
	}

	plain := &Transport{DeviceID: "dev-1", Key: f.keys["dev-1"], Now: behind}
	if code := status(plain, []byte("[]")); code != http.StatusUnauthorized {
		t.Fatalf("clock 2 h behind without ServerClock: %d, want 401", code)
	}
	if rs := drain(); len(rs) != 1 || !errors.Is(rs[0].err, ErrStale) {
		t.Fatalf("without ServerClock: %+v, want one stale refusal", rs)
	}

	follow := &Transport{DeviceID: "dev-1", Key: f.keys["dev-1"], Now: behind, ServerClock: true}
	if code := status(follow, []byte(`[{"a":1}]`)); code != http.StatusNoContent {
		t.Fatalf("clock 2 h behind with ServerClock: %d, want the request accepted", code)
	}
	rs := drain()
	if len(rs) != 2 || !errors.Is(rs[0].err, ErrStale) || rs[1].err != nil || string(rs[1].body) != `[{"a":1}]` {
		t.Fatalf("first request: %+v, want one stale refusal then the same body accepted", rs)
	}
	if code := status(follow, nil); code != http.StatusNoContent {
		t.Fatalf("second request: %d", code)
	}
	if rs := drain(); len(rs) != 1 || rs[0].err != nil {
		t.Fatalf("second request: %+v, want accepted at the first try", rs)
	}

	// A 401 with the right clock (an unknown device) is not retried.
	other := &Transport{DeviceID: "dev-unknown", Key: f.keys["dev-1"], ServerClock: true}
	if code := status(other, nil); code != http.StatusUnauthorized {
		t.Fatalf("unknown device: %d", code)
	}
	if rs := drain(); len(rs) != 1 || !errors.Is(rs[0].err, ErrUnknownDevice) {
		t.Fatalf("unknown device: %+v, want one refusal and no retry", rs)
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
