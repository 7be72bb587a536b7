package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/apiclient"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/tlsutil"
)

// stack is what most real-process tests start from: a keys directory made
// by "ztota keys init" and a "ztota server" process on its online keys.
type stack struct {
	dir      string // the test's temporary directory
	keys     string // the keys directory
	online   string // its online part: the server's --keys
	data     string // the server's data directory
	insecure bool   // plain HTTP (--insecure-http) instead of HTTPS
	ca       string // the CA pinned for the server's certificate ("" over plain HTTP)
	srv      *proc
	addr     string   // host:port the server listens on
	url      string   // http://addr or https://addr
	api      []string // the flags ztota commands need to reach the admin API
}

// startStack runs "ztota keys init" and a server on its online keys: over
// HTTPS with the certificate keys init made, or over plain HTTP when
// insecure (for a man-in-the-middle proxy in front of it).
func startStack(t *testing.T, insecure bool) *stack {
	t.Helper()
	needBinary(t)
	s := &stack{dir: t.TempDir(), insecure: insecure}
	s.keys = filepath.Join(s.dir, "keys")
	ztota(t, "keys", "init", "--out", s.keys)
	s.online = filepath.Join(s.keys, keyset.OnlineDir)
	s.data = filepath.Join(s.dir, "server")
	if !insecure {
		s.ca, _, _ = keyset.TLSFiles(s.online)
	}
	s.startServer(t, "server", "127.0.0.1:0")
	return s
}

// startServer starts (or, after s.srv.stop, restarts) the server process
// on listen and waits until it serves.
func (s *stack) startServer(t *testing.T, name, listen string) {
	t.Helper()
	args := []string{"server", "--data", s.data, "--keys", s.online, "--listen", listen}
	scheme := "https"
	if s.insecure {
		args, scheme = append(args, "--insecure-http"), "http"
	}
	s.srv = startProc(t, name, baseEnv(), args...)
	s.addr = s.srv.waitLine(regexp.MustCompile(`msg=serving addr=(\S+) scheme=`+scheme+` `), 30*time.Second)[1]
	s.url = scheme + "://" + s.addr
	s.api = []string{"--server", s.url, "--token-file", filepath.Join(s.data, "admin.token")}
	if s.insecure {
		s.api = append(s.api, "--insecure-http")
	} else {
		s.api = append(s.api, "--ca", s.ca)
	}
}

// admin is an admin API client with the server's first admin token.
func (s *stack) admin(t *testing.T) *apiclient.Client {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(s.data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	c := apiclient.New(s.url, strings.TrimSpace(string(tok)))
	if s.ca != "" {
		tr, err := tlsutil.Transport(s.ca)
		if err != nil {
			t.Fatal(err)
		}
		c.HTTP.Transport = tr
	}
	return c
}

// agentConfig is the configuration of a new device of board-a with a new
// enrollment token (group fleet) that reaches the server at serverURL (the
// server itself or a proxy in front of it) and runs a script module with a
// health check.
func (s *stack) agentConfig(t *testing.T, id, serverURL string) *agent.Config {
	t.Helper()
	tok := strings.TrimSpace(ztota(t, append([]string{"token", "enroll", "--group", "fleet"}, s.api...)...))
	if tok == "" {
		t.Fatal("ztota token enroll printed no token")
	}
	return &agent.Config{
		DeviceID: id, HardwareID: "board-a", ServerURL: serverURL, ServerCA: s.ca, InsecureHTTP: s.insecure,
		DataDir:      filepath.Join(s.dir, id),
		ImageRoot:    filepath.Join(s.online, keyset.ImageRootFile),
		DirectorRoot: filepath.Join(s.online, keyset.DirectorRootFile),
		EnrollToken:  tok,
		Module: agent.Module{Name: "app", Command: []string{"bin/app"},
			Health: agent.Health{StayUp: agent.Duration(300 * time.Millisecond), Command: []string{"bin/app", "health"}}},
		PollInterval: agent.Duration(200 * time.Millisecond),
	}
}

// startAgent starts a "ztota agent" process with cfg.
func (s *stack) startAgent(t *testing.T, cfg *agent.Config) *proc {
	t.Helper()
	return startProc(t, cfg.DeviceID, baseEnv(), "agent", "--config", writeConfig(t, s.dir, cfg))
}
