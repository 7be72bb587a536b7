package tufclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func testOptions(t *testing.T, repo *testRepo) Options {
	t.Helper()
	return Options{
		MetadataURL: repo.metadataURL(),
		MetadataDir: filepath.Join(t.TempDir(), "metadata"),
		TrustedRoot: repo.get("/metadata/1.root.json"),
		HTTPClient:  &http.Client{},
	}
}

func TestNewUpdaterRefusesUnsafeOptions(t *testing.T) {
	repo := newTestRepo(t)
	good := testOptions(t, repo)
	for name, mutate := range map[string]func(*Options){
		"no http client":           func(o *Options) { o.HTTPClient = nil },
		"no metadata dir":          func(o *Options) { o.MetadataDir = "" },
		"file url":                 func(o *Options) { o.MetadataURL = "file:///etc" },
		"relative url":             func(o *Options) { o.MetadataURL = "/metadata" },
		"targets dir is metadata":  func(o *Options) { o.TargetsDir = o.MetadataDir },
		"endless client timeout":   func(o *Options) { o.HTTPClient = &http.Client{Timeout: time.Hour} },
		"limit above ceiling":      func(o *Options) { o.Limits.TimestampMaxLength = MaxMetadataLength + 1 },
		"negative rotations":       func(o *Options) { o.Limits.MaxRootRotations = -1 },
		"bootstrap is not a root":  func(o *Options) { o.TrustedRoot = []byte(`{"signed":{"_type":"timestamp"}}`) },
		"no root anywhere":         func(o *Options) { o.TrustedRoot = nil },
		"bootstrap over the limit": func(o *Options) { o.Limits.RootMaxLength = 10 },
	} {
		o := good
		o.MetadataDir = filepath.Join(t.TempDir(), "metadata")
		mutate(&o)
		if _, err := NewUpdater(context.Background(), o); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !errors.Is(err, ErrInvalidOptions) && !errors.Is(err, ErrNoTrustedRoot) {
			t.Errorf("%s: error %v is neither ErrInvalidOptions nor ErrNoTrustedRoot", name, err)
		}
	}
	if _, err := NewUpdater(context.Background(), good); err != nil {
		t.Fatalf("good options refused: %v", err)
	}
}

func TestNewerCachedRootIsPreferredOverBootstrap(t *testing.T) {
	repo := newTestRepo(t)
	o := testOptions(t, repo)
	repo.root.Signed.Version = 2
	repo.publishRoot()
	up, err := NewUpdater(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Refresh(); err != nil {
		t.Fatal(err)
	}
	// A restart with the old bootstrap root still starts from v2.
	up, err = NewUpdater(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if v := up.GetTrustedMetadataSet().Root.Signed.Version; v != 2 {
		t.Fatalf("started from root v%d, want the cached v2", v)
	}
}

func TestTamperedCachedRootFallsBackToBootstrap(t *testing.T) {
	repo := newTestRepo(t)
	o := testOptions(t, repo)
	if err := os.MkdirAll(o.MetadataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	forged := []byte(`{"signed":{"_type":"root","version":99,"spec_version":"1.0.31","expires":"2100-01-01T00:00:00Z","keys":{},"roles":{},"consistent_snapshot":true},"signatures":[]}`)
	if err := os.WriteFile(filepath.Join(o.MetadataDir, "root.json"), forged, 0o600); err != nil {
		t.Fatal(err)
	}
	up, err := NewUpdater(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if v := up.GetTrustedMetadataSet().Root.Signed.Version; v != 1 {
		t.Fatalf("started from root v%d, want the bootstrap v1", v)
	}
}

func TestCancelledContextStopsSlowRefresh(t *testing.T) {
	repo := newTestRepo(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // trickle nothing until the client gives up
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	}))
	defer slow.Close()
	o := testOptions(t, repo)
	o.MetadataURL = slow.URL + "/metadata"
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	up, err := NewUpdater(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := up.Refresh(); err == nil {
		t.Fatal("refresh from a silent server succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("refresh took %v after its context ended", d)
	}
}

func TestSlowMirrorIsCutByClientTimeout(t *testing.T) {
	repo := newTestRepo(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	}))
	defer slow.Close()
	o := testOptions(t, repo)
	o.MetadataURL = slow.URL + "/metadata"
	o.HTTPClient = &http.Client{Timeout: 200 * time.Millisecond}
	up, err := NewUpdater(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := up.Refresh(); err == nil {
		t.Fatal("refresh from a silent server succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("refresh took %v despite a 200ms client timeout", d)
	}
}

func TestRedirectFromHTTPSToHTTPIsRefused(t *testing.T) {
	c, err := boundClient(&http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := http.NewRequest("GET", "https://ota.example/metadata/timestamp.json", nil)
	next, _ := http.NewRequest("GET", "http://ota.example/metadata/timestamp.json", nil)
	if err := c.CheckRedirect(next, []*http.Request{first}); err == nil {
		t.Fatal("https → http redirect allowed")
	}
	if err := c.CheckRedirect(first, []*http.Request{first, first, first, first}); err == nil {
		t.Fatal("fifth redirect allowed")
	}
	if c.Timeout != DefaultHTTPTimeout {
		t.Fatalf("timeout %v, want the default %v", c.Timeout, DefaultHTTPTimeout)
	}
}

func TestUpdaterSendsRequestsThroughCallerClient(t *testing.T) {
	repo := newTestRepo(t)
	o := testOptions(t, repo)
	var seen int
	o.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen++
		return http.DefaultTransport.RoundTrip(r)
	})}
	up, err := NewUpdater(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Refresh(); err != nil {
		t.Fatal(err)
	}
	if seen == 0 {
		t.Fatal("the caller's transport (which signs requests) was bypassed")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestEndlessMetadataStreamIsCut(t *testing.T) {
	repo := newTestRepo(t)
	written := make(chan int64, 1)
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metadata/timestamp.json" {
			http.NotFound(w, r)
			return
		}
		chunk := make([]byte, 4096)
		var n int64
		for n < 256<<20 { // stop by itself at 256 MiB
			if _, err := w.Write(chunk); err != nil {
				break
			}
			n += int64(len(chunk))
		}
		written <- n
	}))
	defer endless.Close()
	o := testOptions(t, repo)
	o.MetadataURL = endless.URL + "/metadata"
	up, err := NewUpdater(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Refresh(); err == nil {
		t.Fatal("endless timestamp accepted")
	}
	if n := <-written; n >= 256<<20 {
		t.Fatalf("client read on for %d bytes; the limit is %d", n, DefaultLimits().TimestampMaxLength)
	}
}
