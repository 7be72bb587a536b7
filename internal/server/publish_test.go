package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/tufrepo"
)

// raw sends a hand-written HTTP/1.1 request, half-closes the connection
// and reads the answer: for requests net/http will not send (a body
// shorter than its Content-Length).
func (e *env) raw(t *testing.T, req string) answer {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return answer{resp.StatusCode, body}
}

func TestArtifactUploadRefusesWrongHashLengthAndSize(t *testing.T) {
	e := newEnv(t, nil)
	st := e.Server.Store()
	data := bytes.Repeat([]byte("artifact "), 1000)
	sha := sha256Hex(data)
	other := sha256Hex([]byte("something else"))
	put := func(path string, hdr string, body []byte) answer {
		return e.raw(t, "PUT "+path+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+e.token+"\r\nConnection: close\r\n"+hdr+"\r\n"+string(body))
	}
	cl := func(n int) string { return fmt.Sprintf("Content-Length: %d\r\n", n) }
	cases := []struct {
		name string
		a    func() answer
		code int
	}{
		{"bytes that hash to another sha256", func() answer { return e.api(t, "PUT", "/v1/artifacts/"+other, data) }, 400},
		{"sha256 not hex", func() answer { return e.api(t, "PUT", "/v1/artifacts/"+strings.Repeat("z", 64), data) }, 400},
		{"sha256 too short", func() answer { return e.api(t, "PUT", "/v1/artifacts/"+sha[:63], data) }, 400},
		{"sha256 with traversal", func() answer { return e.api(t, "PUT", "/v1/artifacts/..%2f..%2fztota.db", data) }, 400},
		{"body shorter than Content-Length", func() answer { return put("/v1/artifacts/"+sha, cl(len(data)), data[:len(data)/2]) }, 400},
		{"Content-Length shorter than the body", func() answer { return put("/v1/artifacts/"+sha, cl(len(data)-1), data) }, 400},
		{"no Content-Length (chunked)", func() answer {
			return put("/v1/artifacts/"+sha, "Transfer-Encoding: chunked\r\n", []byte(fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(data), data)))
		}, 411},
		{"declared above MaxArtifactSize", func() answer { return put("/v1/artifacts/"+sha, cl(testMaxArtifact+1), nil) }, 413},
		{"declared far above MaxArtifactSize", func() answer { return put("/v1/artifacts/"+sha, cl(1<<40), nil) }, 413},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			unchanged(t, st, func() { wantRefused(t, c.name, c.a(), c.code) })
		})
	}
	ents, _ := os.ReadDir(filepath.Join(st.Dir(), "artifacts", "sha256"))
	if len(ents) != 0 {
		t.Errorf("refused uploads left %d files (temporary or final) behind", len(ents))
	}
	if a := e.api(t, "PUT", "/v1/artifacts/"+sha, data); a.code != http.StatusCreated {
		t.Fatalf("a correct upload: %s", a)
	}
	if got, err := os.ReadFile(st.ArtifactPath(sha)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored artifact differs from the upload (err %v)", err)
	}
}

func TestImageTargetsRefusedUnlessSignedCurrentAndComplete(t *testing.T) {
	e := newEnv(t, nil)
	st := e.Server.Store()
	key := e.targetsKey(t)
	stranger, err := keys.Generate("")
	if err != nil {
		t.Fatal(err)
	}
	path, tf := e.uploaded(t, "1.0", 4096, "hw1")
	with := func(mut func(*md)) func(*md) {
		return func(m *md) {
			cp := *tf
			m.Signed.Targets[path] = &cp
			if mut != nil {
				mut(m)
			}
		}
	}
	custom := func(c string) []byte {
		return e.nextTargets(t, key, with(func(m *md) {
			raw := json.RawMessage(c)
			m.Signed.Targets[path].Custom = &raw
		}))
	}
	meta := func(name, version, hw, typ string) string {
		return fmt.Sprintf(`{"ztota":{"name":%q,"version":%q,"release_counter":1,"hardware_ids":[%s],"module":"app","artifact_type":%q}}`, name, version, hw, typ)
	}
	good := e.nextTargets(t, key, with(nil))
	cases := []struct {
		name string
		body []byte
		code int
	}{
		{"signed by another key", e.nextTargets(t, stranger, with(nil)), 400},
		{"signatures removed", bytes.Replace(good, []byte(`"signatures":[{`), []byte(`"signatures":[],"x":[{`), 1), 400},
		{"version skips one", e.nextTargets(t, key, with(func(m *md) { m.Signed.Version++ })), 409},
		{"version replays the current", e.nextTargets(t, key, with(func(m *md) { m.Signed.Version-- })), 409},
		{"expired", e.nextTargets(t, key, with(func(m *md) { m.Signed.Expires = e.clk.Now().Add(-time.Minute) })), 400},
		{"artifact never uploaded", e.nextTargets(t, key, with(func(m *md) {
			m.Signed.Targets[path].Hashes = metadata.Hashes{"sha256": bytes.Repeat([]byte{7}, 32)}
		})), 400},
		{"length differs from the upload", e.nextTargets(t, key, with(func(m *md) { m.Signed.Targets[path].Length++ })), 400},
		{"no sha256", e.nextTargets(t, key, with(func(m *md) { m.Signed.Targets[path].Hashes = metadata.Hashes{} })), 400},
		{"no custom metadata", e.nextTargets(t, key, with(func(m *md) { m.Signed.Targets[path].Custom = nil })), 400},
		{"custom without ztota", custom(`{"other":{}}`), 400},
		{"custom with an unknown field", custom(`{"ztota":{"name":"app","version":"1.0","release_counter":1,"hardware_ids":["hw1"],"module":"app","artifact_type":"bundle","x":1}}`), 400},
		{"custom with no hardware ids", custom(meta("app", "1.0", ``, "bundle")), 400},
		{"custom with a traversal hardware id", custom(meta("app", "1.0", `"../hw"`, "bundle")), 400},
		{"custom with a traversal name", custom(meta("../app", "1.0", `"hw1"`, "bundle")), 400},
		{"custom with an unknown artifact type", custom(meta("app", "1.0", `"hw1"`, "exe")), 400},
		{"custom naming another release than the path", custom(meta("other", "9.9", `"hw1"`, "bundle")), 400},
		{"path outside name/version", e.nextTargets(t, key, with(func(m *md) {
			m.Signed.Targets["app/1.0/../../x"] = m.Signed.Targets[path]
			delete(m.Signed.Targets, path)
		})), 400},
		{"duplicate key", bytes.Replace(good, []byte(`"signed":{`), []byte(`"signed":{"version":99,`), 1), 400},
		{"invalid UTF-8", bytes.Replace(good, []byte(`"_type"`), []byte("\"_type\xff\""), 1), 400},
		{"trailing garbage", append(append([]byte{}, good...), "{}"...), 400},
		{"huge", append(bytes.Repeat([]byte(" "), tufrepo.MaxMetadataSize), good...), 413},
		{"truncated", good[:len(good)/2], 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			unchanged(t, st, func() { wantRefused(t, c.name, e.api(t, "POST", "/v1/image/targets", c.body), c.code) })
		})
	}
	if a := e.api(t, "POST", "/v1/image/targets", good); a.code != http.StatusCreated {
		t.Fatalf("the correct targets were refused: %s", a)
	}
	if _, err := st.Release(ctxT(t), "app@1.0"); err != nil {
		t.Fatalf("the accepted release is not recorded: %v", err)
	}
}

func TestRootRotationNeedsTheOldRootThreshold(t *testing.T) {
	e := newEnv(t, nil)
	st := e.Server.Store()
	load := func(dir, f string) *keys.Key {
		k, err := keys.Load(filepath.Join(e.KeysDir, dir, f))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	oldRoot := load(keyset.OfflineDir, keyset.RootKeyFile("image", 1))
	newRoot, err := keys.Generate("")
	if err != nil {
		t.Fatal(err)
	}
	rootV := func(version int64) *metadata.Metadata[metadata.RootType] {
		r, err := tufrepo.NewRoot(version, map[string]tufrepo.RoleSpec{
			tufrepo.Root:      {Keys: []*keys.Key{newRoot}, Threshold: 1},
			tufrepo.Targets:   {Keys: []*keys.Key{load(keyset.OfflineDir, keyset.ImageTargetsKey)}, Threshold: 1},
			tufrepo.Snapshot:  {Keys: []*keys.Key{load(keyset.OnlineDir, keyset.ImageSnapshotKey)}, Threshold: 1},
			tufrepo.Timestamp: {Keys: []*keys.Key{load(keyset.OnlineDir, keyset.ImageTimestampKey)}, Threshold: 1},
		}, e.clk.Now().Add(365*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	sign := func(r *metadata.Metadata[metadata.RootType], ks ...*keys.Key) []byte {
		b, err := tufrepo.Sign(r, ks...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := sign(rootV(2), oldRoot, newRoot)
	cases := []struct {
		name, repo string
		body       []byte
		code       int
	}{
		{"signed by the new key only", "image", sign(rootV(2), newRoot), 400},
		{"signed by the old key only", "image", sign(rootV(2), oldRoot), 400},
		{"unsigned", "image", sign(rootV(2)), 400},
		{"version skips one", "image", sign(rootV(3), oldRoot, newRoot), 400},
		{"same version", "image", sign(rootV(1), oldRoot, newRoot), 400},
		{"image root sent as the director's", "director", good, 400},
		{"unknown repository", "other", good, 404},
		{"duplicate key", "image", bytes.Replace(good, []byte(`"signed":{`), []byte(`"signed":{"version":2,`), 1), 400},
		{"trailing garbage", "image", append(append([]byte{}, good...), 'x'), 400},
		{"huge", "image", append(bytes.Repeat([]byte(" "), tufrepo.MaxMetadataSize), good...), 413},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			unchanged(t, st, func() { wantRefused(t, c.name, e.api(t, "POST", "/v1/roots/"+c.repo, c.body), c.code) })
		})
	}
	if a := e.api(t, "POST", "/v1/roots/image", good); a.code != http.StatusCreated {
		t.Fatalf("a rotation signed by old and new root keys was refused: %s", a)
	}
	if a := e.request(t, nil, "GET", "/image/2.root.json", "", nil); a.code != 200 || !bytes.Equal(a.body, good) {
		t.Fatalf("the rotated root is not served: %d", a.code)
	}
}
