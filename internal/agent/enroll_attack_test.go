package agent_test

// Attacks on enrollment by a party on the path between a real agent and a
// real server (internal/mitm), and the field failure of a lost answer.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/enroll"
	"github.com/ztota/ztota/internal/mitm"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tlsutil"
)

// newAgent makes an agent (not started) and closes it when the test ends.
func newAgent(t *testing.T, b *testbed.Bed, cfg *agent.Config) *agent.Agent {
	t.Helper()
	a, err := agent.New(testbed.Ctx(t), cfg, b.Log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func enrolledMarker(cfg *agent.Config) bool {
	_, err := os.Stat(filepath.Join(cfg.DataDir, "enrolled"))
	return err == nil
}

// TestEnrollKeySwapByProxyIsRefused performs attack 2 over plain HTTP
// (insecure_http): a proxy replaces public_key in the device's
// POST /v1/enroll with a key of its own. The proof binds the key, so the
// server refuses (401); the attacker's key is registered nowhere; the
// token is not used up, and the real device enrolls once the proxy stops.
func TestEnrollKeySwapByProxyIsRefused(t *testing.T) {
	b := testbed.New(t, testbed.Options{})
	ctx := testbed.Ctx(t)
	evilPub, _, _ := ed25519.GenerateKey(rand.Reader)
	p := mitm.Start(t, b.URL)
	var swapped atomic.Int32
	p.OnRequest(func(r *http.Request, body []byte) ([]byte, *mitm.Answer) {
		if r.URL.Path != "/v1/enroll" {
			return nil, nil
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("proxy: enroll body: %v", err)
			return nil, nil
		}
		if _, ok := m["token"]; ok {
			t.Errorf("the agent sent its one-time token: %s", body)
		}
		m["public_key"] = []byte(evilPub)
		nb, _ := json.Marshal(m)
		swapped.Add(1)
		return nb, nil
	})
	cfg := b.AgentConfig("dev-1", "hw1")
	direct := cfg.ServerURL
	cfg.ServerURL = p.URL
	a := newAgent(t, b, cfg)
	err := a.Enroll(ctx)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "proof does not verify") {
		t.Fatalf("enrollment through the key-swapping proxy: %v, want the server's 401 (proof does not verify)", err)
	}
	if swapped.Load() != 1 {
		t.Fatalf("the proxy swapped %d requests, want 1", swapped.Load())
	}
	if enrolledMarker(cfg) {
		t.Fatal("the agent wrote its enrolled marker after a refused enrollment")
	}
	devs, err := b.Server.Store().Devices(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if bytes.Equal(d.PublicKey, evilPub) {
			t.Fatalf("the attacker's key is registered as device %s", d.ID)
		}
	}
	if len(devs) != 0 {
		t.Fatalf("devices after the refused enrollment: %+v", devs)
	}

	// The proxy is gone: the same device, same key, same token enrolls.
	a.Close()
	cfg.ServerURL = direct
	a2 := newAgent(t, b, cfg)
	if err := a2.Enroll(ctx); err != nil {
		t.Fatalf("the real device could not enroll after the attack: %v", err)
	}
	pk, err := b.Server.Store().DevicePublicKey(ctx, "dev-1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pk, a2.PublicKey()) {
		t.Fatal("the server holds another key than the device's")
	}
}

// TestForgedEnrollAnswerIsRefusedByTheAgent performs the other half of
// attack 2: the proxy never forwards the enrollment and answers 201
// itself. Without the token it cannot make the answer's proof, so the
// agent does not count itself enrolled.
func TestForgedEnrollAnswerIsRefusedByTheAgent(t *testing.T) {
	b := testbed.New(t, testbed.Options{})
	p := mitm.Start(t, b.URL)
	p.OnRequest(func(r *http.Request, body []byte) ([]byte, *mitm.Answer) {
		if r.URL.Path != "/v1/enroll" {
			return nil, nil
		}
		var req enroll.Request
		json.Unmarshal(body, &req)
		forged, _ := json.Marshal(enroll.Response{DeviceID: req.DeviceID, Group: "fleet", ServerNonce: enroll.NewNonce(), Proof: bytes.Repeat([]byte{7}, 32)})
		return nil, &mitm.Answer{Status: http.StatusCreated, Header: http.Header{"Content-Type": {"application/json"}}, Body: forged}
	})
	cfg := b.AgentConfig("dev-1", "hw1")
	cfg.ServerURL = p.URL
	a := newAgent(t, b, cfg)
	if err := a.Enroll(testbed.Ctx(t)); !errors.Is(err, enroll.ErrBadProof) {
		t.Fatalf("forged 201: %v, want enroll.ErrBadProof", err)
	}
	if enrolledMarker(cfg) {
		t.Fatal("the agent counts itself enrolled on a forged answer")
	}
}

// TestLostEnrollAnswerIsRetriedAndEnrolls performs field failure 3: the
// server enrolls the device but its 201 never arrives (the proxy turns
// it into a 502). The agent asks again with the same token and key and
// gets a 201 with a valid proof; a different key or another device id
// with the used token is refused with 409.
func TestLostEnrollAnswerIsRetriedAndEnrolls(t *testing.T) {
	b := testbed.New(t, testbed.Options{})
	ctx := testbed.Ctx(t)
	p := mitm.Start(t, b.URL)
	var dropped atomic.Int32
	p.OnResponse(func(ex *mitm.Exchange) {
		if ex.Path == "/v1/enroll" && ex.Status == http.StatusCreated && dropped.Add(1) == 1 {
			ex.Status, ex.RespBody = http.StatusBadGateway, []byte("upstream connection reset\n")
		}
	})
	cfg := b.AgentConfig("dev-1", "hw1")
	cfg.ServerURL = p.URL
	a := newAgent(t, b, cfg)
	if err := a.Enroll(ctx); err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("first enrollment: %v, want the 502 the proxy made of the 201", err)
	}
	if _, err := b.Server.Store().Device(ctx, "dev-1"); err != nil {
		t.Fatalf("the server did not enroll the device on the first request: %v", err)
	}
	if enrolledMarker(cfg) {
		t.Fatal("enrolled marker written without an answer")
	}
	if err := a.Enroll(ctx); err != nil {
		t.Fatalf("retry after the lost answer: %v", err)
	}
	if !enrolledMarker(cfg) {
		t.Fatal("no enrolled marker after the repeated 201")
	}
	pk, err := b.Server.Store().DevicePublicKey(ctx, "dev-1")
	if err != nil || !bytes.Equal(pk, a.PublicKey()) {
		t.Fatalf("server key %x (%v), want the device's", pk, err)
	}

	// The used token does not enroll another key or another device.
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for name, req := range map[string]enroll.Request{
		"same id, other key":  enroll.NewRequest(cfg.EnrollToken, "dev-1", "hw1", otherPub),
		"other id, same key":  enroll.NewRequest(cfg.EnrollToken, "dev-2", "hw1", a.PublicKey()),
		"same id, other hw":   enroll.NewRequest(cfg.EnrollToken, "dev-1", "hw2", a.PublicKey()),
		"other id, other key": enroll.NewRequest(cfg.EnrollToken, "dev-3", "hw1", otherPub),
	} {
		body, _ := json.Marshal(req)
		resp, err := http.Post(b.URL+"/v1/enroll", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("%s with a used token: %d, want 409", name, resp.StatusCode)
		}
	}
	pk, _ = b.Server.Store().DevicePublicKey(ctx, "dev-1")
	if !bytes.Equal(pk, a.PublicKey()) {
		t.Fatal("a refused enrollment changed the device's key")
	}
	if _, err := b.Server.Store().Device(ctx, "dev-2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("dev-2: %v, want not found", err)
	}
}

// TestAgentRefusesServerCertificateFromAnotherCA performs attack 2 over
// TLS: an attacker's TLS proxy with a certificate for 127.0.0.1 from a CA
// of its own stands in front of the real server. The agent pins the key
// set's CA (server_ca) and refuses the handshake; nothing reaches the
// proxy's handler. Straight to the server, the same agent enrolls.
func TestAgentRefusesServerCertificateFromAnotherCA(t *testing.T) {
	b := testbed.New(t, testbed.Options{TLS: true})
	ctx := testbed.Ctx(t)
	if !strings.HasPrefix(b.URL, "https://") {
		t.Fatalf("TLS bed serves %s", b.URL)
	}
	// The attacker's CA and certificate, and a forwarding proxy.
	caPEM, caKey, err := tlsutil.NewCA("attacker", testNow())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := tlsutil.IssueServer(caPEM, caKey, nil, testNow())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "c.pem"), certPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "k.pem"), keyPEM, 0o600)
	tc, err := tlsutil.ServerConfig(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	up, _ := url.Parse(b.URL)
	rp := httputil.NewSingleHostReverseProxy(up)
	if rp.Transport, err = tlsutil.Transport(b.CA); err != nil {
		t.Fatal(err)
	}
	var seen atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ps := &http.Server{ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen.Add(1); rp.ServeHTTP(w, r) }), TLSConfig: tc}
	go ps.ServeTLS(ln, "", "")
	t.Cleanup(func() { ps.Close() })

	cfg := b.AgentConfig("dev-1", "hw1")
	direct := cfg.ServerURL
	cfg.ServerURL = "https://" + ln.Addr().String()
	a := newAgent(t, b, cfg)
	err = a.Enroll(ctx)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("enrollment through the attacker's TLS proxy: %v, want x509.UnknownAuthorityError", err)
	}
	if seen.Load() != 0 {
		t.Fatalf("%d requests reached the attacker's proxy", seen.Load())
	}
	// The proxy itself works for a client that trusts its CA: the refusal
	// is the pin's doing, not a broken proxy.
	atc, _ := tlsutil.ClientConfig("")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	atc.RootCAs = pool
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: atc}}).Get(cfg.ServerURL + "/healthz")
	if err != nil {
		t.Fatalf("the attacker's proxy does not forward: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || seen.Load() != 1 {
		t.Fatalf("proxy control request: %d, seen %d", resp.StatusCode, seen.Load())
	}

	a.Close()
	cfg.ServerURL = direct
	if err := newAgent(t, b, cfg).Enroll(ctx); err != nil {
		t.Fatalf("enrollment over TLS with the pinned CA: %v", err)
	}
}

func testNow() time.Time { return time.Now() }
