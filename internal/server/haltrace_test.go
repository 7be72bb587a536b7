package server_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/store"
)

// TestCommitAfterHaltIsCountedAndKeepsTheNewRelease performs field
// failure 10: a deployment is halted while devices are mid-install. The
// old server counted a device that committed the release after the halt
// as cancelled and kept its director pointed at the release it ran
// before, which the agent refuses as a rollback. Now:
//   - the halt stops what has not started (a device that had not begun
//     stays cancelled and keeps v1);
//   - a device that commits v2 after the halt is counted committed in
//     the halted deployment, and its director lists v2, not v1;
//   - a device that rolls back after the halt is counted failed and keeps v1;
//   - an older commit arriving late never moves a director back.
func TestCommitAfterHaltIsCountedAndKeepsTheNewRelease(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	st := e.Server.Store()
	devs := e.fleet(t, 3)
	late, idle, sick := devs[0], devs[1], devs[2]
	v1, v2 := e.release(t, "1.0", 1, "hw1"), e.release(t, "2.0", 2, "hw1")
	ids := `["d00","d01","d02"]`
	first := e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":%s}`, v1, ids))
	oldCommit := map[string]report.Report{}
	for _, d := range devs {
		oldCommit[d.id] = d.rep(report.StateCommitted, v1)
		e.mustPost(t, d, oldCommit[d.id])
	}
	if v := e.view(t, first.ID); v.Status != store.DeployCompleted {
		t.Fatalf("first deployment %s", v.Status)
	}

	dep := e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":%s}`, v2, ids))
	e.mustPost(t, late, late.rep(report.StateInstalling, v2))
	e.mustPost(t, sick, sick.rep(report.StateRestarting, v2))
	if a := e.api(t, "POST", "/v1/deployments/"+dep.ID+"/halt", nil); a.code != 200 {
		t.Fatalf("halt: %s", a)
	}
	v := e.view(t, dep.ID)
	wantStatus(t, v, store.DevCancelled, "d00", "d01", "d02")
	for _, d := range devs {
		if got := directorTargets(t, st, d.id); !slices.Equal(got, []string{v1}) {
			t.Fatalf("%s after the halt: director lists %v, want what it runs (%s)", d.id, got, v1)
		}
	}

	// The mid-install devices finish after the halt.
	e.mustPost(t, late, late.rep(report.StateCommitted, v2))
	e.mustPost(t, sick, sick.rep(report.StateRolledBack, v2))
	v = e.view(t, dep.ID)
	if v.Status != store.DeployHalted {
		t.Fatalf("the halted deployment is %s", v.Status)
	}
	wantStatus(t, v, store.DevCommitted, "d00")
	wantStatus(t, v, store.DevCancelled, "d01")
	wantStatus(t, v, store.DevFailed, "d02")
	if got := directorTargets(t, st, late.id); !slices.Equal(got, []string{v2}) {
		t.Fatalf("d00 committed %s after the halt; its director lists %v (a rollback the agent refuses)", v2, got)
	}
	if dev, _ := st.Device(ctx, late.id); dev.Installed != v2 || dev.Assigned != v2 {
		t.Fatalf("d00: installed %q, assigned %q", dev.Installed, dev.Assigned)
	}
	for _, d := range []*device{idle, sick} {
		if got := directorTargets(t, st, d.id); !slices.Equal(got, []string{v1}) {
			t.Fatalf("%s: director lists %v, want %s", d.id, got, v1)
		}
	}

	// The old commit of v1, delivered again late (an outbox replay signed
	// anew with a new id but the old seq), does not move d00 back.
	stale := oldCommit[late.id]
	stale.ID = "00000000-0000-4000-8000-000000000001"
	e.mustPost(t, late, stale)
	if got := directorTargets(t, st, late.id); !slices.Equal(got, []string{v2}) {
		t.Fatalf("a stale commit moved d00's director to %v", got)
	}

	// The devices are free for the next deployment, which sees the truth.
	v3 := e.release(t, "3.0", 3, "hw1")
	next := e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":%s}`, v3, ids))
	wantStatus(t, next, store.DevAssigned, "d00", "d01", "d02")
}
