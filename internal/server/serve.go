package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/tlsutil"
)

// Timeouts bound how long a client may take: a peer that sends (or reads)
// one byte now and then must not hold a connection and a goroutine for
// ever. Zero fields take the defaults.
type Timeouts struct {
	// ReadHeader bounds the request line and headers (default 10s).
	ReadHeader time.Duration
	// Body bounds the whole body of a request on every route but artifact
	// uploads (default 30s; JSON bodies are small).
	Body time.Duration
	// Upload is the base time of an artifact upload, to which the time
	// its Content-Length takes at UploadRate is added (default 5m).
	Upload time.Duration
	// UploadRate is the slowest upload rate allowed, bytes/s (default 64 KiB/s).
	UploadRate int64
	// WriteIdle is the longest a response write may block: a client that
	// stops reading is cut off after it (default 2m). Each write extends
	// it, so a slow but moving artifact download is not cut.
	WriteIdle time.Duration
	// Idle bounds a keep-alive connection between requests (default 2m).
	Idle time.Duration
}

func (t *Timeouts) defaults() {
	if t.ReadHeader <= 0 {
		t.ReadHeader = 10 * time.Second
	}
	if t.Body <= 0 {
		t.Body = 30 * time.Second
	}
	if t.Upload <= 0 {
		t.Upload = 5 * time.Minute
	}
	if t.UploadRate <= 0 {
		t.UploadRate = 64 << 10
	}
	if t.WriteIdle <= 0 {
		t.WriteIdle = 2 * time.Minute
	}
	if t.Idle <= 0 {
		t.Idle = 2 * time.Minute
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

// NewHTTPServer is the http.Server of the OTA server (h is normally
// Handler(), which applies the per-route deadlines): header, idle and
// (per route, see withDeadlines) body and write bounds, and TLS 1.2+ when
// a configuration is given.
func NewHTTPServer(h http.Handler, t Timeouts, tc *tls.Config) *http.Server {
	t.defaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    32 << 10,
		TLSConfig:         tc,
	}
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
	hs := NewHTTPServer(s.Handler(), s.cfg.Timeouts, tc)
	go s.resignLoop(ctx)
	errc := make(chan error, 1)
	go func() {
		if tc != nil {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		return nil
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	}
}

// withDeadlines bounds every request on its connection: a request with a
// body must deliver it within Timeouts.Body (artifact uploads get more,
// see uploadDeadline), and each response write must progress within
// Timeouts.WriteIdle. The read deadline is lifted once the body is read,
// so a handler that works longer is not cancelled by it.
func withDeadlines(t Timeouts, next http.Handler) http.Handler {
	t.defaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			rc.SetReadDeadline(time.Now().Add(t.Body))
			r.Body = &liftOnEOF{ReadCloser: r.Body, rc: rc}
		}
		rw := &rollingWriter{ResponseWriter: w, rc: rc, idle: t.WriteIdle}
		rw.extend()
		next.ServeHTTP(rw, r)
	})
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
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(t.Upload + time.Duration(n/t.UploadRate)*time.Second))
		h(w, r)
	}
}

// liftOnEOF clears the connection's read deadline when the body is read
// to its end: net/http then reads in the background to notice a closed
// connection, and a deadline passing there would cancel the request.
type liftOnEOF struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *liftOnEOF) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// rollingWriter moves the write deadline forward before each write.
type rollingWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration
}

func (w *rollingWriter) extend() { w.rc.SetWriteDeadline(time.Now().Add(w.idle)) }

func (w *rollingWriter) WriteHeader(code int) {
	w.extend()
	w.ResponseWriter.WriteHeader(code)
}

func (w *rollingWriter) Write(p []byte) (int, error) {
	w.extend()
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *rollingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes flushes through.
func (w *rollingWriter) Flush() {
	w.extend()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
