package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/testbed"
)

// TestFullDiskRefusesUploadsEarly: with the server's disk nearly full an
// artifact upload is answered 507 before anything is written, and stored
// artifacts stay intact; once space is back the upload succeeds.
func TestFullDiskRefusesUploadsEarly(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 20)
	b := testbed.New(t, testbed.Options{Server: func(c *server.Config) {
		c.FreeSpace = func(string) (uint64, error) { return free.Load(), nil }
	}})
	data := bytes.Repeat([]byte("z"), 4096)
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	put := func() *http.Response {
		req, _ := http.NewRequest(http.MethodPut, b.URL+"/v1/artifacts/"+sha, bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+b.Admin.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := put()
	resp.Body.Close()
	if resp.StatusCode != http.StatusInsufficientStorage {
		t.Fatalf("upload with a full disk: %s", resp.Status)
	}
	ents, _ := os.ReadDir(filepath.Join(b.Dir, "server", "artifacts", "sha256"))
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") || e.Name() == sha {
			t.Fatalf("artifact store holds %s after a refused upload", e.Name())
		}
	}
	free.Store(1 << 40)
	resp = put()
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload with space: %s", resp.Status)
	}
}
