package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/slot"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
)

// device is an agent configuration on disk, to start and restart the
// agent as a process against a testbed server.
type device struct {
	id   string
	cfg  *agent.Config
	path string
}

func newDevice(t *testing.T, b *testbed.Bed, id string) *device {
	t.Helper()
	cfg := b.AgentConfig(id, "board-a")
	return &device{id: id, cfg: cfg, path: writeConfig(t, b.Dir, cfg)}
}

// start runs "ztota agent"; with haltAt set the agent stops still at that
// install step (ZTOTA_TEST_HALT_AT).
func (d *device) start(t *testing.T, haltAt string) *proc {
	t.Helper()
	env, name := baseEnv(), "agent "+d.id
	if haltAt != "" {
		env = append(env, "ZTOTA_TEST_HALT_AT="+haltAt)
		name += " (halting at " + haltAt + ")"
	}
	return startProc(t, name, env, "agent", "--config", d.path)
}

// enroll runs the agent until it has enrolled, then stops it, so that
// deployments can name the device before its agent polls.
func (d *device) enroll(t *testing.T) {
	t.Helper()
	a := d.start(t, "")
	a.waitLine(regexp.MustCompile(`msg=enrolled`), 30*time.Second)
	a.stop(10 * time.Second)
}

func (d *device) downloads(t *testing.T) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(d.cfg.DataDir, "download"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// waitLast polls the server's history of dev until its last report
// satisfies ok, and returns that report.
func waitLast(t *testing.T, b *testbed.Bed, dev string, d time.Duration, what string, ok func(store.Report) bool) store.Report {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		h := b.History(dev)
		if len(h) > 0 && ok(h[len(h)-1]) {
			return h[len(h)-1]
		}
		if time.Now().After(deadline) {
			var states []string
			for _, r := range h {
				states = append(states, r.State)
			}
			t.Fatalf("timed out after %s waiting for %s to report %s; history: %s", d, dev, what, strings.Join(states, " "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isReport(state, target string) func(store.Report) bool {
	return func(r store.Report) bool { return r.State == state && r.Target == target }
}

// checkSlots opens the slots of a stopped agent and requires a committed
// active slot holding wantSHA whose contents verify, and nothing pending.
func checkSlots(t *testing.T, dataDir, wantSHA string) slot.State {
	t.Helper()
	ctx := testbed.Ctx(t)
	s, err := slot.OpenDir(ctx, filepath.Join(dataDir, "slots"), 3)
	if err != nil {
		t.Fatalf("opening the slots: %v", err)
	}
	st, err := s.State(ctx)
	if err != nil {
		t.Fatalf("slot state: %v", err)
	}
	if st.Pending != "" {
		t.Errorf("slot %s is still pending (boot %d) after the agent settled", st.Pending, st.BootCount)
	}
	if st.Active == "" {
		t.Fatalf("no committed slot: %+v", st)
	}
	if err := s.Verify(ctx, st.Active); err != nil {
		t.Errorf("active slot %s does not verify: %v", st.Active, err)
	}
	if got := st.Slots[st.Active].SHA256; got != wantSHA {
		t.Errorf("active slot %s holds %s, want %s", st.Active, got, wantSHA)
	}
	return st
}

// midDownload is an agent process half-way through downloading a 3 MiB
// release behind a throttled artifact mirror.
type midDownload struct {
	arts    *artifactLog
	b       *testbed.Bed
	dev     *device
	r       release.Result
	a       *proc
	partial string // the download file
}

// startMidDownload deploys a 3 MiB release to a new enrolled device whose
// artifact requests are throttled, starts its agent and returns once part
// of the artifact is on disk.
func startMidDownload(t *testing.T) *midDownload {
	t.Helper()
	needBinary(t)
	m := &midDownload{arts: &artifactLog{}}
	m.arts.throttle.Store(true)
	m.b = testbed.New(t, testbed.Options{Front: m.arts.front})
	m.dev = newDevice(t, m.b, "dev-1")
	m.dev.enroll(t)
	m.r = m.b.Release(m.b.ScriptBundle("1.0.0", true, 3<<20), "1.0.0", 1, "board-a")
	m.b.Deploy(m.r.Target, m.dev.id)
	m.a = m.dev.start(t, "")
	m.partial = filepath.Join(m.dev.cfg.DataDir, "download", m.r.SHA256)
	testbed.WaitFor(t, 30*time.Second, "part of the artifact on disk", func() bool {
		fi, err := os.Stat(m.partial)
		return err == nil && fi.Size() >= 64<<10
	})
	return m
}

// held returns how many bytes of the artifact the stopped agent kept
// (how says how it was stopped); it must be a partial download.
func (m *midDownload) held(t *testing.T, how string) int64 {
	t.Helper()
	fi, err := os.Stat(m.partial)
	if err != nil {
		t.Fatalf("the partial download is gone after the agent was %s: %v", how, err)
	}
	if fi.Size() <= 0 || fi.Size() >= m.r.Length {
		t.Fatalf("the agent held %d of %d bytes when %s; want a partial download", fi.Size(), m.r.Length, how)
	}
	return fi.Size()
}

// artifactLog sits in front of the server, records every artifact
// request and can throttle artifact responses.
type artifactLog struct {
	throttle atomic.Bool
	mu       sync.Mutex
	reqs     []*artifactReq
}

type artifactReq struct {
	path, rng string
	status    int
	sent      int64
}

func (l *artifactLog) front(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/image/targets/") {
			next.ServeHTTP(w, r)
			return
		}
		rw := &recordingWriter{ResponseWriter: w, slow: l.throttle.Load()}
		next.ServeHTTP(rw, r)
		l.mu.Lock()
		l.reqs = append(l.reqs, &artifactReq{path: r.URL.Path, rng: r.Header.Get("Range"), status: rw.code(), sent: rw.n})
		l.mu.Unlock()
	})
}

// requests returns the recorded requests for the artifact with digest sha.
func (l *artifactLog) requests(sha string) []artifactReq {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []artifactReq
	for _, r := range l.reqs {
		if strings.Contains(r.path, "/"+sha+".") {
			out = append(out, *r)
		}
	}
	return out
}

// recordingWriter counts what is written; slow, it writes 4 KiB at a time
// about every 5 ms (some 800 KB/s, above the agents' minimum rate).
type recordingWriter struct {
	http.ResponseWriter
	slow   bool
	status int
	n      int64
}

func (w *recordingWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	if !w.slow {
		n, err := w.ResponseWriter.Write(p)
		w.n += int64(n)
		return n, err
	}
	done := 0
	for done < len(p) {
		chunk := p[done:min(done+4096, len(p))]
		n, err := w.ResponseWriter.Write(chunk)
		done += n
		w.n += int64(n)
		if err != nil {
			return done, err
		}
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		time.Sleep(5 * time.Millisecond)
	}
	return done, nil
}
