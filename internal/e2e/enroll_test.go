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
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/apiclient"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/keyset"
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
	needBinary(t)
	dir := t.TempDir()
	keysDir := filepath.Join(dir, "keys")
	ztota(t, "keys", "init", "--out", keysDir)
	data := filepath.Join(dir, "server")
	srv := startProc(t, "server", baseEnv(), "server", "--data", data, "--insecure-http",
		"--keys", filepath.Join(keysDir, keyset.OnlineDir), "--listen", "127.0.0.1:0")
	addr := srv.waitLine(regexp.MustCompile(`msg=serving addr=(\S+) scheme=http `), 30*time.Second)[1]
	api := []string{"--server", "http://" + addr, "--insecure-http", "--token-file", filepath.Join(data, "admin.token")}
	tok := strings.TrimSpace(ztota(t, append([]string{"token", "enroll", "--group", "fleet"}, api...)...))

	evilPub, _, _ := ed25519.GenerateKey(rand.Reader)
	p := mitm.Start(t, "http://"+addr)
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
	cfg := agent.Config{
		DeviceID: "dev-1", HardwareID: "board-a", ServerURL: p.URL, InsecureHTTP: true, DataDir: filepath.Join(dir, "dev-1"),
		ImageRoot:    filepath.Join(keysDir, keyset.OnlineDir, keyset.ImageRootFile),
		DirectorRoot: filepath.Join(keysDir, keyset.OnlineDir, keyset.DirectorRootFile),
		EnrollToken:  tok,
		Module:       agent.Module{Name: "app", Command: []string{"bin/app"}},
		PollInterval: agent.Duration(200 * time.Millisecond),
	}
	ag := startProc(t, "agent", baseEnv(), "agent", "--config", writeConfig(t, dir, &cfg))
	ag.waitLine(regexp.MustCompile(`enrollment failed; retrying.*401.*proof does not verify`), 30*time.Second)
	if rows := devicesList(t, api); len(rows) != 0 {
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
	admin, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	devs, err := apiclient.New("http://"+addr, strings.TrimSpace(string(admin))).Devices(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 || devs[0].ID != "dev-1" || !bytes.Equal(devs[0].PublicKey, dk.Public().(ed25519.PublicKey)) {
		t.Fatalf("server devices %+v, want dev-1 with the agent's own key", devs)
	}
	ag.stop(10 * time.Second)
}
