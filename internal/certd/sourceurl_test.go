package certd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

// TestPlainHTTPSourceIsRefusedUnlessPinned performs the smaller point of
// issue 6 (field failures, 11) about OSV URL sources: the old service
// fetched a plain-http all.zip, which anyone on the path can replace with
// a snapshot that lacks the advisories of their choice. Now a plain-http
// source without a digest is refused when the service opens
// (ErrInsecureSource); an http source pinned with #sha256=<hex> is loaded
// when the bytes match and refused when an on-path attacker serves other
// bytes (ErrSourceDigest); an https source that redirects to plain http is
// refused.
func TestPlainHTTPSourceIsRefusedUnlessPinned(t *testing.T) {
	good, other := synthZip(t, "TEST-0001"), synthZip(t, "TEST-0002")
	sum := sha256.Sum256(good)
	pin := hex.EncodeToString(sum[:])
	serve := func(body []byte) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
		t.Cleanup(srv.Close)
		return srv
	}
	open := func(spec string, client *http.Client) (*Service, error) {
		s, err := Open(context.Background(), Config{DataDir: t.TempDir(), OSV: []string{spec}, HTTPClient: client})
		if err == nil {
			t.Cleanup(func() { s.Close() })
		}
		return s, err
	}

	plain := serve(good)
	if _, err := open(plain.URL+"/all.zip", nil); !errors.Is(err, ErrInsecureSource) {
		t.Fatalf("plain http without a pin: %v, want ErrInsecureSource", err)
	}
	s, err := open(plain.URL+"/all.zip#sha256="+pin, nil)
	if err != nil {
		t.Fatalf("plain http with the right pin: %v", err)
	}
	if s.vdb.ID() == "" {
		t.Fatal("the pinned snapshot loaded no records")
	}
	// An on-path attacker answers with other (validly formed) bytes.
	swapped := serve(other)
	if _, err := open(swapped.URL+"/all.zip#sha256="+pin, nil); !errors.Is(err, ErrSourceDigest) {
		t.Fatalf("swapped snapshot: %v, want ErrSourceDigest", err)
	}
	for _, bad := range []string{"#sha256=xyz", "#sha256=" + pin[:63], "#md5=" + pin} {
		if _, err := open(plain.URL+"/all.zip"+bad, nil); err == nil {
			t.Errorf("malformed pin %q accepted", bad)
		}
	}
	// https that redirects to plain http.
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/all.zip", http.StatusFound)
	}))
	defer tls.Close()
	if _, err := open(tls.URL+"/all.zip", tls.Client()); !errors.Is(err, ErrInsecureSource) {
		t.Fatalf("https redirected to http: %v, want ErrInsecureSource", err)
	}
}

// synthZip is an OSV all.zip holding one synthetic record.
func synthZip(t *testing.T, id string) []byte {
	t.Helper()
	dir := t.TempDir()
	record(t, dir, id, "libfoo", "2.0-1", false)
	return zipOf(t, map[string][]byte{id + ".json": readFile(t, filepath.Join(dir, id+".json"))})
}
