// Package testbed starts a real ztota server on loopback with fresh keys
// and makes device agents, releases and deployments for tests. Every
// request crosses real HTTP; a test may put a handler in front of the
// server (Options.Front) to play a lying mirror or a man in the middle.
package testbed

import (
	"archive/tar"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/apiclient"
	"github.com/ztota/ztota/internal/httpbound"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/tlsutil"
	"github.com/ztota/ztota/internal/tufrepo"
)

// Options shape a bed.
type Options struct {
	// Front wraps the server's handler (nil: the server as is).
	Front func(next http.Handler) http.Handler
	// Server adjusts the server's configuration before it starts.
	Server func(*server.Config)
	// Verbose logs server and agents to the test log.
	Verbose bool
	// Keys shapes the key set (e.g. several root keys with a threshold).
	Keys keyset.Options
	// TLS serves HTTPS with the key set's server certificate; agents and
	// the admin client pin the key set's CA. Without it the bed serves
	// plain HTTP and agents run with insecure_http.
	TLS bool
}

// Bed is a running server with its keys.
type Bed struct {
	T       testing.TB
	Dir     string
	KeysDir string
	URL     string
	Server  *server.Server
	Admin   *apiclient.Client
	Log     *slog.Logger
	// CA is the pinned CA file of a TLS bed ("" for plain HTTP).
	CA string
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// New starts a bed; it is torn down when the test ends.
func New(t testing.TB, o Options) *Bed {
	t.Helper()
	dir := t.TempDir()
	b := &Bed{T: t, Dir: dir, KeysDir: filepath.Join(dir, "keys")}
	if o.Verbose {
		b.Log = slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		b.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := keyset.Init(b.KeysDir, o.Keys); err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{DataDir: filepath.Join(dir, "server"), KeysDir: filepath.Join(b.KeysDir, keyset.OnlineDir), Logger: b.Log}
	if o.Server != nil {
		o.Server(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.Server = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	if o.Front != nil {
		h = o.Front(h)
	}
	var tc *tls.Config
	scheme := "http://"
	if o.TLS {
		var cert, key string
		b.CA, cert, key = keyset.TLSFiles(filepath.Join(b.KeysDir, keyset.OnlineDir))
		if tc, err = tlsutil.ServerConfig(cert, key); err != nil {
			t.Fatal(err)
		}
		scheme = "https://"
	}
	hs := httpbound.Server(h, cfg.Timeouts.Timeouts, tc)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if tc != nil {
			hs.ServeTLS(ln, "", "")
		} else {
			hs.Serve(ln)
		}
	}()
	// The server's own loop re-signs expiring metadata; run it here too.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				srv.ResignExpiring(ctx)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		hs.Close()
		wg.Wait()
		srv.Close()
	})
	b.URL = scheme + ln.Addr().String()
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, server.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	b.Admin = apiclient.New(b.URL, strings.TrimSpace(string(tok)))
	if b.CA != "" {
		tr, err := tlsutil.Transport(b.CA)
		if err != nil {
			t.Fatal(err)
		}
		b.Admin.HTTP.Transport = tr
	}
	return b
}

// Ctx returns a context bounded for a test step.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// AgentConfig returns a configuration for a new device with a fresh
// enrollment token and a shell-script module (see ScriptBundle).
func (b *Bed) AgentConfig(id, hw string) *agent.Config {
	b.T.Helper()
	tok, err := b.Admin.EnrollToken(Ctx(b.T), "fleet", time.Hour)
	if err != nil {
		b.T.Fatal(err)
	}
	data := filepath.Join(b.Dir, "devices", id)
	cfg := &agent.Config{
		DeviceID: id, HardwareID: hw, ServerURL: b.URL, DataDir: data, ServerCA: b.CA, InsecureHTTP: b.CA == "",
		ImageRoot:    filepath.Join(b.KeysDir, keyset.OnlineDir, keyset.ImageRootFile),
		DirectorRoot: filepath.Join(b.KeysDir, keyset.OnlineDir, keyset.DirectorRootFile),
		EnrollToken:  tok,
		Module: agent.Module{Name: "app", Command: []string{"bin/app"},
			Health: agent.Health{StayUp: agent.Duration(300 * time.Millisecond), Command: []string{"bin/app", "health"}}},
		PollInterval: agent.Duration(200 * time.Millisecond),
		MinRate:      1024,
		RateWindow:   agent.Duration(500 * time.Millisecond),
	}
	if err := cfg.Validate(); err != nil {
		b.T.Fatal(err)
	}
	return cfg
}

// Agent makes, enrolls and starts an agent; it is stopped when the test ends.
func (b *Bed) Agent(cfg *agent.Config) *agent.Agent {
	b.T.Helper()
	a, err := agent.New(Ctx(b.T), cfg, b.Log.With("agent", cfg.DeviceID))
	if err != nil {
		b.T.Fatal(err)
	}
	if err := a.Start(Ctx(b.T)); err != nil {
		b.T.Fatal(err)
	}
	b.T.Cleanup(func() { a.Close() })
	return a
}

// ScriptBundle writes a bundle whose module is a shell script that stays
// up until signalled; its "health" answer is exit 0 when healthy. Extra
// bytes of padding make the artifact larger.
func (b *Bed) ScriptBundle(version string, healthy bool, padding int) string {
	b.T.Helper()
	code := "0"
	if !healthy {
		code = "1"
	}
	script := "#!/bin/sh\nif [ \"$1\" = health ]; then exit " + code + "; fi\ntrap 'exit 0' TERM INT\nwhile :; do sleep 0.05; done\n"
	path := filepath.Join(b.Dir, "bundles", "app-"+version+".tar")
	os.MkdirAll(filepath.Dir(path), 0o755)
	f, err := os.Create(path)
	if err != nil {
		b.T.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	files := []struct {
		name string
		mode int64
		data []byte
	}{{"bin/app", 0o755, []byte(script)}, {"VERSION", 0o644, []byte(version)}, {"padding", 0o644, make([]byte, padding)}}
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	for _, e := range files {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: e.mode, Size: int64(len(e.data))}); err != nil {
			b.T.Fatal(err)
		}
		tw.Write(e.data)
	}
	if err := tw.Close(); err != nil {
		b.T.Fatal(err)
	}
	return path
}

// Release signs and uploads an artifact for the hardware ids.
func (b *Bed) Release(artifact, version string, counter uint64, hw ...string) release.Result {
	b.T.Helper()
	r, err := release.Publish(Ctx(b.T), b.Admin, release.Options{Artifact: artifact, KeysDir: b.KeysDir,
		Meta: tufrepo.ImageMeta{Name: "app", Version: version, ReleaseCounter: counter, HardwareIDs: hw, Module: "app"}})
	if err != nil {
		b.T.Fatal(err)
	}
	return r
}

// Deploy deploys a release to devices in one wave.
func (b *Bed) Deploy(target string, devices ...string) server.DeploymentView {
	b.T.Helper()
	v, err := b.Admin.Deploy(Ctx(b.T), server.DeployRequest{Release: target, Devices: devices, FailureThreshold: 1})
	if err != nil {
		b.T.Fatal(err)
	}
	return v
}

// History returns a device's reports as the server stored them.
func (b *Bed) History(device string) []store.Report {
	b.T.Helper()
	h, err := b.Server.Store().History(Ctx(b.T), device, 0)
	if err != nil {
		b.T.Fatal(err)
	}
	return h
}

// States lists the states of a device's reports in order.
func (b *Bed) States(device string) []string {
	var out []string
	for _, r := range b.History(device) {
		out = append(out, r.State)
	}
	return out
}

// Installed returns the sha256 of the release in the agent's committed
// slot ("" for none); a slot still pending fails the test.
func Installed(t testing.TB, a *agent.Agent) string {
	t.Helper()
	st, err := a.SlotState(Ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != "" {
		t.Fatalf("a slot is still pending: %+v", st)
	}
	if st.Active == "" {
		return ""
	}
	return st.Slots[st.Active].SHA256
}

// CycleInstalls runs an update cycle of the agent that must succeed and
// leave the release with digest sha256 committed; when names the
// situation in failure messages.
func CycleInstalls(t testing.TB, a *agent.Agent, sha256, when string) {
	t.Helper()
	if err := a.Cycle(Ctx(t)); err != nil {
		t.Fatalf("%s: the update cycle failed: %v", when, err)
	}
	if got := Installed(t, a); got != sha256 {
		t.Fatalf("%s: the device runs %q, want %s", when, got, sha256)
	}
}

// WaitFor polls cond every 50ms until it holds or d passes.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
