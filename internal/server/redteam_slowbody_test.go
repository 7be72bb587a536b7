package server_test

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
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

	"github.com/ztota/ztota/internal/enroll"
	"github.com/ztota/ztota/internal/httpbound"
	"github.com/ztota/ztota/internal/server"
)

// TestSlowDeviceBodyIsARequestTimeout performs a slow body on the signed
// device route POST /v1/devices/{device}/reports: the headers of an
// enrolled device (the id is public: it is in every URL), then one body
// byte every 2 s. The server cuts it at the body bound and answers 408
// Request Timeout, a client's fault the agent retries; it used to answer
// 500 "internal error" and log the slow client as a server failure.
func TestSlowDeviceBodyIsARequestTimeout(t *testing.T) {
	var dataDir string
	addr, _ := startServer(t, func(c *server.Config) {
		c.InsecureHTTP = true
		c.Timeouts = server.Timeouts{Timeouts: httpbound.Timeouts{Body: 2 * time.Second}}
		dataDir = c.DataDir
	})
	admin, err := os.ReadFile(filepath.Join(dataDir, server.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	call := func(path, token string, body []byte) []byte {
		req, _ := http.NewRequest("POST", "http://"+addr+path, bytes.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
		return b
	}
	var et struct{ Token string }
	if err := json.Unmarshal(call("/v1/enroll-tokens", strings.TrimSpace(string(admin)), []byte(`{"group":"fleet"}`)), &et); err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	body, _ := json.Marshal(enroll.NewRequest(et.Token, "dev-slow", "hw1", pub))
	call("/v1/enroll", "", body)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sig := base64.StdEncoding.EncodeToString(make([]byte, ed25519.SignatureSize))
	fmt.Fprintf(conn, "POST /v1/devices/dev-slow/reports HTTP/1.1\r\nHost: ota\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"+
		"Ztota-Device: dev-slow\r\nZtota-Time: %d\r\nZtota-Signature: %s\r\n\r\n", time.Now().Unix(), sig)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			if _, err := conn.Write([]byte("[")); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the slow body within 30 s: %v", err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("slow device body answered %d %s, want 408", resp.StatusCode, bytes.TrimSpace(msg))
	}
}

// TestSlowReuploadOfAStoredArtifactIsAClientError performs a slow body on
// PUT /v1/artifacts/{sha} for an artifact the server already holds (an
// integrator re-running a release on a bad link): the body stops half-way
// and the upload bound passes. The answer is 400 naming the incomplete
// body, as for a first upload; it used to be 500 "internal error".
func TestSlowReuploadOfAStoredArtifactIsAClientError(t *testing.T) {
	var dataDir string
	addr, _ := startServer(t, func(c *server.Config) {
		c.InsecureHTTP = true
		c.Timeouts = server.Timeouts{Timeouts: httpbound.Timeouts{Body: time.Second}, Upload: time.Second}
		dataDir = c.DataDir
	})
	admin, err := os.ReadFile(filepath.Join(dataDir, server.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(admin))
	data := make([]byte, 4096)
	rand.Read(data)
	sha := sha256Hex(data)
	req, _ := http.NewRequest("PUT", "http://"+addr+"/v1/artifacts/"+sha, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("first upload: %d", resp.StatusCode)
	}

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /v1/artifacts/%s HTTP/1.1\r\nHost: ota\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", sha, tok, len(data))
	conn.Write(data[:len(data)/2]) // and nothing more
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the stalled upload within 30 s: %v", err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "incomplete") {
		t.Fatalf("stalled re-upload answered %d %s, want 400 naming the incomplete body", resp.StatusCode, bytes.TrimSpace(msg))
	}
}
