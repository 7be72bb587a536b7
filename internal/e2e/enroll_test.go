package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/mitm"
)

// TestEnrollKeySwapByProxyRealProcesses performs attack 2 with nothing in
// process but the proxy: a "ztota server --insecure-http" process, a
// "ztota agent" process whose server_url is a man in the middle that
// replaces public_key in every POST /v1/enroll. The server refuses each
// try (the proof binds the key), registers nothing, and the agent keeps
// retrying; once the proxy stops rewriting, the same agent process
// enrolls with its own key.
func TestEnrollKeySwapByProxyRealProcesses(t *testing.T) {
	s := startStack(t, true)
	evilPub, _, _ := ed25519.GenerateKey(rand.Reader)
	p := mitm.Start(t, s.url)
	var swapping atomic.Bool
	var swapped atomic.Int32
	swapping.Store(true)
	p.OnRequest(func(r *http.Request, body []byte) ([]byte, *mitm.Answer) {
		if r.URL.Path != "/v1/enroll" || !swapping.Load() {
			return nil, nil
		}
		var m map[string]any
		if json.Unmarshal(body, &m) != nil {
			return nil, nil
		}
		m["public_key"] = []byte(evilPub)
		nb, _ := json.Marshal(m)
		swapped.Add(1)
		return nb, nil
	})
	cfg := s.agentConfig(t, "dev-1", p.URL)
	ag := s.startAgent(t, cfg)
	ag.waitLine(regexp.MustCompile(`enrollment failed; retrying.*401.*proof does not verify`), 30*time.Second)
	if rows := devicesList(t, s.api); len(rows) != 0 {
		t.Fatalf("devices after the swapped enrollment: %+v", rows)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "enrolled")); err == nil {
		t.Fatal("the agent counts itself enrolled after the refusal")
	}

	swapping.Store(false)
	ag.waitLine(regexp.MustCompile(`msg=enrolled`), 30*time.Second)
	if swapped.Load() == 0 {
		t.Fatal("the proxy swapped nothing")
	}
	dk, err := keys.Load(filepath.Join(cfg.DataDir, "device.key"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	devs, err := s.admin(t).Devices(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 || devs[0].ID != "dev-1" || !bytes.Equal(devs[0].PublicKey, dk.Public().(ed25519.PublicKey)) {
		t.Fatalf("server devices %+v, want dev-1 with the agent's own key", devs)
	}
	ag.stop(10 * time.Second)
}
