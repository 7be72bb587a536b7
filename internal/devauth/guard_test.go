package devauth

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCanonicalMatchesDocumentedExample(t *testing.T) {
	sum := sha256.Sum256([]byte("[]"))
	if got := hex.EncodeToString(sum[:]); got != "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945" {
		t.Fatalf("sha256([]) = %s", got)
	}
	want := "ztota-request-v1\ndev-1\nPOST\n/v1/devices/dev-1/reports?x=1\n1700000000\n" + hex.EncodeToString(sum[:])
	if got := string(canonical("dev-1", "POST", "/v1/devices/dev-1/reports?x=1", 1700000000, []byte("[]"))); got != want {
		t.Fatalf("canonical =\n%q\nwant\n%q", got, want)
	}
}

func TestUnsignedAndMalformedHeadersAreRefused(t *testing.T) {
	f := newFleet(t, "dev-1")
	good := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader("[]"))
	Sign(good, "dev-1", f.keys["dev-1"], t0, []byte("[]"))
	cases := map[string]struct {
		edit func(h http.Header)
		want error
	}{
		"no headers":         {func(h http.Header) { h.Del(HeaderDevice); h.Del(HeaderTime); h.Del(HeaderSignature) }, ErrMissingAuth},
		"no signature":       {func(h http.Header) { h.Del(HeaderSignature) }, ErrMissingAuth},
		"repeated device":    {func(h http.Header) { h.Add(HeaderDevice, "dev-2") }, ErrMalformedAuth},
		"device with slash":  {func(h http.Header) { h.Set(HeaderDevice, "../dev-1") }, ErrMalformedAuth},
		"huge device id":     {func(h http.Header) { h.Set(HeaderDevice, strings.Repeat("d", MaxDeviceIDLen+1)) }, ErrMalformedAuth},
		"signed time":        {func(h http.Header) { h.Set(HeaderTime, "+1700000000") }, ErrMalformedAuth},
		"huge time":          {func(h http.Header) { h.Set(HeaderTime, strings.Repeat("9", 30)) }, ErrMalformedAuth},
		"short signature":    {func(h http.Header) { h.Set(HeaderSignature, "AAAA") }, ErrMalformedAuth},
		"url-safe signature": {func(h http.Header) { h.Set(HeaderSignature, strings.Repeat("_", 86)+"==") }, ErrMalformedAuth},
		"unknown device":     {func(h http.Header) { h.Set(HeaderDevice, "dev-9") }, ErrUnknownDevice},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := good.Clone(context.Background())
			r.Body = http.NoBody
			c.edit(r.Header)
			if _, _, err := Verify(context.Background(), r, f.lookup, t0, 1<<10); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestLookupFaultIsNotReportedAsUnknownDevice(t *testing.T) {
	f := newFleet(t, "dev-1")
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	Sign(r, "dev-1", f.keys["dev-1"], t0, nil)
	dbDown := errors.New("database unavailable")
	_, _, err := Verify(context.Background(), r, func(context.Context, string) (ed25519.PublicKey, error) { return nil, dbDown }, t0, 0)
	if !errors.Is(err, dbDown) || errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("got %v", err)
	}
}

func TestMiddlewareRewritingPathDoesNotChangeWhatIsVerified(t *testing.T) {
	f := newFleet(t, "dev-1")
	r := httptest.NewRequest(http.MethodGet, "/api/director/dev-1/root.json", nil)
	Sign(r, "dev-1", f.keys["dev-1"], t0, nil)
	r.URL.Path = "/director/dev-1/root.json" // as http.StripPrefix does
	if _, _, err := Verify(context.Background(), r, f.lookup, t0, 0); err != nil {
		t.Fatal(err)
	}
}

func TestReplayGuardFailsClosedWhenFull(t *testing.T) {
	g := NewReplayGuard(2)
	sig := func(b byte) []byte { return []byte{b} }
	for i := byte(0); i < 2; i++ {
		if err := g.check("dev-1", sig(i), t0, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.check("dev-1", sig(2), t0, t0); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("full: got %v", err)
	}
	if err := g.check("dev-1", sig(0), t0, t0.Add(time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay while full: got %v", err)
	}
	// Same signature bytes from another device are a different entry, but
	// still subject to the bound.
	later := t0.Add(MaxSkew + time.Second)
	if err := g.check("dev-2", sig(0), later, later); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if g.Len() != 1 {
		t.Fatalf("expired entries kept: %d", g.Len())
	}
}

func FuzzParseHeaders(f *testing.F) {
	f.Add("dev-1", "1700000000", strings.Repeat("A", 86)+"==")
	f.Add("", "", "")
	f.Add("dev\n1", "-1", "!!")
	f.Fuzz(func(t *testing.T, dev, tm, sig string) {
		h := http.Header{}
		h.Set(HeaderDevice, dev)
		h.Set(HeaderTime, tm)
		h.Set(HeaderSignature, sig)
		id, unix, s, err := parseHeaders(h)
		if err != nil {
			return
		}
		if !ValidDeviceID(id) || unix < 0 || len(s) != ed25519.SignatureSize {
			t.Fatalf("accepted %q %d %x", id, unix, s)
		}
	})
}
