package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/devauth"
	"github.com/ztota/ztota/internal/enroll"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tufrepo"
)

// clock is a controllable time source shared by the server and devices.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a real server on loopback with a controllable clock.
type env struct {
	*testbed.Bed
	clk   *clock
	token string // admin API token
}

const testMaxArtifact = 1 << 20

func newEnv(t *testing.T, adjust func(*server.Config)) *env {
	t.Helper()
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	b := testbed.New(t, testbed.Options{Server: func(c *server.Config) {
		c.Now = clk.Now
		c.MaxArtifactSize = testMaxArtifact
		if adjust != nil {
			adjust(c)
		}
	}})
	return &env{Bed: b, clk: clk, token: b.Admin.Token}
}

func ctxT(t *testing.T) context.Context { return testbed.Ctx(t) }

// answer is an HTTP answer with its body.
type answer struct {
	code int
	body []byte
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.code, bytes.TrimSpace(a.body)) }

// errMsg returns the {"error"} message of an answer, or "" when it has none.
func (a answer) errMsg() string {
	var e map[string]any
	if json.Unmarshal(a.body, &e) != nil || len(e) != 1 {
		return ""
	}
	s, _ := e["error"].(string)
	return s
}

// request sends one request; token "" sends no Authorization header.
func (e *env) request(t *testing.T, hc *http.Client, method, path, token string, body []byte) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctxT(t), method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, data}
}

func (e *env) api(t *testing.T, method, path string, body []byte) answer {
	t.Helper()
	return e.request(t, nil, method, path, e.token, body)
}

// wantRefused checks a clear refusal: the given status and a JSON
// {"error": "..."} body.
func wantRefused(t *testing.T, what string, a answer, code int) {
	t.Helper()
	if a.code != code {
		t.Errorf("%s: got %s, want status %d", what, a, code)
		return
	}
	if a.errMsg() == "" {
		t.Errorf("%s: status %d without a JSON {\"error\"} message: %q", what, a.code, a.body)
	}
}

// dbDump renders every row of every table and the artifact directory, so
// a test can assert that a refused request changed nothing.
func dbDump(t *testing.T, st *store.Store) string {
	t.Helper()
	ctx := ctxT(t)
	var sb strings.Builder
	for _, tbl := range []string{"tuf_meta", "artifacts", "releases", "devices", "enroll_tokens", "api_tokens", "reports", "deployments", "deployment_devices"} {
		rows, err := st.DB().QueryContext(ctx, `SELECT * FROM `+tbl+` ORDER BY rowid`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		n := 0
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					vals[i] = "sha256:" + sha256Hex(b)[:16]
				}
			}
			fmt.Fprintf(&sb, "%s %v\n", tbl, vals)
			n++
		}
		rows.Close()
		fmt.Fprintf(&sb, "%s: %d rows\n", tbl, n)
	}
	ents, _ := os.ReadDir(filepath.Join(st.Dir(), "artifacts", "sha256"))
	var names []string
	for _, en := range ents {
		names = append(names, en.Name())
	}
	sort.Strings(names)
	fmt.Fprintf(&sb, "artifacts on disk: %v\n", names)
	return sb.String()
}

// unchanged runs fn and fails if the stored state differs afterwards.
func unchanged(t *testing.T, st *store.Store, fn func()) {
	t.Helper()
	before := dbDump(t, st)
	fn()
	if after := dbDump(t, st); after != before {
		t.Errorf("a refused request changed the stored state:\n%s", lineDiff(before, after))
	}
}

func countRows(t *testing.T, st *store.Store, table string) int {
	t.Helper()
	var n int
	if err := st.DB().QueryRowContext(ctxT(t), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// device is a test device holding its own key.
type device struct {
	id  string
	key ed25519.PrivateKey
	hc  *http.Client
	seq uint64
	clk *clock
}

// enrollToken makes a one-time enrollment token for group, valid an hour.
func (e *env) enrollToken(t *testing.T, group string) string {
	t.Helper()
	tok, err := e.Admin.EnrollToken(ctxT(t), group, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// enroll enrolls a device with a fresh key and token over HTTP.
func (e *env) enroll(t *testing.T, id, hw, group string) *device {
	t.Helper()
	tok := e.enrollToken(t, group)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	body, _ := json.Marshal(enroll.NewRequest(tok, id, hw, pub))
	if a := e.request(t, nil, "POST", "/v1/enroll", "", body); a.code != http.StatusCreated {
		t.Fatalf("enrolling %s: %s", id, a)
	}
	return &device{id: id, key: priv, clk: e.clk,
		hc: &http.Client{Transport: &devauth.Transport{DeviceID: id, Key: priv, Now: e.clk.Now}, Timeout: time.Minute}}
}

// rep makes the device's next report.
func (d *device) rep(state report.State, target string) report.Report {
	d.seq++
	r := report.New(d.id, d.seq, state, d.clk.Now())
	r.Target = target
	return r
}

func signAll(t *testing.T, key ed25519.PrivateKey, rs ...report.Report) []byte {
	t.Helper()
	var batch []report.Signed
	for _, r := range rs {
		s, err := report.SignReport(key, r)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, s)
	}
	b, err := json.Marshal(batch)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post sends reports signed by the device to its own reports URL.
func (e *env) post(t *testing.T, d *device, rs ...report.Report) answer {
	t.Helper()
	return e.request(t, d.hc, "POST", "/v1/devices/"+d.id+"/reports", "", signAll(t, d.key, rs...))
}

func (e *env) mustPost(t *testing.T, d *device, rs ...report.Report) server.ReportsResponse {
	t.Helper()
	a := e.post(t, d, rs...)
	if a.code != http.StatusOK {
		t.Fatalf("reports of %s: %s", d.id, a)
	}
	var rr server.ReportsResponse
	if err := json.Unmarshal(a.body, &rr); err != nil {
		t.Fatal(err)
	}
	return rr
}

// artifact writes n random bytes to a file and returns its path.
func artifact(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	p := filepath.Join(t.TempDir(), "app-"+hex.EncodeToString(b[:4])+".tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// release publishes a random artifact for the hardware ids.
func (e *env) release(t *testing.T, version string, counter uint64, hw ...string) string {
	t.Helper()
	return e.Release(artifact(t, 512), version, counter, hw...).Target
}

func (e *env) targetsKey(t *testing.T) *keys.Key {
	t.Helper()
	k, err := keys.Load(filepath.Join(e.KeysDir, keyset.OfflineDir, keyset.ImageTargetsKey))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// nextTargets builds the next image targets on top of the server's current
// ones, lets mutate change them, and signs them with key.
func (e *env) nextTargets(t *testing.T, key *keys.Key, mutate func(*metadata.Metadata[metadata.TargetsType])) []byte {
	t.Helper()
	cur, err := e.Admin.ImageTargets(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	prev, err := tufrepo.Parse[metadata.TargetsType](cur)
	if err != nil {
		t.Fatal(err)
	}
	next := tufrepo.NextTargets(prev, e.clk.Now().Add(90*24*time.Hour))
	if mutate != nil {
		mutate(next)
	}
	b, err := tufrepo.Sign(next, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// uploaded uploads n random bytes and returns the target file describing
// them with valid custom metadata.
func (e *env) uploaded(t *testing.T, version string, n int, hw ...string) (string, *metadata.TargetFiles) {
	t.Helper()
	p := artifact(t, n)
	data, _ := os.ReadFile(p)
	sha := sha256Hex(data)
	if a := e.api(t, "PUT", "/v1/artifacts/"+sha, data); a.code != http.StatusCreated {
		t.Fatalf("upload: %s", a)
	}
	path := tufrepo.TargetPath("app", version, "app.tar")
	shab, _ := hex.DecodeString(sha)
	tf, err := tufrepo.TargetFile(path, int64(n), shab, tufrepo.ImageCustom(tufrepo.ImageMeta{
		Name: "app", Version: version, ReleaseCounter: 1, HardwareIDs: hw, Module: "app", ArtifactType: tufrepo.ArtifactBundle}))
	if err != nil {
		t.Fatal(err)
	}
	return path, tf
}

// directorTargets returns the target paths the device's latest director
// targets metadata lists, read from the store.
func directorTargets(t *testing.T, st *store.Store, dev string) []string {
	t.Helper()
	m, err := st.LatestMeta(ctxT(t), "director/"+dev, tufrepo.Targets)
	if err != nil {
		t.Fatal(err)
	}
	md, err := tufrepo.Parse[metadata.TargetsType](m.Data)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for p := range md.Signed.Targets {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// lineDiff lists the lines only in a ("-") and only in b ("+").
func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var sb strings.Builder
	for _, l := range strings.Split(a, "\n") {
		if !mb[l] {
			sb.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ma[l] {
			sb.WriteString("+ " + l + "\n")
		}
	}
	return sb.String()
}

type md = metadata.Metadata[metadata.TargetsType]

func mustSign(t *testing.T, key ed25519.PrivateKey, r report.Report) report.Signed {
	t.Helper()
	s, err := report.SignReport(key, r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// flip returns s with one payload bit changed.
func flip(s report.Signed) report.Signed {
	p := append([]byte{}, s.Payload...)
	p[len(p)/2] ^= 1
	return report.Signed{Payload: p, Sig: s.Sig}
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type nopCloser struct{ io.Reader }

func (nopCloser) Close() error { return nil }
