package certd

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ztota/ztota/internal/vulnfixture"
)

// TestURLSourceIsPolledWithETag: an https source is fetched once, then
// answered 304 while unchanged, and applied when its content changes.
func TestURLSourceIsPolledWithETag(t *testing.T) {
	data := osvData(t)
	var mu sync.Mutex
	body := readFile(t, filepath.Join(data, vulnfixture.Snapshot20250101+".zip"))
	etag := `"v1"`
	var full, notModified int
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("If-None-Match") == etag {
			notModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full++
		w.Header().Set("ETag", etag)
		w.Write(body)
	}))
	defer srv.Close()
	s := newService(t, srv.URL+"/Go/all.zip", func(c *Config) { c.HTTPClient = srv.Client() })
	first := s.vdb.ID()
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if reps, err := s.Poll(ctx); err != nil || len(reps) != 0 {
			t.Fatalf("poll of an unchanged URL: %v %v", reps, err)
		}
	}
	mu.Lock()
	if full != 1 || notModified != 3 {
		t.Fatalf("%d full fetches and %d 304s, want 1 and 3", full, notModified)
	}
	body = readFile(t, filepath.Join(data, vulnfixture.Snapshot20250701+".zip"))
	etag = `"v2"`
	mu.Unlock()
	reps, err := s.Poll(ctx)
	if err != nil || len(reps) != 1 {
		t.Fatalf("poll after a change: %v %v", reps, err)
	}
	if reps[0].PreviousID != first || reps[0].ID == first || reps[0].Added == 0 {
		t.Fatalf("update %+v", reps[0])
	}
	// A source that starts failing keeps the current snapshot.
	mu.Lock()
	body, etag = []byte("not a zip"), `"v3"`
	mu.Unlock()
	before := s.vdb.ID()
	if _, err := s.Poll(ctx); err == nil {
		t.Fatal("a broken source was accepted")
	}
	if s.vdb.ID() != before {
		t.Fatal("a broken source replaced the snapshot")
	}
}

// TestMalformedRecordsAreSkippedAndCounted: a snapshot with some malformed
// records loads the rest and says how many it skipped.
func TestMalformedRecordsAreSkippedAndCounted(t *testing.T) {
	dir := sourceDir(t)
	s := newService(t, dir, nil)
	x := submitBytes(t, s, "x", dpkgStatus("libfoo=1.0-1"), nil)
	record(t, dir, "TEST-0007", "libfoo", "2.0-1", false)
	for name, body := range map[string]string{
		"BAD-1.json": `{"id": 7}`,
		"BAD-2.json": `{"id":"BAD-2","affected":[{"package":{"ecosystem":"Debian","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0","fixed":"1"}]}]}]}`,
		"BAD-3.json": `not json`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reps, err := s.Poll(context.Background())
	if err != nil || len(reps) != 1 {
		t.Fatalf("poll: %v %v", reps, err)
	}
	if reps[0].Rejected != 3 || reps[0].Added != 1 || len(reps[0].Revoked) != 1 || reps[0].Revoked[0] != x.Artifact {
		t.Fatalf("report %+v: want 3 rejected records, 1 added, x revoked", reps[0])
	}
	st, err := s.Status(context.Background())
	if err != nil || st.Sources[0].Rejected != 3 {
		t.Fatalf("status %+v %v", st, err)
	}
}
