package agent_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/testbed"
)

// TestReportsSurviveServerOutageAndAgentRestart: while the server refuses
// report uploads, the device installs a release and is restarted; once the
// server is back every report arrives exactly once, in sequence.
func TestReportsSurviveServerOutageAndAgentRestart(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	cfg := b.AgentConfig("dev-1", "board-a")
	a := b.Agent(cfg)
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/reports") {
			http.Error(w, "database restarting", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	r := b.Release(b.ScriptBundle("1.0.0", true, 64), "1.0.0", 1, "board-a")
	b.Deploy(r.Target, "dev-1")
	if err := a.Cycle(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(b.History("dev-1")); n != 0 {
		t.Fatalf("%d reports stored while the server refused them", n)
	}
	// The device restarts (its outbox is on disk).
	a.Close()
	a2 := b.Agent(cfg) // the restart
	f.clear()
	testbed.WaitFor(t, 15*time.Second, "the queued reports", func() bool {
		a2.FlushReports(testbed.Ctx(t))
		h := b.History("dev-1")
		return len(h) > 0 && h[len(h)-1].State == "committed"
	})
	h := b.History("dev-1")
	seen := map[string]bool{}
	for i, rep := range h {
		if seen[rep.ID] {
			t.Fatalf("report %s stored twice", rep.ID)
		}
		seen[rep.ID] = true
		if rep.Seq != uint64(i+1) {
			t.Fatalf("report %d has seq %d: a report was lost or reordered (%v)", i, rep.Seq, b.States("dev-1"))
		}
	}
}

// TestCrashedModuleIsRestartedBySupervisor: the supervised module dies;
// the agent starts it again from the committed slot.
func TestCrashedModuleIsRestartedBySupervisor(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	cfg := b.AgentConfig("dev-1", "board-a")
	a, err := agent.New(testbed.Ctx(t), cfg, b.Log)
	if err != nil {
		t.Fatal(err)
	}
	r := b.Release(b.ScriptBundle("1.0.0", true, 64), "1.0.0", 1, "board-a")
	ctx, cancel := contextWithCancel(t)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	testbed.WaitFor(t, 10*time.Second, "enrollment", func() bool {
		_, err := b.Server.Store().Device(testbed.Ctx(t), "dev-1")
		return err == nil
	})
	b.Deploy(r.Target, "dev-1")
	testbed.WaitFor(t, 20*time.Second, "v1 committed", func() bool { return hasState(b, "dev-1", "committed") })
	pid := a.ModulePID()
	if pid == 0 {
		t.Fatal("no module running after the commit")
	}
	killProcess(t, pid)
	testbed.WaitFor(t, 10*time.Second, "the module restarted", func() bool {
		p := a.ModulePID()
		return p != 0 && p != pid
	})
	cancel()
	<-done
}

// TestFullDiskRefusesEarlyAndRetries: with too little space for the new
// release the agent refuses before downloading, keeps v1, reports it,
// and installs once space is freed.
func TestFullDiskRefusesEarlyAndRetries(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	v1 := installV1(t, b, a, "dev-1")
	var free atomic.Uint64
	free.Store(1 << 20)
	agent.SetFreeSpace(a, func(string) (uint64, error) { return free.Load(), nil })
	var fetched atomic.Int32
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/image/targets/") {
			fetched.Add(1)
		}
		return false
	})
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 2<<20), "2.0.0", 2, "board-a")
	b.Deploy(v2.Target, "dev-1")
	err := a.Cycle(testbed.Ctx(t))
	refusedWith(t, b, a, "dev-1", err, "failed", "not enough free disk space", v1.SHA256)
	if n := fetched.Load(); n != 0 {
		t.Fatalf("the artifact was requested %d times with the disk full", n)
	}
	free.Store(1 << 40)
	testbed.CycleInstalls(t, a, v2.SHA256, "after space was freed")
}

// TestTamperedActiveSlotIsNotRunAndIsReported: a file of the committed
// slot is changed while the agent is down; at start the agent refuses to
// run it, says so, and heals by installing the assigned release again.
func TestTamperedActiveSlotIsNotRunAndIsReported(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	cfg := b.AgentConfig("dev-1", "board-a")
	a := b.Agent(cfg)
	installV1(t, b, a, "dev-1")
	st, err := a.SlotState(testbed.Ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	app := filepath.Join(cfg.DataDir, "slots", st.Active, "bin", "app")
	if err := os.WriteFile(app, []byte("#!/bin/sh\necho owned\nsleep 100\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	a2, err := agent.New(testbed.Ctx(t), cfg, b.Log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a2.Close() })
	if err := a2.Start(testbed.Ctx(t)); err == nil {
		t.Fatal("the agent started a tampered slot")
	}
	if pid := a2.ModulePID(); pid != 0 {
		t.Fatalf("a module runs (pid %d) from a tampered slot", pid)
	}
	detail := lastReport(t, b, a2, "dev-1", "failed")
	if !strings.Contains(detail, "differ from what was staged") {
		t.Fatalf("failed report says %q; want the tampering named", detail)
	}
	if err := a2.Cycle(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	healed, err := a2.SlotState(testbed.Ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if healed.Active == st.Active || healed.Slots[healed.Active].SHA256 != st.Slots[st.Active].SHA256 {
		t.Fatalf("after healing: %+v; want the same release committed in the other slot", healed)
	}
	if a2.ModulePID() == 0 {
		t.Fatal("no module runs after healing")
	}
}
