package tlsutil

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestServerSpeaksTLS13AndRefusesBelow12: a server configuration from
// ServerConfig negotiates TLS 1.3 with a pinned client and refuses a
// client limited to TLS 1.1; a client pinning another CA refuses it.
func TestServerSpeaksTLS13AndRefusesBelow12(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	caPEM, caKey, err := NewCA("test", now)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := IssueServer(caPEM, caKey, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	otherCA, _, _ := NewCA("other", now)
	for name, data := range map[string][]byte{"ca.pem": caPEM, "other.pem": otherCA, "s.pem": cert, "s.key": key} {
		os.WriteFile(filepath.Join(dir, name), data, 0o600)
	}
	sc, err := ServerConfig(filepath.Join(dir, "s.pem"), filepath.Join(dir, "s.key"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", sc)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	dial := func(cc *tls.Config) (*tls.Conn, error) {
		d := &net.Dialer{Timeout: 10 * time.Second}
		return tls.DialWithDialer(d, "tcp", ln.Addr().String(), cc)
	}
	cc, err := ClientConfig(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := dial(cc)
	if err != nil {
		t.Fatalf("pinned client: %v", err)
	}
	if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("negotiated %x, want TLS 1.3", v)
	}
	c.Close()
	old := cc.Clone()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if c, err := dial(old); err == nil {
		c.Close()
		t.Error("a TLS 1.1 client was accepted")
	}
	oc, _ := ClientConfig(filepath.Join(dir, "other.pem"))
	if c, err := dial(oc); err == nil {
		c.Close()
		t.Error("a client pinning another CA accepted the server")
	}
	if _, err := ClientConfig(filepath.Join(dir, "s.key")); !errors.Is(err, ErrBadPEM) {
		t.Errorf("a key file as CA: %v, want ErrBadPEM", err)
	}
}

func TestCheckURL(t *testing.T) {
	for _, c := range []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://ota.example.net", false, true},
		{"http://ota.example.net", false, false},
		{"http://ota.example.net", true, true},
		{"ftp://ota.example.net", true, false},
		{"https://", false, false},
		{"not a url", true, false},
	} {
		err := CheckURL("server_url", c.url, c.insecure)
		if (err == nil) != c.ok {
			t.Errorf("CheckURL(%q, insecure=%v): %v", c.url, c.insecure, err)
		}
		if c.url == "http://ota.example.net" && !c.insecure && !errors.Is(err, ErrInsecureURL) {
			t.Errorf("plain http: %v, want ErrInsecureURL", err)
		}
	}
}
