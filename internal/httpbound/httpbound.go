// Package httpbound bounds how long an HTTP client may take, for every
// ztota server: a peer that sends (or reads) one byte now and then must
// not hold a connection and a goroutine for ever. It builds the
// http.Server (header and idle timeouts, TLS 1.2+) and a middleware that
// gives each request a body deadline and a rolling write deadline;
// routes that take large uploads extend the read deadline themselves
// (ExtendRead) once the client is authenticated.
package httpbound

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"time"
)

// Timeouts of a server. Zero fields take the defaults.
type Timeouts struct {
	// ReadHeader bounds the request line and headers (default 10s).
	ReadHeader time.Duration
	// Body bounds the whole body of a request unless its route extends it
	// (default 30s; JSON bodies are small).
	Body time.Duration
	// WriteIdle is the longest a response write may block: a client that
	// stops reading is cut off after it (default 2m). Each write moves
	// it, so a slow but moving download is not cut.
	WriteIdle time.Duration
	// Idle bounds a keep-alive connection between requests (default 2m).
	Idle time.Duration
}

// Defaults fills zero fields.
func (t *Timeouts) Defaults() {
	if t.ReadHeader <= 0 {
		t.ReadHeader = 10 * time.Second
	}
	if t.Body <= 0 {
		t.Body = 30 * time.Second
	}
	if t.WriteIdle <= 0 {
		t.WriteIdle = 2 * time.Minute
	}
	if t.Idle <= 0 {
		t.Idle = 2 * time.Minute
	}
}

// Server returns an http.Server for h (wrap h with Handler first) with
// header and idle timeouts, bounded headers, and tc (nil: plain HTTP).
// ReadTimeout and WriteTimeout stay zero: Handler sets them per request.
func Server(h http.Handler, t Timeouts, tc *tls.Config) *http.Server {
	t.Defaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    32 << 10,
		TLSConfig:         tc,
	}
}

// Serve serves h on ln with Server(h, t, tc), HTTPS when tc is set and
// plain HTTP otherwise, until ctx ends; it then shuts the server down,
// giving requests in flight 5 seconds, and returns nil. An error that
// stops serving before that is returned as it is.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, t Timeouts, tc *tls.Config) error {
	srv := Server(h, t, tc)
	errc := make(chan error, 1)
	go func() {
		if tc != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
		return nil
	case err := <-errc:
		return err
	}
}

// Handler bounds every request on its connection: a request with a body
// must deliver it within t.Body (unless the route calls ExtendRead), and
// each response write must progress within t.WriteIdle. The read deadline
// is lifted once the body is read to its end, so that it bounds the body
// only and never the background read net/http does while a handler works
// (or long-polls) past it.
func Handler(t Timeouts, next http.Handler) http.Handler {
	t.Defaults()
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

// ExtendRead gives the rest of the request body until d from now (an
// authenticated upload of a known length).
func ExtendRead(w http.ResponseWriter, d time.Duration) {
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
}

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
