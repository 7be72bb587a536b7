package devauth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Unix(1700000000, 0)

type fleet struct {
	mu   sync.Mutex
	keys map[string]ed25519.PrivateKey
}

func newFleet(t *testing.T, ids ...string) *fleet {
	t.Helper()
	f := &fleet{keys: map[string]ed25519.PrivateKey{}}
	for _, id := range ids {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		f.keys[id] = priv
	}
	return f
}

func (f *fleet) lookup(_ context.Context, id string) (ed25519.PublicKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[id]
	if !ok {
		return nil, fmt.Errorf("device %q: %w", id, ErrUnknownDevice)
	}
	return k.Public().(ed25519.PublicKey), nil
}

// result is what the test server saw.
type result struct {
	device string
	body   []byte
	again  []byte // body read again by the handler after Verify
	err    error
}

// server starts an httptest server verifying every request with v and
// reporting the outcome on a channel.
func server(t *testing.T, v *Verifier) (*httptest.Server, <-chan result) {
	t.Helper()
	ch := make(chan result, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dev, body, err := v.Verify(r.Context(), r)
		res := result{device: dev, body: body, err: err}
		if err == nil {
			res.again, _ = io.ReadAll(r.Body)
		}
		ch <- res
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

// tamper is a RoundTripper that changes the signed request before sending it.
type tamper func(*http.Request)

func (f tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	f(r)
	return http.DefaultTransport.RoundTrip(r)
}

func do(t *testing.T, c *http.Client, method, url string, body []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func fixedNow() time.Time { return t0 }

func TestSignedRequestRoundTrip(t *testing.T) {
	f := newFleet(t, "dev-1")
	srv, got := server(t, &Verifier{Lookup: f.lookup, MaxBody: 1 << 10, Now: fixedNow})
	c := &http.Client{Transport: &Transport{DeviceID: "dev-1", Key: f.keys["dev-1"], Now: fixedNow}}
	body := []byte(`[{"x":1}]`)
	do(t, c, http.MethodPost, srv.URL+"/v1/devices/dev-1/reports?a=1&b=%2F", body)
	r := <-got
	if r.err != nil {
		t.Fatalf("Verify: %v", r.err)
	}
	if r.device != "dev-1" || !bytes.Equal(r.body, body) || !bytes.Equal(r.again, body) {
		t.Fatalf("got device %q body %q re-read %q", r.device, r.body, r.again)
	}
	do(t, c, http.MethodGet, srv.URL+"/director/dev-1/1.root.json", nil)
	if r := <-got; r.err != nil || len(r.body) != 0 {
		t.Fatalf("GET: err %v body %q", r.err, r.body)
	}
}

func TestDeviceKeyClaimingAnotherDeviceIsRefused(t *testing.T) {
	f := newFleet(t, "dev-a", "dev-b")
	srv, got := server(t, &Verifier{Lookup: f.lookup, MaxBody: 1 << 10, Now: fixedNow})
	c := &http.Client{Transport: &Transport{DeviceID: "dev-b", Key: f.keys["dev-a"], Now: fixedNow}}
	do(t, c, http.MethodPost, srv.URL+"/v1/devices/dev-b/reports", []byte("[]"))
	if r := <-got; !errors.Is(r.err, ErrBadSignature) || r.device != "" {
		t.Fatalf("got device %q err %v, want ErrBadSignature", r.device, r.err)
	}
}

func TestSignatureMovedToAnotherDeviceHeaderIsRefused(t *testing.T) {
	// Two devices enrolled with the same key: the device id is signed, so a
	// request cannot be relabelled from one to the other.
	f := newFleet(t, "dev-a")
	f.keys["dev-b"] = f.keys["dev-a"]
	srv, got := server(t, &Verifier{Lookup: f.lookup, MaxBody: 1 << 10, Now: fixedNow})
	c := &http.Client{Transport: &Transport{DeviceID: "dev-a", Key: f.keys["dev-a"], Now: fixedNow,
		Base: tamper(func(r *http.Request) { r.Header.Set(HeaderDevice, "dev-b") })}}
	do(t, c, http.MethodPost, srv.URL+"/v1/devices/dev-b/reports", []byte("[]"))
	if r := <-got; !errors.Is(r.err, ErrBadSignature) {
		t.Fatalf("got %v, want ErrBadSignature", r.err)
	}
}

func TestTamperedRequestIsRefused(t *testing.T) {
	cases := map[string]tamper{
		"body": func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`[{"x":2}]`))
			r.ContentLength = 9
		},
		"path":   func(r *http.Request) { r.URL.Path = "/v1/devices/dev-2/reports" },
		"query":  func(r *http.Request) { r.URL.RawQuery = "a=2" },
		"method": func(r *http.Request) { r.Method = http.MethodPut },
		"time": func(r *http.Request) {
			r.Header.Set(HeaderTime, strconv.FormatInt(t0.Unix()+1, 10))
		},
	}
	for name, tf := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFleet(t, "dev-1")
			srv, got := server(t, &Verifier{Lookup: f.lookup, MaxBody: 1 << 10, Now: fixedNow})
			c := &http.Client{Transport: &Transport{DeviceID: "dev-1", Key: f.keys["dev-1"], Now: fixedNow, Base: tf}}
			do(t, c, http.MethodPost, srv.URL+"/v1/devices/dev-1/reports?a=1", []byte(`[{"x":1}]`))
			if r := <-got; !errors.Is(r.err, ErrBadSignature) {
				t.Fatalf("got %v, want ErrBadSignature", r.err)
			}
		})
	}
}

func TestStaleAndFutureRequestsAreRefused(t *testing.T) {
	for _, skew := range []time.Duration{-MaxSkew - time.Second, MaxSkew + time.Second, -20 * 365 * 24 * time.Hour, 1 << 62} {
		t.Run(skew.String(), func(t *testing.T) {
			f := newFleet(t, "dev-1")
			srv, got := server(t, &Verifier{Lookup: f.lookup, MaxBody: 1 << 10, Now: fixedNow})
			c := &http.Client{Transport: &Transport{DeviceID: "dev-1", Key: f.keys["dev-1"], Now: func() time.Time { return t0.Add(skew) }}}
			do(t, c, http.MethodPost, srv.URL+"/x", []byte("[]"))
			if r := <-got; !errors.Is(r.err, ErrStale) {
				t.Fatalf("got %v, want ErrStale", r.err)
			}
		})
	}
	for _, skew := range []time.Duration{-MaxSkew, MaxSkew} {
		f := newFleet(t, "dev-1")
		srv, got := server(t, &Verifier{Lookup: f.lookup, MaxBody: 1 << 10, Now: fixedNow})
		c := &http.Client{Transport: &Transport{DeviceID: "dev-1", Key: f.keys["dev-1"], Now: func() time.Time { return t0.Add(skew) }}}
		do(t, c, http.MethodPost, srv.URL+"/x", []byte("[]"))
		if r := <-got; r.err != nil {
			t.Fatalf("skew %v at the bound: %v", skew, r.err)
		}
	}
}

func TestOversizeBodyIsRefused(t *testing.T) {
	f := newFleet(t, "dev-1")
	srv, got := server(t, &Verifier{Lookup: f.lookup, MaxBody: 16, Now: fixedNow})
	c := &http.Client{Transport: &Transport{DeviceID: "dev-1", Key: f.keys["dev-1"], Now: fixedNow}}
	do(t, c, http.MethodPost, srv.URL+"/x", bytes.Repeat([]byte("a"), 16))
	if r := <-got; r.err != nil {
		t.Fatalf("body at the bound: %v", r.err)
	}
	do(t, c, http.MethodPost, srv.URL+"/x", bytes.Repeat([]byte("a"), 17))
	if r := <-got; !errors.Is(r.err, ErrBodyTooLarge) {
		t.Fatalf("declared length: got %v, want ErrBodyTooLarge", r.err)
	}
	// A chunked body with no declared length is cut at the bound.
	c.Transport.(*Transport).Base = tamper(func(r *http.Request) {
		r.ContentLength = -1
		r.Body = io.NopCloser(io.MultiReader(r.Body, strings.NewReader(strings.Repeat("b", 1<<20))))
	})
	do(t, c, http.MethodPost, srv.URL+"/x", bytes.Repeat([]byte("a"), 8))
	if r := <-got; !errors.Is(r.err, ErrBodyTooLarge) {
		t.Fatalf("endless body: got %v, want ErrBodyTooLarge", r.err)
	}
}

func TestTransportRefusesOversizeBodyBeforeSending(t *testing.T) {
	f := newFleet(t, "dev-1")
	sent := false
	tr := &Transport{DeviceID: "dev-1", Key: f.keys["dev-1"], MaxBody: 4,
		Base: tamper(func(*http.Request) { sent = true })}
	req := httptest.NewRequest(http.MethodPost, "http://device.invalid/x", strings.NewReader("12345"))
	req.RequestURI = ""
	if _, err := tr.RoundTrip(req); !errors.Is(err, ErrBodyTooLarge) || sent {
		t.Fatalf("got %v sent=%v, want ErrBodyTooLarge and nothing sent", err, sent)
	}
}

func TestReplayedPostIsRefused(t *testing.T) {
	f := newFleet(t, "dev-1")
	now := t0
	v := &Verifier{Lookup: f.lookup, MaxBody: 1 << 10, Replay: NewReplayGuard(100), Now: func() time.Time { return now }}
	srv, got := server(t, v)
	var captured *http.Request
	var body []byte
	c := &http.Client{Transport: &Transport{DeviceID: "dev-1", Key: f.keys["dev-1"], Now: fixedNow,
		Base: tamper(func(r *http.Request) {
			if r.Method == http.MethodPost && captured == nil {
				captured = r
				body, _ = io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
		})}}
	do(t, c, http.MethodPost, srv.URL+"/v1/devices/dev-1/reports", []byte("[1]"))
	if r := <-got; r.err != nil {
		t.Fatalf("first: %v", r.err)
	}
	send := func() error {
		req, _ := http.NewRequest(captured.Method, captured.URL.String(), bytes.NewReader(body))
		req.Header = captured.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return (<-got).err
	}
	if err := send(); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: got %v, want ErrReplay", err)
	}
	// Once the signature is past the skew window, the replay is stale.
	now = t0.Add(MaxSkew + time.Second)
	if err := send(); !errors.Is(err, ErrStale) {
		t.Fatalf("late replay: got %v, want ErrStale", err)
	}
	// A fresh signature of the same body is accepted; GETs are not tracked.
	now = t0
	c.Transport.(*Transport).Now = func() time.Time { return t0.Add(time.Second) }
	do(t, c, http.MethodPost, srv.URL+"/v1/devices/dev-1/reports", []byte("[1]"))
	if r := <-got; r.err != nil {
		t.Fatalf("fresh: %v", r.err)
	}
	for i := 0; i < 2; i++ {
		do(t, c, http.MethodGet, srv.URL+"/director/dev-1/timestamp.json", nil)
		if r := <-got; r.err != nil {
			t.Fatalf("GET %d: %v", i, r.err)
		}
	}
}
