package certd

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certroot"
)

// counts is what must not change when bad input is refused.
type counts struct{ artifacts, results, logSize, revlists int64 }

func stateCounts(t *testing.T, s *Service) counts {
	t.Helper()
	var c counts
	s.db.QueryRow(`SELECT COUNT(*) FROM artifacts`).Scan(&c.artifacts)
	s.db.QueryRow(`SELECT COUNT(*) FROM results`).Scan(&c.results)
	s.db.QueryRow(`SELECT COUNT(*) FROM revlists`).Scan(&c.revlists)
	c.logSize, _ = s.log.Size(context.Background())
	return c
}

func multipartBody(t *testing.T, parts [][2]string) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p[0] == "artifact" || p[0] == "sbom" {
			w, err = mw.CreateFormFile(p[0], p[0]+".bin")
		} else {
			w, err = mw.CreateFormField(p[0])
		}
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(p[1]))
	}
	mw.Close()
	return mw.FormDataContentType(), &buf
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		w, _ := zw.Create(name)
		w.Write(data)
	}
	zw.Close()
	return buf.Bytes()
}

func TestBadInputGetsAClearErrorAndKeepsEverything(t *testing.T) {
	dir := sourceDir(t)
	s := newService(t, dir, nil)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	good := submitBytes(t, s, "good", dpkgStatus("libgood=1.0"), nil)
	before := stateCounts(t, s)
	dbID := s.vdb.ID()

	random := make([]byte, 4096)
	rand.Read(random)
	bomb := zipOf(t, map[string][]byte{"A.json": bytes.Repeat([]byte(" "), 64<<20)})
	deep := strings.Repeat(`{"components":[`, 10000)
	auth := "Bearer " + s.Token()
	type req struct {
		name, method, path, ctype, auth string
		body                            []byte
		parts                           [][2]string
		want                            int
	}
	cases := []req{
		{name: "no token", method: "POST", path: "/v1/submissions", parts: [][2]string{{"artifact", "x"}}, want: 401},
		{name: "wrong token", method: "POST", path: "/v1/submissions", auth: "Bearer nope", parts: [][2]string{{"artifact", "x"}}, want: 401},
		{name: "not multipart", method: "POST", path: "/v1/submissions", auth: auth, ctype: "application/json", body: []byte(`{}`), want: 415},
		{name: "no artifact part", method: "POST", path: "/v1/submissions", auth: auth, parts: [][2]string{{"name", "x"}}, want: 400},
		{name: "unknown part", method: "POST", path: "/v1/submissions", auth: auth, parts: [][2]string{{"evil", "x"}}, want: 400},
		{name: "empty artifact", method: "POST", path: "/v1/submissions", auth: auth, parts: [][2]string{{"name", "e"}, {"artifact", ""}}, want: 422},
		{name: "random bytes", method: "POST", path: "/v1/submissions", auth: auth, parts: [][2]string{{"name", "r"}, {"artifact", string(random)}}, want: 422},
		{name: "name too long", method: "POST", path: "/v1/submissions", auth: auth, parts: [][2]string{{"name", strings.Repeat("n", 300)}, {"artifact", string(dpkgStatus("a=1"))}}, want: 422},
		{name: "hostile SBOM nesting", method: "POST", path: "/v1/submissions", auth: auth, parts: [][2]string{{"name", "h"}, {"sbom", deep}, {"artifact", string(dpkgStatus("a=1"))}}, want: 422},
		{name: "SBOM not JSON", method: "POST", path: "/v1/submissions", auth: auth, parts: [][2]string{{"name", "h"}, {"sbom", "<bom/>"}, {"artifact", string(dpkgStatus("a=1"))}}, want: 422},
		{name: "zip bomb snapshot", method: "POST", path: "/v1/db", auth: auth, body: bomb, want: 422},
		{name: "not a zip", method: "POST", path: "/v1/db", auth: auth, body: random, want: 422},
		{name: "malformed records only", method: "POST", path: "/v1/db", auth: auth, body: zipOf(t, map[string][]byte{"X.json": []byte(`{"id": 5}`)}), want: 422},
		{name: "no such source", method: "POST", path: "/v1/db?source=7", auth: auth, body: zipOf(t, nil), want: 422},
		{name: "db upload without token", method: "POST", path: "/v1/db", body: zipOf(t, nil), want: 401},
		{name: "bad artifact digest", method: "GET", path: "/v1/artifacts/xyz", want: 400},
		{name: "unknown artifact", method: "GET", path: "/v1/artifacts/" + strings.Repeat("0", 64), want: 404},
		{name: "bad result digest", method: "GET", path: "/v1/results/sha256:zz", want: 400},
		{name: "unknown result", method: "GET", path: "/v1/results/sha256:" + strings.Repeat("0", 64), want: 404},
		{name: "bad events cursor", method: "GET", path: "/v1/events?after=-1", want: 400},
		{name: "long poll too long", method: "GET", path: "/v1/events?wait=10h", want: 400},
		{name: "bad list state", method: "GET", path: "/v1/artifacts?state=bogus", want: 400},
		{name: "bad root file", method: "GET", path: "/v1/roots/evil.json", want: 400},
		{name: "webhook not http", method: "POST", path: "/v1/webhooks", auth: auth, ctype: "application/json", body: []byte(`{"url":"file:///etc/passwd"}`), want: 422},
		{name: "webhook unknown field", method: "POST", path: "/v1/webhooks", auth: auth, ctype: "application/json", body: []byte(`{"url":"http://x","evil":1}`), want: 400},
		{name: "log bad proof query", method: "GET", path: "/v1/log/proof/inclusion?index=abc&size=1", want: 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, ctype := bytes.NewReader(c.body), c.ctype
			if c.parts != nil {
				var buf *bytes.Buffer
				ctype, buf = multipartBody(t, c.parts)
				body = bytes.NewReader(buf.Bytes())
			}
			r, _ := http.NewRequest(c.method, srv.URL+c.path, body)
			if ctype != "" {
				r.Header.Set("Content-Type", ctype)
			}
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.want, b)
			}
			if resp.StatusCode != 404 || strings.HasPrefix(c.path, "/v1/artifacts") {
				var e struct{ Error string }
				if json.Unmarshal(b, &e) != nil || e.Error == "" {
					t.Errorf("no clear error message: %s", b)
				}
			}
		})
	}
	if after := stateCounts(t, s); after != before {
		t.Fatalf("bad input changed the stored state: %+v → %+v", before, after)
	}
	if s.vdb.ID() != dbID {
		t.Fatal("a refused snapshot replaced the database")
	}
	out, err := s.Lookup(context.Background(), good.Artifact)
	if err != nil || out.State != StateCertified {
		t.Fatalf("the earlier certificate is gone: %v %v", out, err)
	}
}

func TestSubmitOverHTTPAndResubmitIsIdempotent(t *testing.T) {
	s := newService(t, sourceDir(t), nil)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	post := func() (int, Outcome) {
		ctype, body := multipartBody(t, [][2]string{{"name", "pkgs"}, {"artifact", string(dpkgStatus("libx=1.0"))}})
		r, _ := http.NewRequest("POST", srv.URL+"/v1/submissions", body)
		r.Header.Set("Content-Type", ctype)
		r.Header.Set("Authorization", "Bearer "+s.Token())
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out Outcome
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	c1, o1 := post()
	c2, o2 := post()
	if c1 != 201 || c2 != 200 || !o2.Reused || o1.Result.Digest != o2.Result.Digest {
		t.Fatalf("first %d %s, second %d %s reused=%v", c1, o1.Result.Digest, c2, o2.Result.Digest, o2.Reused)
	}
	// The bundle's receipt proves the certificate is in the log.
	resp, err := http.Get(srv.URL + "/v1/results/" + o1.Result.Digest + "/bundle")
	if err != nil {
		t.Fatal(err)
	}
	var b Bundle
	json.NewDecoder(resp.Body).Decode(&b)
	resp.Body.Close()
	if b.Kind != attest.KindCertificate || b.Receipt.Index != o1.Result.LogIndex || len(b.Receipt.Checkpoint) == 0 {
		t.Fatalf("bundle %+v", b)
	}
}

func TestEventFeedLongPollsAndWebhooksDeliverSignedEventsAtLeastOnce(t *testing.T) {
	s := newService(t, sourceDir(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	// A subscriber that fails its first two deliveries.
	var mu sync.Mutex
	var got []int64
	fails := 2
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			http.Error(w, "busy", 503)
			return
		}
		body, _ := io.ReadAll(r.Body)
		payload, err := attest.VerifyPayload(s.root, certroot.RoleCertify, EventPayloadType, body, time.Now())
		if err != nil {
			t.Errorf("webhook body does not verify: %v", err)
			return
		}
		var e Event
		json.Unmarshal(payload, &e)
		id, _ := strconv.ParseInt(r.Header.Get("Ztota-Event-Id"), 10, 64)
		if id != e.Seq {
			t.Errorf("header id %d, signed seq %d", id, e.Seq)
		}
		got = append(got, e.Seq)
	}))
	defer hook.Close()
	if _, err := s.AddWebhook(ctx, hook.URL, 0); err != nil {
		t.Fatal(err)
	}
	go s.hooks.Run(ctx)

	// A long poll waiting for the next event returns when it happens.
	evs, _ := s.Events(ctx, 0, 100, 0)
	last := evs[len(evs)-1].Seq
	done := make(chan []Event)
	go func() {
		resp, err := http.Get(srv.URL + "/v1/events?after=" + strconv.FormatInt(last, 10) + "&wait=30s")
		if err != nil {
			done <- nil
			return
		}
		defer resp.Body.Close()
		var evs []Event
		json.NewDecoder(resp.Body).Decode(&evs)
		done <- evs
	}()
	time.Sleep(100 * time.Millisecond)
	x := submitBytes(t, s, "x", dpkgStatus("liby=1.0"), nil)
	select {
	case evs := <-done:
		if len(evs) == 0 || evs[0].Kind != attest.KindCertificate || evs[0].Artifact != x.Artifact {
			t.Fatalf("long poll returned %+v", evs)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("long poll did not return after a new event")
	}

	all, _ := s.Events(ctx, 0, 500, 0)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(all) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	seen := map[int64]bool{}
	for i, seq := range got {
		if i > 0 && seq < got[i-1] {
			t.Errorf("delivered out of order: %v", got)
		}
		seen[seq] = true
	}
	for _, e := range all {
		if !seen[e.Seq] {
			t.Errorf("event %d (%s) never delivered; got %v", e.Seq, e.Kind, got)
		}
	}
}

// TestOversizedAndBombSubmissionsAreRefused: an artifact over the size
// bound and a gzip bomb are refused with a clear error; nothing is kept.
func TestOversizedAndBombSubmissionsAreRefused(t *testing.T) {
	s := newService(t, sourceDir(t), func(c *Config) { c.MaxSubmission = 64 << 10 })
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	good := submitBytes(t, s, "good", dpkgStatus("libgood=1.0"), nil)
	before := stateCounts(t, s)
	bomb := tarGz(t, map[string][]byte{"zeros": make([]byte, 200<<20)}) // ~200 KiB compressed: over the bound too
	small := tarGz(t, map[string][]byte{"bin/zeros": append([]byte{0x7f, 'E', 'L', 'F'}, make([]byte, 40<<20)...)})
	for _, c := range []struct {
		name string
		body []byte
		want int
	}{
		{"over the size bound", bytes.Repeat([]byte("x"), 65<<10), 413},
		{"gzip bomb over the bound", bomb, 413},
		{"compression-ratio bomb under the bound", small, 422},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctype, body := multipartBody(t, [][2]string{{"name", "big"}, {"artifact", string(c.body)}})
			r, _ := http.NewRequest("POST", srv.URL+"/v1/submissions", body)
			r.Header.Set("Content-Type", ctype)
			r.Header.Set("Authorization", "Bearer "+s.Token())
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want || !strings.Contains(string(b), "error") {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.want, b)
			}
			if strings.Contains(string(b), s.cfg.DataDir) {
				t.Errorf("the error reveals the service's paths: %s", b)
			}
			t.Logf("%d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
		})
	}
	if after := stateCounts(t, s); after != before {
		t.Fatalf("refused submissions changed the state: %+v → %+v", before, after)
	}
	if out, err := s.Lookup(context.Background(), good.Artifact); err != nil || out.State != StateCertified {
		t.Fatalf("earlier certificate lost: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(s.cfg.DataDir, "tmp"))
	if len(entries) != 0 {
		t.Errorf("temporary files left behind: %d", len(entries))
	}
}
