package agent_test

import (
	"testing"
	"time"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/testbed"
)

// TestInstallCommitsAndReportsEveryStep is the happy path: one release,
// one device, every transition reported in order.
func TestInstallCommitsAndReportsEveryStep(t *testing.T) {
	b := testbed.New(t, testbed.Options{})
	a := b.Agent(b.AgentConfig("dev-1", "board-a"))
	r := b.Release(b.ScriptBundle("1.0.0", true, 1<<16), "1.0.0", 1, "board-a")
	b.Deploy(r.Target, "dev-1")
	ctx := testbed.Ctx(t)
	if err := a.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := a.SlotState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Active == "" || st.Slots[st.Active].SHA256 != r.SHA256 || st.Pending != "" {
		t.Fatalf("slot state after install: %+v", st)
	}
	a.FlushReports(ctx)
	testbed.WaitFor(t, 5*time.Second, "committed report", func() bool {
		s := b.States("dev-1")
		return len(s) > 0 && s[len(s)-1] == "committed"
	})
	got := collapse(b.States("dev-1"))
	want := []string{"downloading", "verifying", "installing", "restarting", "health-checking", "committed"}
	if len(got) != len(want) {
		t.Fatalf("states %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("states %v, want %v", got, want)
		}
	}
	d, err := b.Server.Store().Device(ctx, "dev-1")
	if err != nil {
		t.Fatal(err)
	}
	if d.Installed != r.Target {
		t.Fatalf("server thinks dev-1 runs %q, want %q", d.Installed, r.Target)
	}
}

// collapse folds runs of the same state (progress reports) into one.
func collapse(states []string) []string {
	var out []string
	for _, s := range states {
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

// TestECDSAKeysWorkEndToEnd: the whole path with ECDSA P-256 repository keys.
func TestECDSAKeysWorkEndToEnd(t *testing.T) {
	b := testbed.New(t, testbed.Options{Keys: keyset.Options{Alg: keys.ECDSAP256}})
	a := b.Agent(b.AgentConfig("dev-1", "board-a"))
	r := b.Release(b.ScriptBundle("1.0.0", true, 64), "1.0.0", 1, "board-a")
	b.Deploy(r.Target, "dev-1")
	if err := a.Cycle(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	st, err := a.SlotState(testbed.Ctx(t))
	if err != nil || st.Slots[st.Active].SHA256 != r.SHA256 {
		t.Fatalf("slot state %+v, %v", st, err)
	}
}
