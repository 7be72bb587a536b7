package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestServerWithoutCertificateSaysWhatToDo: a server with no certificate
// anywhere and no --insecure-http does not start, and says which flags
// to pass; certd likewise.
func TestServerWithoutCertificateSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	code, out := run(t, "server", "--data", filepath.Join(dir, "data"))
	if code == 0 || !strings.Contains(out, "--tls-cert") || !strings.Contains(out, "--insecure-http") {
		t.Fatalf("server without TLS: exit %d, %q", code, out)
	}
	code, out = run(t, "certd", "--data", filepath.Join(dir, "certd"))
	if code == 0 || !strings.Contains(out, "--tls-cert") || !strings.Contains(out, "--insecure-http") {
		t.Fatalf("certd without TLS: exit %d, %q", code, out)
	}
	if code, out := run(t, "keys", "init", "--out", filepath.Join(dir, "keys"), "--tls-host", "ota.example.net"); code != 0 || !strings.Contains(out, "online/tls/ca.pem") {
		t.Fatalf("keys init: exit %d, %q", code, out)
	}
	if code, out := run(t, "keys", "tls", "--keys", filepath.Join(dir, "keys"), "--tls-host", "ota2.example.net"); code != 0 || !strings.Contains(out, "server.pem") {
		t.Fatalf("keys tls: exit %d, %q", code, out)
	}
}
