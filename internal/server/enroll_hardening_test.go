package server_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/devauth"
	"github.com/ztota/ztota/internal/enroll"
	"github.com/ztota/ztota/internal/httpbound"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
)

// identityPoint is the encoding of the ed25519 identity point (01 00..00),
// a small-order public key under which a trivial signature verifies.
func identityPoint() []byte {
	p := make([]byte, ed25519.PublicKeySize)
	p[0] = 1
	return p
}

// TestEnrollRefusesSmallOrderKey performs attack 6 at enrollment: a
// holder of a valid token enrolls the identity point (01 00..00) as its
// key, for which a trivial signature verifies on every request. The
// server refuses it (400), registers nothing, and the token stays good.
func TestEnrollRefusesSmallOrderKey(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	tok := e.enrollToken(t, "fleet")
	identity := identityPoint()
	order2 := []byte{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}
	nonCanonical := append([]byte(nil), identity...)
	nonCanonical[31] = 0x80
	for name, key := range map[string][]byte{"identity": identity, "order 2": order2, "identity with the sign bit": nonCanonical} {
		t.Run(name, func(t *testing.T) {
			body, _ := json.Marshal(enroll.NewRequest(tok, "weak", "hw1", key))
			unchanged(t, e.Server.Store(), func() {
				a := e.api(t, "POST", "/v1/enroll", body)
				wantRefused(t, name, a, http.StatusBadRequest)
				if !strings.Contains(a.errMsg(), "small order") && !strings.Contains(a.errMsg(), "non-canonical") {
					t.Errorf("%s: error %q does not name the weakness", name, a.errMsg())
				}
			})
		})
	}
	if _, err := e.Server.Store().Device(ctx, "weak"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("device with a weak key: %v, want not found", err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	body, _ := json.Marshal(enroll.NewRequest(tok, "weak", "hw1", pub))
	if a := e.api(t, "POST", "/v1/enroll", body); a.code != http.StatusCreated {
		t.Fatalf("the token after the refusals, with a real key: %s", a)
	}
}

// startServer runs a server through Serve (the product's serving path)
// with cfg adjusted by adjust, and returns its address.
func startServer(t *testing.T, adjust func(*server.Config)) (string, chan error) {
	t.Helper()
	dir := t.TempDir()
	if err := keyset.Init(filepath.Join(dir, "keys"), keyset.Options{}); err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{DataDir: filepath.Join(dir, "data"), KeysDir: filepath.Join(dir, "keys", keyset.OnlineDir),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	adjust(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-errc; s.Close() })
	return ln.Addr().String(), errc
}

// TestSlowEnrollBodyIsCutOff performs attack 7: an unauthenticated
// POST /v1/enroll that announces 1000 bytes and sends one byte every 2 s.
// With the body bound at 3 s the server answers and closes the
// connection after the first few bytes; before, the connection stayed
// open as long as the bytes kept coming (45 s and more).
func TestSlowEnrollBodyIsCutOff(t *testing.T) {
	addr, _ := startServer(t, func(c *server.Config) {
		c.InsecureHTTP = true
		c.Timeouts = server.Timeouts{Timeouts: httpbound.Timeouts{Body: 3 * time.Second}}
	})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "POST /v1/enroll HTTP/1.1\r\nHost: ota\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	sent := make(chan int, 1)
	go func() {
		n := 0
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		defer func() { sent <- n }()
		for {
			if _, err := conn.Write([]byte("{")); err != nil {
				return
			}
			n++
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	// The bound of the test: far above the configured 3 s, far below the
	// 45 s the attack held a connection before.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		close(stop)
		t.Fatalf("no answer to the slow body within 30 s (%v): the connection is held open", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// After the answer the server closes the connection.
	var one [1]byte
	_, rerr := conn.Read(one[:])
	elapsed := time.Since(start)
	close(stop)
	n := <-sent
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("slow body answered %d, want 400 (body not read in time)", resp.StatusCode)
	}
	var ne net.Error
	switch {
	case rerr == nil:
		t.Fatal("the server sent more after its answer")
	case errors.As(rerr, &ne) && ne.Timeout():
		t.Fatalf("connection still open %s after the request began", elapsed)
	}
	if n >= 1000 {
		t.Fatalf("the whole body went through (%d bytes)", n)
	}
	t.Logf("slow body cut after %s and %d bytes", elapsed.Round(time.Millisecond), n)
}

// TestServeRefusesPlainHTTPWithoutTheFlag: a server without a certificate
// does not quietly serve plain HTTP; the error says what to pass.
func TestServeRefusesPlainHTTPWithoutTheFlag(t *testing.T) {
	_, errc := startServer(t, func(c *server.Config) {})
	select {
	case err := <-errc:
		if !errors.Is(err, server.ErrNoTLS) || !strings.Contains(err.Error(), "--tls-cert") || !strings.Contains(err.Error(), "--insecure-http") {
			t.Fatalf("Serve without TLS: %v, want ErrNoTLS naming --tls-cert and --insecure-http", err)
		}
		errc <- err // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("Serve without a certificate or --insecure-http kept running")
	}
}

// TestResolveTLSUsesTheKeySetCertificate: with --keys and no --tls-cert,
// the server takes online/tls/ of the key set, keeps a copy under
// DATA/tls/ for later starts without --keys, and serves HTTPS that a
// client pinning the key set's CA accepts.
func TestResolveTLSUsesTheKeySetCertificate(t *testing.T) {
	dir := t.TempDir()
	if err := keyset.Init(filepath.Join(dir, "keys"), keyset.Options{}); err != nil {
		t.Fatal(err)
	}
	online := filepath.Join(dir, "keys", keyset.OnlineDir)
	cfg := server.Config{DataDir: filepath.Join(dir, "data"), KeysDir: online}
	if err := cfg.ResolveTLS(); err != nil {
		t.Fatal(err)
	}
	if cfg.TLSCertFile != filepath.Join(dir, "data", "tls", "server.pem") {
		t.Fatalf("certificate %q, want the copy under DATA/tls", cfg.TLSCertFile)
	}
	later := server.Config{DataDir: filepath.Join(dir, "data")}
	if err := later.ResolveTLS(); err != nil || later.TLSCertFile != cfg.TLSCertFile {
		t.Fatalf("later start without --keys: %v %q", err, later.TLSCertFile)
	}
	none := server.Config{DataDir: filepath.Join(dir, "other")}
	if err := none.ResolveTLS(); !errors.Is(err, server.ErrNoTLS) {
		t.Fatalf("no certificate anywhere: %v, want ErrNoTLS", err)
	}
}

// TestWeakKeyStoredBeforeCannotSignRequests performs attack 6 against a
// database that holds a small-order key from before enrollment checked
// keys: the trivial signature (R = identity, S = 0) verifies under the
// identity key on any request, so anyone could act as that device. The
// server refuses the device's requests (401) instead.
func TestWeakKeyStoredBeforeCannotSignRequests(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	tok := e.enrollToken(t, "fleet")
	identity := identityPoint()
	if _, err := e.Server.Store().Enroll(ctx, tok, store.Device{ID: "weak", HardwareID: "hw1", PublicKey: identity}, e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	trivial := make([]byte, ed25519.SignatureSize)
	trivial[0] = 1
	req, _ := http.NewRequestWithContext(ctx, "GET", e.URL+"/director/weak/timestamp.json", nil)
	req.Header.Set(devauth.HeaderDevice, "weak")
	req.Header.Set(devauth.HeaderTime, strconv.FormatInt(e.clk.Now().Unix(), 10))
	req.Header.Set(devauth.HeaderSignature, base64.StdEncoding.EncodeToString(trivial))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(msg), "weak key") {
		t.Fatalf("request with a trivial signature under the identity key: %d %s, want 401 naming the weak key", resp.StatusCode, msg)
	}
}
