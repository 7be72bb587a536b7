package agent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ztota/ztota/internal/tlsutil"
)

// TestPlainHTTPServerURLIsRefusedUnlessAllowed performs a configuration
// that would send enrollment and check-ins over plain http: it is refused
// with tlsutil.ErrInsecureURL unless insecure_http is set; server_ca is
// resolved against the configuration file's directory.
func TestPlainHTTPServerURLIsRefusedUnlessAllowed(t *testing.T) {
	dir := t.TempDir()
	write := func(url, extra string) string {
		p := filepath.Join(dir, "agent.json")
		os.WriteFile(p, []byte(`{"device_id":"d1","hardware_id":"hw","server_url":"`+url+`","data_dir":"d","image_root":"i","director_root":"r",
			"module":{"name":"app","command":["bin/app"]}`+extra+`}`), 0o600)
		return p
	}
	if _, err := LoadConfig(write("http://127.0.0.1:8080", "")); !errors.Is(err, tlsutil.ErrInsecureURL) {
		t.Fatalf("plain http without insecure_http: %v, want ErrInsecureURL", err)
	}
	if _, err := LoadConfig(write("http://127.0.0.1:8080", `,"insecure_http":true`)); err != nil {
		t.Fatalf("plain http with insecure_http: %v", err)
	}
	c, err := LoadConfig(write("https://127.0.0.1:8443", `,"server_ca":"tls/ca.pem"`))
	if err != nil {
		t.Fatal(err)
	}
	if c.ServerCA != filepath.Join(dir, "tls", "ca.pem") {
		t.Fatalf("server_ca %q not resolved against the configuration's directory", c.ServerCA)
	}
	if _, err := LoadConfig(write("ftp://x", "")); err == nil {
		t.Fatal("an ftp:// server_url was accepted")
	}
}
