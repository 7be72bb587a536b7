package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ztota/ztota/internal/httpbound"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/tlsutil"
)

// Timeouts bound slow clients (see httpbound.Timeouts) and artifact
// uploads. Zero fields take the defaults.
type Timeouts struct {
	httpbound.Timeouts
	// Upload is the base time of an artifact upload, to which the time
	// its Content-Length takes at UploadRate is added (default 5m).
	Upload time.Duration
	// UploadRate is the slowest upload rate allowed, bytes/s (default 64 KiB/s).
	UploadRate int64
}

func (t *Timeouts) defaults() {
	t.Timeouts.Defaults()
	if t.Upload <= 0 {
		t.Upload = 5 * time.Minute
	}
	if t.UploadRate <= 0 {
		t.UploadRate = 64 << 10
	}
}

// ErrNoTLS is a server asked to serve without a certificate and without
// an explicit permission to serve plain HTTP.
var ErrNoTLS = errors.New("no TLS certificate: pass --tls-cert FILE --tls-key FILE (made by 'ztota keys init' in online/tls/), or --insecure-http to serve plain HTTP on a trusted network only")

// ResolveTLS fills TLSCertFile and TLSKeyFile when they are empty: from the
// keys folder given at first start (KeysDir/tls/server.pem, server.key,
// copied into DATA/tls/ for later starts) or from DATA/tls/. It does
// nothing when InsecureHTTP is set and no certificate was named.
func (c *Config) ResolveTLS() error {
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("pass both --tls-cert and --tls-key")
	}
	if c.TLSCertFile != "" || c.InsecureHTTP {
		return nil
	}
	own := filepath.Join(c.DataDir, keyset.TLSDir)
	_, cert, key := keyset.TLSFiles(c.DataDir)
	if c.KeysDir != "" {
		_, kc, kk := keyset.TLSFiles(c.KeysDir)
		if _, err := os.Stat(kc); err == nil {
			if err := os.MkdirAll(own, 0o700); err != nil {
				return err
			}
			for src, dst := range map[string]string{kc: cert, kk: key} {
				data, err := os.ReadFile(src)
				if err != nil {
					return err
				}
				if err := keys.WriteFileAtomic(dst, data, 0o600); err != nil {
					return err
				}
			}
		}
	}
	if _, err := os.Stat(cert); err == nil {
		c.TLSCertFile, c.TLSKeyFile = cert, key
		return nil
	}
	return ErrNoTLS
}

// Serve serves HTTPS (or, with InsecureHTTP and no certificate, plain
// HTTP) on ln until ctx ends, and re-signs expiring metadata in the
// background.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var tc *tls.Config
	if s.cfg.TLSCertFile != "" || s.cfg.TLSKeyFile != "" {
		var err error
		if tc, err = tlsutil.ServerConfig(s.cfg.TLSCertFile, s.cfg.TLSKeyFile); err != nil {
			return fmt.Errorf("server: %w", err)
		}
	} else if !s.cfg.InsecureHTTP {
		return fmt.Errorf("server: %w", ErrNoTLS)
	}
	go s.resignLoop(ctx)
	go s.FollowFeed(ctx)
	context.AfterFunc(ctx, s.stopNudges) // long polls answer at once on shutdown
	if err := httpbound.Serve(ctx, ln, s.Handler(), s.cfg.Timeouts.Timeouts, tc); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// uploadDeadline gives an authenticated artifact upload time for its
// declared length at the slowest allowed rate.
func (s *Server) uploadDeadline(h http.HandlerFunc) http.HandlerFunc {
	t := s.cfg.Timeouts
	t.defaults()
	return func(w http.ResponseWriter, r *http.Request) {
		n := r.ContentLength
		if n < 0 || n > s.cfg.MaxArtifactSize {
			n = s.cfg.MaxArtifactSize
		}
		httpbound.ExtendRead(w, t.Upload+time.Duration(n/t.UploadRate)*time.Second)
		h(w, r)
	}
}
