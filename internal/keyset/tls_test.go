package keyset_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/keyset"
)

// TestInitMakesACAAndAServerCertificate: keys init makes a CA whose key
// stays in offline/ and a server certificate in online/tls/ valid for
// localhost, 127.0.0.1, ::1 and the --tls-host names; "keys tls"
// reissues it with the same CA.
func TestInitMakesACAAndAServerCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if err := keyset.Init(dir, keyset.Options{TLSHosts: []string{"ota.example.net", "10.0.0.7"}}); err != nil {
		t.Fatal(err)
	}
	online := filepath.Join(dir, keyset.OnlineDir)
	caFile, certFile, keyFile := keyset.TLSFiles(online)
	if _, err := os.Stat(filepath.Join(dir, keyset.OfflineDir, keyset.TLSCAKey)); err != nil {
		t.Fatalf("CA key not in offline/: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(online, keyset.TLSDir))
	for _, e := range entries {
		if e.Name() != keyset.TLSCACert && e.Name() != keyset.TLSServerCert && e.Name() != keyset.TLSServerKey {
			t.Errorf("unexpected file online/tls/%s", e.Name())
		}
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("server key: %v %v, want mode 0600", fi, err)
	}
	verify := func() *x509.Certificate {
		t.Helper()
		pool := x509.NewCertPool()
		caPEM, _ := os.ReadFile(caFile)
		if !pool.AppendCertsFromPEM(caPEM) {
			t.Fatal("ca.pem holds no certificate")
		}
		certPEM, _ := os.ReadFile(certFile)
		b, _ := pem.Decode(certPEM)
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"localhost", "127.0.0.1", "::1", "ota.example.net", "10.0.0.7"} {
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: h, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Errorf("certificate for %s: %v", h, err)
			}
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.example.net"}); err == nil {
			t.Error("certificate valid for a name it was not made for")
		}
		if cert.NotAfter.Before(time.Now().Add(365 * 24 * time.Hour)) {
			t.Errorf("server certificate expires %s, want at least a year", cert.NotAfter)
		}
		return cert
	}
	first := verify()
	if err := keyset.IssueTLS(dir, []string{"ota.example.net", "10.0.0.7"}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if second := verify(); second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("keys tls did not issue a new certificate")
	}
}
