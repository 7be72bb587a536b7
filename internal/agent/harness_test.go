package agent_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tufrepo"
)

// front is a handler in front of the server that can answer chosen paths
// itself: a lying mirror, a man in the middle, or a compromised server
// holding the online keys.
type front struct {
	mu       sync.Mutex
	override map[string][]byte                                 // path -> body served instead
	hook     func(w http.ResponseWriter, r *http.Request) bool // returns true if it answered
	seen     []string                                          // request paths
	wrap     func(next http.Handler, w http.ResponseWriter, r *http.Request) bool
}

func newFront() *front { return &front{override: map[string][]byte{}} }

func (f *front) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r.URL.Path)
		body, ok := f.override[r.URL.Path]
		hook := f.hook
		f.mu.Unlock()
		if ok {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
			return
		}
		if hook != nil && hook(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *front) set(path string, body []byte) {
	f.mu.Lock()
	f.override[path] = body
	f.mu.Unlock()
}

func (f *front) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

// recordRange lets every request through and records the Range header of
// the last artifact request; the returned function reads it.
func (f *front) recordRange() func() string {
	var ranged atomic.Value
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/image/targets/") {
			ranged.Store(r.Header.Get("Range"))
		}
		return false
	})
	return func() string {
		rg, _ := ranged.Load().(string)
		return rg
	}
}

func (f *front) clear() {
	f.mu.Lock()
	f.override = map[string][]byte{}
	f.hook = nil
	f.mu.Unlock()
}

// bed starts a server behind a front.
func bed(t *testing.T, o testbed.Options) (*testbed.Bed, *front) {
	f := newFront()
	o.Front = f.handler
	return testbed.New(t, o), f
}

// device makes and starts an agent for a new device.
func device(t *testing.T, b *testbed.Bed, id, hw string, tweak ...func(*agent.Config)) *agent.Agent {
	cfg := b.AgentConfig(id, hw)
	for _, fn := range tweak {
		fn(cfg)
	}
	return b.Agent(cfg)
}

// installV1 releases and deploys v1 to the device and installs it.
func installV1(t *testing.T, b *testbed.Bed, a *agent.Agent, id string) release.Result {
	t.Helper()
	r := b.Release(b.ScriptBundle("1.0.0", true, 4096), "1.0.0", 1, "board-a")
	b.Deploy(r.Target, id)
	testbed.CycleInstalls(t, a, r.SHA256, "installing v1")
	return r
}

// lastReport waits for the device's reports to reach the server and
// returns the last one with the given state.
func lastReport(t *testing.T, b *testbed.Bed, a *agent.Agent, id, state string) (detail string) {
	t.Helper()
	testbed.WaitFor(t, 10*time.Second, "a "+state+" report from "+id, func() bool {
		a.FlushReports(testbed.Ctx(t))
		for _, r := range b.History(id) {
			if r.State == state {
				detail = r.Detail
			}
		}
		return detail != "" || hasState(b, id, state)
	})
	return detail
}

// waitStates flushes the device's reports until the server holds a report
// in each of states.
func waitStates(t *testing.T, b *testbed.Bed, a *agent.Agent, id string, states ...string) {
	t.Helper()
	testbed.WaitFor(t, 15*time.Second, id+" reports "+strings.Join(states, ", "), func() bool {
		a.FlushReports(testbed.Ctx(t))
		for _, s := range states {
			if !hasState(b, id, s) {
				return false
			}
		}
		return true
	})
}

func hasState(b *testbed.Bed, id, state string) bool {
	for _, r := range b.History(id) {
		if r.State == state {
			return true
		}
	}
	return false
}

// refusedWith asserts the cycle failed, the device reported a refusal (or
// failure) whose detail holds want, and the slot still runs keep.
func refusedWith(t *testing.T, b *testbed.Bed, a *agent.Agent, id string, cycleErr error, state, want, keep string) {
	t.Helper()
	if cycleErr == nil {
		t.Fatalf("the update cycle succeeded; want a refusal mentioning %q", want)
	}
	if !strings.Contains(cycleErr.Error(), want) {
		t.Fatalf("cycle error %q does not mention %q", cycleErr, want)
	}
	detail := lastReport(t, b, a, id, state)
	if !strings.Contains(detail, want) {
		t.Fatalf("%s report detail %q does not mention %q", state, detail, want)
	}
	if got := testbed.Installed(t, a); got != keep {
		t.Fatalf("slot runs %q after the refusal, want it to keep %q", got, keep)
	}
}

// olderRefused releases version with the lower release counter counter,
// deploys it to the device and asserts that the device refuses it as a
// rollback (agent.ErrRefused, a "refused" report) and keeps running keep.
func olderRefused(t *testing.T, b *testbed.Bed, a *agent.Agent, id, version string, counter uint64, keep release.Result) {
	t.Helper()
	// keep's commit reaches the server (and ends its deployment) before
	// the next deployment is made: a restarted agent sends it in the
	// background.
	testbed.WaitFor(t, 20*time.Second, "the commit of "+keep.Target+" at the server", func() bool {
		for _, rep := range b.History(id) {
			if rep.State == "committed" && rep.Target == keep.Target {
				return true
			}
		}
		return false
	})
	old := b.Release(b.ScriptBundle(version, true, 64), version, counter, "board-a")
	b.Deploy(old.Target, id)
	err := a.Cycle(testbed.Ctx(t))
	if !errors.Is(err, agent.ErrRefused) {
		t.Fatalf("cycle with the older release %s: %v, want agent.ErrRefused", version, err)
	}
	refusedWith(t, b, a, id, err, "refused", "rollback", keep.SHA256)
}

// forger signs director metadata with the server's online keys, as a
// compromised server could, bypassing every server-side check.
type forger struct {
	t    *testing.T
	b    *testbed.Bed
	keys keyset.Online
}

func newForger(t *testing.T, b *testbed.Bed) *forger {
	k, err := keyset.LoadOnline(filepath.Join(b.KeysDir, keyset.OnlineDir))
	if err != nil {
		t.Fatal(err)
	}
	return &forger{t: t, b: b, keys: k}
}

// director serves (through f) a director repository for device listing
// exactly targets, at versions far above the server's own. Like the
// server, it binds every document to the device (tufrepo.DeviceField).
func (g *forger) director(f *front, device string, targets map[string]*metadata.TargetFiles, version int64) {
	t := g.t
	exp := time.Now().Add(time.Hour)
	tm := metadata.Targets(exp.UTC().Truncate(time.Second))
	tm.Signed.Version = version
	tm.Signed.Targets = targets
	g.bind(tm, device)
	tb, err := tufrepo.Sign(tm, g.keys.DirectorTargets)
	if err != nil {
		t.Fatal(err)
	}
	sm := metadata.Snapshot(exp.UTC().Truncate(time.Second))
	sm.Signed.Version = version
	sm.Signed.Meta = map[string]*metadata.MetaFiles{"targets.json": tufrepo.MetaFile(version, tb)}
	g.bind(sm, device)
	sb, err := tufrepo.Sign(sm, g.keys.DirectorSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	ts := metadata.Timestamp(exp.UTC().Truncate(time.Second))
	ts.Signed.Version = version
	ts.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": tufrepo.MetaFile(version, sb)}
	g.bind(ts, device)
	tsb, err := tufrepo.Sign(ts, g.keys.DirectorTimestamp)
	if err != nil {
		t.Fatal(err)
	}
	base := "/director/" + device + "/"
	v := strconv.FormatInt(version, 10)
	f.set(base+"timestamp.json", tsb)
	f.set(base+v+".snapshot.json", sb)
	f.set(base+v+".targets.json", tb)
}

// bind names device in md, as the server does.
func (g *forger) bind(md any, device string) {
	var err error
	switch m := md.(type) {
	case *metadata.Metadata[metadata.TargetsType]:
		err = tufrepo.BindDevice(m, device)
	case *metadata.Metadata[metadata.SnapshotType]:
		err = tufrepo.BindDevice(m, device)
	case *metadata.Metadata[metadata.TimestampType]:
		err = tufrepo.BindDevice(m, device)
	}
	if err != nil {
		g.t.Fatal(err)
	}
}

// directorTarget describes a release for the director of a device.
func directorTarget(t *testing.T, r release.Result, device, hw string, length int64, sha string) map[string]*metadata.TargetFiles {
	if sha == "" {
		sha = r.SHA256
	}
	if length == 0 {
		length = r.Length
	}
	raw, _ := hex.DecodeString(sha)
	tf, err := tufrepo.TargetFile(r.Target, length, raw, tufrepo.DirectorCustom(tufrepo.DirectorMeta{DeviceID: device, HardwareID: hw}))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*metadata.TargetFiles{r.Target: tf}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
