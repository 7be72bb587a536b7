package server_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ztota/ztota/internal/server"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNextRootNotFoundIsNotLoggedAsRefusal performs the log flood of field
// failure 11: every TUF refresh asks for the root after the newest one and
// gets 404, which the old server logged as "request refused" at info (1,412
// lines from 5 devices in 25 minutes). The 404 is still answered, but only
// logged at debug; other refusals are still logged.
func TestNextRootNotFoundIsNotLoggedAsRefusal(t *testing.T) {
	logs := &lockedBuffer{}
	e := newEnv(t, func(c *server.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	d := e.enroll(t, "dev-a", "hw1", "")
	for i := 0; i < 20; i++ {
		if a := e.request(t, nil, "GET", "/image/2.root.json", "", nil); a.code != http.StatusNotFound {
			t.Fatalf("next image root: %s", a)
		}
		if a := e.request(t, d.hc, "GET", "/director/dev-a/2.root.json", "", nil); a.code != http.StatusNotFound {
			t.Fatalf("next director root: %s", a)
		}
	}
	if n := strings.Count(logs.String(), "request refused"); n != 0 {
		t.Fatalf("%d 'request refused' lines for next-root lookups:\n%s", n, logs.String())
	}
	// Other refusals are still logged.
	if a := e.request(t, nil, "GET", "/image/9.snapshot.json", "", nil); a.code != http.StatusNotFound {
		t.Fatalf("missing snapshot: %s", a)
	}
	if !strings.Contains(logs.String(), "request refused") {
		t.Fatal("a missing snapshot is no longer logged")
	}
}
