package keyset

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/tlsutil"
)

// TLS files of a keys directory made by Init:
//
//	offline/tls-ca.key        the CA's private key (keep it off the server)
//	online/tls/ca.pem         the CA certificate: devices pin it (server_ca)
//	online/tls/server.pem     the server certificate (localhost, 127.0.0.1, ::1 and --tls-host names)
//	online/tls/server.key     its private key
const (
	TLSDir        = "tls"
	TLSCAKey      = "tls-ca.key"
	TLSCACert     = "ca.pem"
	TLSServerCert = "server.pem"
	TLSServerKey  = "server.key"
)

// TLSFiles returns the paths of the CA certificate, server certificate and
// server key inside a keys directory's online/ folder (or a copy of it).
func TLSFiles(onlineDir string) (ca, cert, key string) {
	d := filepath.Join(onlineDir, TLSDir)
	return filepath.Join(d, TLSCACert), filepath.Join(d, TLSServerCert), filepath.Join(d, TLSServerKey)
}

// initTLS makes the CA and a server certificate for hosts.
func initTLS(dir string, hosts []string, now time.Time) error {
	caKeyPath := filepath.Join(dir, OfflineDir, TLSCAKey)
	if _, err := os.Stat(caKeyPath); err == nil {
		return fmt.Errorf("%s already exists: refusing to overwrite the TLS CA key", caKeyPath)
	}
	caCert, caKey, err := tlsutil.NewCA("ztota deployment CA", now)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, OnlineDir, TLSDir), 0o700); err != nil {
		return err
	}
	if err := keys.WriteFileAtomic(caKeyPath, caKey, 0o600); err != nil {
		return err
	}
	ca, _, _ := TLSFiles(filepath.Join(dir, OnlineDir))
	if err := keys.WriteFileAtomic(ca, caCert, 0o644); err != nil {
		return err
	}
	return IssueTLS(dir, hosts, now)
}

// IssueTLS (re)issues the server certificate in online/tls/ with the CA of
// the keys directory dir, for hosts in addition to tlsutil.DefaultHosts.
// The CA key must be in offline/.
func IssueTLS(dir string, hosts []string, now time.Time) error {
	if now.IsZero() {
		now = time.Now()
	}
	caKey, err := os.ReadFile(filepath.Join(dir, OfflineDir, TLSCAKey))
	if err != nil {
		return fmt.Errorf("the TLS CA key: %w (it is in the offline/ folder made by 'ztota keys init')", err)
	}
	caPath, certPath, keyPath := TLSFiles(filepath.Join(dir, OnlineDir))
	caCert, err := os.ReadFile(caPath)
	if err != nil {
		return err
	}
	cert, key, err := tlsutil.IssueServer(caCert, caKey, hosts, now)
	if err != nil {
		return err
	}
	if err := keys.WriteFileAtomic(keyPath, key, 0o600); err != nil {
		return err
	}
	return keys.WriteFileAtomic(certPath, cert, 0o644)
}
