package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// artifact returns n deterministic bytes and what signed metadata would say.
func artifact(n int) ([]byte, Want) {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	sum := sha256.Sum256(b)
	return b, Want{Length: int64(n), SHA256: sum[:]}
}

// tempDst opens a fresh read-write destination file holding prefix.
func tempDst(t *testing.T, prefix []byte) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "artifact")
	if err := os.WriteFile(p, prefix, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func contents(t *testing.T, f *os.File) []byte {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newClient gives each test its own transport, so no connection is shared.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// mirror is a real HTTP server that records what it was asked and how many
// body bytes it handed to the connection.
type mirror struct {
	*httptest.Server
	requests atomic.Int64
	served   atomic.Int64
	mu       sync.Mutex
	ranges   []string
}

func newMirror(t *testing.T, h func(m *mirror, w http.ResponseWriter, r *http.Request)) *mirror {
	m := &mirror{}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.requests.Add(1)
		m.mu.Lock()
		m.ranges = append(m.ranges, r.Header.Get("Range"))
		m.mu.Unlock()
		h(m, w, r)
	}))
	t.Cleanup(func() {
		m.CloseClientConnections() // ends handlers that wait on the request context
		m.Close()
	})
	return m
}

func (m *mirror) rangesSeen() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.ranges...)
}

func (m *mirror) write(w http.ResponseWriter, p []byte) error {
	n, err := w.Write(p)
	m.served.Add(int64(n))
	return err
}

// countingWriter counts body bytes for handlers built on http.ServeContent.
type countingWriter struct {
	http.ResponseWriter
	m *mirror
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.m.served.Add(int64(n))
	return n, err
}

// honest serves data with full Range support.
func honest(data []byte) func(*mirror, http.ResponseWriter, *http.Request) {
	return func(m *mirror, w http.ResponseWriter, r *http.Request) {
		http.ServeContent(countingWriter{w, m}, r, "artifact", time.Time{}, bytes.NewReader(data))
	}
}

// status answers every request with code.
func status(code int) func(*mirror, http.ResponseWriter, *http.Request) {
	return func(m *mirror, w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }
}

// trickle sends head at once, then one byte of rest every interval.
func trickle(head, rest []byte, interval time.Duration) func(*mirror, http.ResponseWriter, *http.Request) {
	return func(m *mirror, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(head)+len(rest)))
		m.write(w, head)
		rc := http.NewResponseController(w)
		rc.Flush()
		for i := range rest {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(interval):
			}
			if m.write(w, rest[i:i+1]) != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// stall never answers until the client goes away.
func stall(m *mirror, w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// fast are options for tests that are not about the rate: the guard asks
// for only 5 bytes in 5 s, and retries do not wait.
func fast(c *http.Client, mirrors ...string) Options {
	return Options{Client: c, Mirrors: mirrors, MinRate: 1, RateWindow: 5 * time.Second,
		Backoff: time.Millisecond, Deadline: 20 * time.Second}
}

func contextCanceled(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithCancel(t.Context())
}
