package bench_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/bench"
	"github.com/ztota/ztota/internal/devauth"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/testbed"
)

// checkinBed is an enrolled device's director timestamp on the real
// server, and the same bytes behind the bare reference handler.
type checkinBed struct {
	bed      *testbed.Bed
	deviceID string
	key      ed25519.PrivateKey
	realURL  string
	bareURL  string
	etag     string
	body     []byte
}

func newCheckinBed(tb testing.TB) *checkinBed {
	tb.Helper()
	bed := testbed.New(tb, testbed.Options{})
	ctx := testbed.Ctx(tb)
	cfg := bed.AgentConfig("bench-checkin", hardwareID)
	a, err := agent.New(ctx, cfg, bed.Log)
	fatalIf(tb, err)
	fatalIf(tb, a.Enroll(ctx))
	k, err := keys.Load(filepath.Join(cfg.DataDir, "device.key"))
	fatalIf(tb, err)
	cb := &checkinBed{bed: bed, deviceID: cfg.DeviceID, key: k.Private.(ed25519.PrivateKey),
		realURL: bed.URL + "/director/" + cfg.DeviceID + "/timestamp.json"}
	c := cb.client(1)
	resp, err := c.Get(cb.realURL)
	fatalIf(tb, err)
	cb.body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	fatalIf(tb, err)
	cb.etag = resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusOK || cb.etag == "" {
		tb.Fatalf("first fetch of %s: %s, ETag %q", cb.realURL, resp.Status, cb.etag)
	}
	bare := httptest.NewServer(bench.TimestampHandler(cb.body, cb.etag))
	tb.Cleanup(bare.Close)
	cb.bareURL = bare.URL + "/director/" + cfg.DeviceID + "/timestamp.json"
	return cb
}

// client is a keep-alive client that signs every request with the
// device key, as the agent's is; both servers get the same client so
// that the ratio compares the servers.
func (cb *checkinBed) client(workers int) *http.Client {
	tr := &http.Transport{MaxIdleConns: 2 * workers, MaxIdleConnsPerHost: workers, DisableCompression: true, IdleConnTimeout: time.Minute}
	return &http.Client{Transport: &devauth.Transport{Base: tr, DeviceID: cb.deviceID, Key: cb.key}, Timeout: 30 * time.Second}
}

// measureCheckins runs rounds of load against each server, alternating
// which goes first, and returns the median rates.
func (cb *checkinBed) measure(ctx context.Context, tb testing.TB, load bench.Load, rounds int) (realRate, bareRate float64) {
	tb.Helper()
	var reals, bares []float64
	run := func(url string) float64 {
		c := cb.client(load.Workers)
		defer c.Transport.(*devauth.Transport).Base.(*http.Transport).CloseIdleConnections()
		// Warm up: open the connections.
		if _, err := bench.Checkins(ctx, c, url, cb.etag, bench.Load{Workers: load.Workers, Requests: int64(4 * load.Workers)}); err != nil {
			tb.Fatal(err)
		}
		r, err := bench.Checkins(ctx, c, url, cb.etag, load)
		fatalIf(tb, err)
		if r.NotModified != r.Requests || r.Requests == 0 {
			tb.Fatalf("%s: %d of %d answers were 304", url, r.NotModified, r.Requests)
		}
		return r.Rate()
	}
	for i := range rounds {
		if i%2 == 0 {
			reals = append(reals, run(cb.realURL))
			bares = append(bares, run(cb.bareURL))
		} else {
			bares = append(bares, run(cb.bareURL))
			reals = append(reals, run(cb.realURL))
		}
	}
	return bench.MedianFloat(reals), bench.MedianFloat(bares)
}

func checkinFigure(realRate, bareRate float64, workers int) bench.Figure {
	return bench.Figure{Name: "check-ins, nothing changed (" + strconv.Itoa(workers) + " clients)", Value: realRate, Unit: "req/s",
		RefName: "bare net/http 304 handler", RefValue: bareRate, RatioAtLeast: 0.5}
}

// TestEveryCheckinIsAnswered304ByTheServerAndTheReference is the smoke
// run of figure (a): 200 signed conditional GETs to each server, all
// answered 304.
func TestEveryCheckinIsAnswered304ByTheServerAndTheReference(t *testing.T) {
	cb := newCheckinBed(t)
	ctx := testbed.Ctx(t)
	for _, url := range []string{cb.realURL, cb.bareURL} {
		r, err := bench.Checkins(ctx, cb.client(8), url, cb.etag, bench.Load{Workers: 8, Requests: 200})
		fatalIf(t, err)
		if r.Requests != 200 || r.NotModified != 200 {
			t.Fatalf("%s: %d answers, %d of them 304; want 200 and 200", url, r.Requests, r.NotModified)
		}
	}
}

// TestAStaleETagStopsTheRun: a check-in answered 200 (the ETag is not the
// server's) is not counted as a cheap check-in.
func TestAStaleETagStopsTheRun(t *testing.T) {
	cb := newCheckinBed(t)
	r, err := bench.Checkins(testbed.Ctx(t), cb.client(4), cb.realURL, `"0"`, bench.Load{Workers: 4, Requests: 50})
	if !errors.Is(err, bench.ErrUnexpectedStatus) {
		t.Fatalf("err = %v, want ErrUnexpectedStatus", err)
	}
	if r.NotModified != 0 {
		t.Fatalf("%d answers counted as 304", r.NotModified)
	}
}

// TestUnsignedCheckinsAreRefused: the real server answers a check-in
// without the device signature with 401, so the figure cannot be taken
// from a path that skips authentication.
func TestUnsignedCheckinsAreRefused(t *testing.T) {
	cb := newCheckinBed(t)
	_, err := bench.Checkins(testbed.Ctx(t), http.DefaultClient, cb.realURL, cb.etag, bench.Load{Workers: 1, Requests: 1})
	if !errors.Is(err, bench.ErrUnexpectedStatus) {
		t.Fatalf("err = %v, want ErrUnexpectedStatus (401)", err)
	}
}

func TestLoadOutOfBoundsIsRefused(t *testing.T) {
	for _, l := range []bench.Load{{}, {Workers: 1}, {Workers: bench.MaxWorkers + 1, Requests: 1}, {Workers: 1, Requests: -1},
		{Workers: 1, Duration: bench.MaxDuration + 1}} {
		if _, err := bench.Checkins(context.Background(), http.DefaultClient, "http://127.0.0.1:1/", `"1"`, l); !errors.Is(err, bench.ErrBadLoad) {
			t.Errorf("%+v: err = %v, want ErrBadLoad", l, err)
		}
	}
}

// BenchmarkCheckin times b.N signed conditional GETs answered 304 by the
// real server, then as many by the bare handler (untimed), and reports
// both rates and their ratio.
func BenchmarkCheckin(b *testing.B) {
	const workers = 16
	cb := newCheckinBed(b)
	ctx := testbed.Ctx(b)
	realC, bareC := cb.client(workers), cb.client(workers)
	warm := bench.Load{Workers: workers, Requests: 4 * workers}
	for _, w := range []struct {
		c   *http.Client
		url string
	}{{realC, cb.realURL}, {bareC, cb.bareURL}} {
		_, err := bench.Checkins(ctx, w.c, w.url, cb.etag, warm)
		fatalIf(b, err)
	}
	load := bench.Load{Workers: workers, Requests: int64(b.N)}
	b.ResetTimer()
	real, err := bench.Checkins(ctx, realC, cb.realURL, cb.etag, load)
	b.StopTimer()
	fatalIf(b, err)
	bare, err := bench.Checkins(ctx, bareC, cb.bareURL, cb.etag, load)
	fatalIf(b, err)
	b.ReportMetric(real.Rate(), "checkins/s")
	b.ReportMetric(bare.Rate(), "bare-checkins/s")
	b.ReportMetric(real.Rate()/bare.Rate(), "ratio")
}
