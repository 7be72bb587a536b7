// Package tlsutil makes and loads the TLS material of a ztota deployment:
// a small certificate authority (ECDSA P-256, long-lived, its key kept
// offline), server certificates it issues, server configurations (TLS 1.2
// at least, 1.3 preferred) and client configurations that trust only a
// pinned CA. It also holds the rule every ztota client follows for URLs:
// https, or http only when the caller says so explicitly.
package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ztota/ztota/internal/boundedfile"
)

// Validity of what Init-time code makes.
const (
	CAValidity     = 20 * 365 * 24 * time.Hour
	ServerValidity = 2 * 365 * 24 * time.Hour
	// maxPEM bounds a certificate or key file read.
	maxPEM = 1 << 20
)

// DefaultHosts are the names every server certificate carries.
var DefaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// Errors.
var (
	// ErrInsecureURL is a plain http:// URL where TLS is required.
	ErrInsecureURL = errors.New("plain http refused")
	// ErrBadPEM is a certificate or key file that does not parse.
	ErrBadPEM = errors.New("malformed PEM file")
)

// NewCA makes a self-signed CA certificate and its key, both PEM.
func NewCA(name string, now time.Time) (certPEM, keyPEM []byte, err error) {
	return issue(&x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}, nil, nil)
}

// IssueServer makes a server certificate for hosts (DNS names or IP
// addresses; DefaultHosts are always added) signed by the CA.
func IssueServer(caCertPEM, caKeyPEM []byte, hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	ca, err := parseCert(caCertPEM)
	if err != nil {
		return nil, nil, err
	}
	caKey, err := parseKey(caKeyPEM)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "ztota server"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(ServerValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	seen := map[string]bool{}
	for _, h := range append(append([]string(nil), DefaultHosts...), hosts...) {
		h = strings.TrimSpace(h)
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return issue(tmpl, ca, caKey)
}

// issue makes a new P-256 key and a certificate for it from tmpl, signed
// by parentKey as parent, or self-signed when parent is nil; both PEM.
func issue(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

func parseCert(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: no CERTIFICATE block", ErrBadPEM)
	}
	return x509.ParseCertificate(b.Bytes)
}

func parseKey(data []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: no PRIVATE KEY block", ErrBadPEM)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPEM, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: the CA key is not ECDSA", ErrBadPEM)
	}
	return ek, nil
}

// ServerConfig loads a certificate (chain) and key for a server: TLS 1.2
// at least (1.3 is negotiated whenever the client offers it).
func ServerConfig(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("both a TLS certificate and its key are needed (--tls-cert FILE --tls-key FILE)")
	}
	certPEM, err := boundedfile.Read(certFile, maxPEM)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	keyPEM, err := boundedfile.Read(keyFile, maxPEM)
	if err != nil {
		return nil, fmt.Errorf("TLS key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}, nil
}

// ClientConfig trusts only the CA certificates in caFile (PEM). With
// caFile empty it returns a configuration that trusts the system roots.
func ClientConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	data, err := boundedfile.Read(caFile, maxPEM)
	if err != nil {
		return nil, fmt.Errorf("pinned CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("pinned CA %s: %w: no certificate in it", caFile, ErrBadPEM)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// Transport is http.DefaultTransport's settings with ClientConfig(caFile).
func Transport(caFile string) (*http.Transport, error) {
	cfg, err := ClientConfig(caFile)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return tr, nil
}

// CheckURL accepts an https:// URL, and an http:// URL only when insecure
// is set; what names the URL (a flag, a configuration field) goes into
// the error.
func CheckURL(what, raw string, insecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s %q is not an http(s) URL", what, raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if insecure {
			return nil
		}
		return fmt.Errorf("%w: %s %q uses plain http, which lets anyone on the path read and change the traffic; use https (with the server's CA pinned) or allow plain http explicitly", ErrInsecureURL, what, raw)
	}
	return fmt.Errorf("%s %q: scheme must be https (or http when allowed explicitly)", what, raw)
}
