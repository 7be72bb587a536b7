package tufclient

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// testRepo is a small TUF repository (ed25519 keys, consistent snapshots)
// served over httptest: metadata under /metadata/, targets under /targets/.
type testRepo struct {
	t         *testing.T
	keys      map[string]ed25519.PrivateKey // role → signing key
	rootKeys  []ed25519.PrivateKey          // keys that sign the next root version
	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	srv       *httptest.Server

	mu       sync.Mutex
	files    map[string][]byte // served path → bytes
	requests []string          // paths requested, in order
}

func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	r := &testRepo{t: t, keys: map[string]ed25519.PrivateKey{}, files: map[string][]byte{}}
	in := func(d time.Duration) time.Time { return time.Now().UTC().Add(d).Truncate(time.Second) }
	r.root = metadata.Root(in(365 * 24 * time.Hour))
	r.targets = metadata.Targets(in(30 * 24 * time.Hour))
	r.snapshot = metadata.Snapshot(in(7 * 24 * time.Hour))
	r.timestamp = metadata.Timestamp(in(24 * time.Hour))
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		r.keys[role] = newKey(t)
		r.addKey(role, r.keys[role])
	}
	r.rootKeys = []ed25519.PrivateKey{r.keys[metadata.ROOT]}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.publishRoot()
	r.publish()
	return r
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (r *testRepo) addKey(role string, k ed25519.PrivateKey) {
	r.t.Helper()
	key, err := metadata.KeyFromPublicKey(k.Public())
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.root.Signed.AddKey(key, role); err != nil {
		r.t.Fatal(err)
	}
}

func (r *testRepo) metadataURL() string { return r.srv.URL + "/metadata" }
func (r *testRepo) targetsURL() string  { return r.srv.URL + "/targets" }

func (r *testRepo) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests = append(r.requests, req.URL.Path)
	data, ok := r.files[req.URL.Path]
	r.mu.Unlock()
	if !ok {
		http.NotFound(w, req)
		return
	}
	w.Write(data)
}

// set serves data at p (for tampering).
func (r *testRepo) set(p string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files[p] = data
}

func (r *testRepo) get(p string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files[p]
}

// requested counts the requests for p.
func (r *testRepo) requested(p string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, q := range r.requests {
		if q == p {
			n++
		}
	}
	return n
}

func (r *testRepo) resetRequests() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = nil
}

func sign[T metadata.Roles](t *testing.T, md *metadata.Metadata[T], keys ...ed25519.PrivateKey) []byte {
	t.Helper()
	md.ClearSignatures()
	for _, k := range keys {
		s, err := signature.LoadSigner(k, crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := md.Sign(s); err != nil {
			t.Fatal(err)
		}
	}
	data, err := md.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// rootBytes is the current root version, signed.
func (r *testRepo) rootBytes() []byte {
	return r.get(fmt.Sprintf("/metadata/%d.root.json", r.root.Signed.Version))
}

// publishRoot signs the current root with rootKeys and serves it.
func (r *testRepo) publishRoot() {
	data := sign(r.t, r.root, r.rootKeys...)
	r.set(fmt.Sprintf("/metadata/%d.root.json", r.root.Signed.Version), data)
}

// publish signs targets, snapshot and timestamp as they stand and serves
// them (consistent snapshots: versioned snapshot and targets).
func (r *testRepo) publish() {
	t := r.t
	r.set(fmt.Sprintf("/metadata/%d.targets.json", r.targets.Signed.Version), sign(t, r.targets, r.keys[metadata.TARGETS]))
	r.snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(r.targets.Signed.Version)
	r.set(fmt.Sprintf("/metadata/%d.snapshot.json", r.snapshot.Signed.Version), sign(t, r.snapshot, r.keys[metadata.SNAPSHOT]))
	r.timestamp.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.snapshot.Signed.Version)
	r.set("/metadata/timestamp.json", sign(t, r.timestamp, r.keys[metadata.TIMESTAMP]))
}

// addTarget lists data as target p and serves it hash-prefixed; it bumps
// targets, snapshot and timestamp and publishes them.
func (r *testRepo) addTarget(p string, data []byte) {
	r.t.Helper()
	tf, err := metadata.TargetFile().FromBytes(p, data, "sha256")
	if err != nil {
		r.t.Fatal(err)
	}
	r.targets.Signed.Targets[p] = tf
	r.set(r.targetPath(p, data), data)
	r.bumpAll()
}

// targetPath is where the consistent-snapshot target of data is served.
func (r *testRepo) targetPath(p string, data []byte) string {
	sum := sha256.Sum256(data)
	dir, base := path.Split(p)
	return "/targets/" + strings.TrimPrefix(dir, "/") + hex.EncodeToString(sum[:]) + "." + base
}

func (r *testRepo) bumpAll() {
	r.targets.Signed.Version++
	r.snapshot.Signed.Version++
	r.timestamp.Signed.Version++
	r.publish()
}

func (r *testRepo) bumpTimestamp() {
	r.timestamp.Signed.Version++
	r.publish()
}
