package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
)

// installSteps are the named steps of an install, in order.
var installSteps = []string{agent.StepDownloaded, agent.StepStaged, agent.StepPending, agent.StepBooted, agent.StepHealthy, agent.StepCommitted}

// TestCrashAtEveryInstallStep kills the agent process with SIGKILL at each
// named step of installing v2 over a running v1, restarts it, and requires
// that it settles: a committed slot that verifies and holds v2 (or, for a
// crash during the trial boot, either v2 committed or a clean rollback to
// v1), nothing pending, a server history ending in the matching report,
// no report id stored twice and no sequence number reused, the artifact
// downloaded once, and no module outliving its agent.
func TestCrashAtEveryInstallStep(t *testing.T) {
	needBinary(t)
	for _, step := range installSteps {
		t.Run(step, func(t *testing.T) { crashAt(t, step, 0) })
	}
	// With one boot allowed, the boot after a crash during the trial boot
	// exhausts the counter: the agent must roll back to v1, report it and
	// not try v2 again.
	for _, step := range []string{agent.StepBooted, agent.StepHealthy} {
		t.Run(step+"-max-boots-1", func(t *testing.T) { crashAt(t, step, 1) })
	}
}

func crashAt(t *testing.T, step string, maxBoots int) {
	var arts artifactLog
	b := testbed.New(t, testbed.Options{Front: arts.front})
	dev := newDevice(t, b, "dev-1")
	if maxBoots != 0 {
		dev.cfg.MaxBoots = maxBoots
		dev.path = writeConfig(t, b.Dir, dev.cfg)
	}
	dev.enroll(t)

	// v1 first, so that a module runs when v2 arrives and a rollback has
	// somewhere to go.
	v1 := b.Release(b.ScriptBundle("1.0.0", true, 4<<10), "1.0.0", 1, "board-a")
	b.Deploy(v1.Target, dev.id)
	a := dev.start(t, "")
	waitLast(t, b, dev.id, 30*time.Second, "v1 committed", isReport("committed", v1.Target))
	a.stop(10 * time.Second)

	// Released and deployed before the agent starts: a deployment made
	// while the agent refreshes can be missed (see settle).
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 4<<10), "2.0.0", 2, "board-a")
	b.Deploy(v2.Target, dev.id)
	a = dev.start(t, step)
	a.waitLine(regexp.MustCompile(`^ZTOTA-HALTED `+regexp.QuoteMeta(step)+`$`), 30*time.Second)
	modules := a.killAgentOnly()
	if step != agent.StepBooted && len(modules) == 0 {
		t.Errorf("no module process found under the agent halted at %s; a module should be running there", step)
	}
	for _, pid := range modules {
		deadline := time.Now().Add(3 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("module process %d outlived its SIGKILLed agent by 3s", pid)
		}
		syscall.Kill(-pid, syscall.SIGKILL)
	}

	a = dev.start(t, "")
	settled := func(r store.Report) bool {
		return r.Target == v2.Target && (r.State == "committed" || r.State == "rolled-back")
	}
	waitLast(t, b, dev.id, 30*time.Second, "v2 committed or rolled back", settled)
	// A few poll intervals more: a settled agent installs nothing again.
	time.Sleep(time.Second)
	if n := len(childGroups(a.cmd.Process.Pid)); n != 1 {
		t.Errorf("the settled agent supervises %d module processes; want 1", n)
	}
	a.stop(10 * time.Second)

	h := b.History(dev.id)
	checkHistory(t, dev.id, h)
	last := h[len(h)-1]
	states := statesOf(h, v2.Target)
	t.Logf("crash at %s: v2 reports %v", step, states)
	trial := step == agent.StepBooted || step == agent.StepHealthy
	mustRollBack := trial && maxBoots == 1
	switch {
	case last.Target == v2.Target && last.State == "committed" && !mustRollBack:
		st := checkSlots(t, dev.cfg.DataDir, v2.SHA256)
		if m := st.Slots[st.Active]; m.Target != last.Target || m.Version != last.Version {
			t.Errorf("last report names %s %s, the active slot holds %s %s", last.Target, last.Version, m.Target, m.Version)
		}
		if n := count(states, "committed"); n != 1 {
			t.Errorf("v2 reported committed %d times; want once", n)
		}
		wantInstalled(t, b, dev.id, v2.Target)
	case last.Target == v2.Target && last.State == "rolled-back" && trial:
		checkSlots(t, dev.cfg.DataDir, v1.SHA256)
		if n := count(states, "rolled-back"); n != 1 {
			t.Errorf("v2 reported rolled-back %d times; want once", n)
		}
		if count(states, "committed") != 0 {
			t.Errorf("v2 reported committed, then rolled back: %v", states)
		}
		if mustRollBack && !strings.Contains(last.Detail, "boot counter") {
			t.Errorf("rolled-back report says %q; want the exhausted boot counter named", last.Detail)
		}
		wantInstalled(t, b, dev.id, v1.Target)
	default:
		want := "v2 committed"
		if mustRollBack {
			want = "v2 rolled back"
		}
		t.Fatalf("after a crash at %s the last report is %s for %s; want %s", step, last.State, last.Target, want)
	}
	if n := len(arts.requests(v2.SHA256)); n != 1 {
		t.Errorf("v2 was requested %d times; a complete download kept across the crash must not be fetched again", n)
	}
	t.Run("download removed", func(t *testing.T) {
		left := dev.downloads(t)
		if len(left) != 0 {
			t.Errorf("download directory still holds %v after the install settled", left)
		}
	})
}

// TestCrashMidDownloadResumesWithRange kills the agent while a throttled
// artifact streams in, and requires the restarted agent to resume from
// exactly the bytes it kept (Range: bytes=N-, 206) and commit a slot that
// verifies.
func TestCrashMidDownloadResumesWithRange(t *testing.T) {
	m := startMidDownload(t)
	arts, b, dev, r, a := m.arts, m.b, m.dev, m.r, m.a
	a.kill()
	held := m.held(t, "killed")

	arts.throttle.Store(false)
	a = dev.start(t, "")
	waitLast(t, b, dev.id, 30*time.Second, "committed", isReport("committed", r.Target))
	a.stop(10 * time.Second)

	reqs := arts.requests(r.SHA256)
	t.Logf("killed holding %d of %d bytes; artifact requests: %+v", held, r.Length, reqs)
	if len(reqs) != 2 {
		t.Fatalf("artifact requests %+v; want the interrupted one and one resumption", reqs)
	}
	if reqs[0].rng != "" {
		t.Errorf("first request asked for range %q; the agent held nothing then", reqs[0].rng)
	}
	want := "bytes=" + strconv.FormatInt(held, 10) + "-"
	if reqs[1].rng != want || reqs[1].status != 206 || reqs[1].sent != r.Length-held {
		t.Errorf("resumption: Range %q, status %d, %d bytes sent; want Range %q, 206, %d bytes", reqs[1].rng, reqs[1].status, reqs[1].sent, want, r.Length-held)
	}
	checkSlots(t, dev.cfg.DataDir, r.SHA256)
	h := b.History(dev.id)
	checkHistory(t, dev.id, h)
	if s := statesOf(h, r.Target); s[len(s)-1] != "committed" || count(s, "committed") != 1 {
		t.Errorf("states %v; want one committed, last", s)
	}
	if left := dev.downloads(t); len(left) != 0 {
		t.Errorf("download directory still holds %v after the install", left)
	}
}

// wantInstalled requires the server to record target as what dev runs.
func wantInstalled(t *testing.T, b *testbed.Bed, dev, target string) {
	t.Helper()
	d, err := b.Server.Store().Device(testbed.Ctx(t), dev)
	if err != nil {
		t.Fatal(err)
	}
	if d.Installed != target {
		t.Errorf("the server records %s as running %q, want %q", dev, d.Installed, target)
	}
}
