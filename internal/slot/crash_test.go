package slot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// step is one call an agent makes; a scenario is a chain of them, each a
// separate process life in reality.
type step struct {
	name string
	run  func(ctx context.Context, s *DirSlots) error
}

func stageStep(a artifact) step {
	return step{"stage " + a.meta.Version, func(ctx context.Context, s *DirSlots) error { return stage(ctx, s, a) }}
}

var (
	pendingStep  = step{"set pending", func(ctx context.Context, s *DirSlots) error { return s.SetPending(ctx) }}
	bootStep     = step{"boot", func(ctx context.Context, s *DirSlots) error { _, err := s.Boot(ctx); return err }}
	commitStep   = step{"commit", func(ctx context.Context, s *DirSlots) error { return s.Commit(ctx) }}
	rollbackStep = step{"rollback", func(ctx context.Context, s *DirSlots) error { return s.Rollback(ctx, "health check failed") }}
)

// runUntilCrash runs the steps with a hook that kills the "process" at
// durable file-system step number crashAt (-1: never). It returns the
// number of steps performed.
func runUntilCrash(t *testing.T, root string, maxBoots, crashAt int, steps []step) (ops int, crashed bool) {
	t.Helper()
	ctx := context.Background()
	s := mustOpen(t, root, maxBoots)
	s.hook = func(op string) error {
		if ops == crashAt {
			return fmt.Errorf("%w at %q", errCrashed, op)
		}
		ops++
		return nil
	}
	for _, st := range steps {
		if err := st.run(ctx, s); err != nil {
			if errors.Is(err, errCrashed) {
				return ops, true
			}
			t.Fatalf("%s failed without a crash: %v", st.name, err)
		}
	}
	return ops, false
}

// TestCrashAtEveryStepLeavesAVerifiedSlot kills the update at every
// durable file-system step of two update stories (and leaves the
// half-written files where they are), then restarts: OpenDir and Boot
// must run a slot whose tree matches its manifest, the never-committed
// version only on trial, and the device must still take a full update.
func TestCrashAtEveryStepLeavesAVerifiedSlot(t *testing.T) {
	const maxBoots = 2
	v1, v2, v3, v4 := newArtifact(t, "1.0.0"), newArtifact(t, "2.0.0"), newArtifact(t, "3.0.0"), newArtifact(t, "4.0.0")
	base, _ := installed(t, maxBoots, v1)
	stories := map[string][]step{
		// v2 hangs: boots run out and v1 comes back; then v3 is installed and committed.
		"boot loop then good update": {stageStep(v2), pendingStep, bootStep, bootStep, bootStep, stageStep(v3), pendingStep, bootStep, commitStep},
		// v2 fails its health check and is rolled back; v3 is installed over the rolled-back slot.
		"health failure then good update": {stageStep(v2), pendingStep, bootStep, rollbackStep, stageStep(v3), pendingStep, bootStep, commitStep},
	}
	for name, steps := range stories {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ref := filepath.Join(t.TempDir(), "ref")
			copyTree(t, base, ref)
			total, crashed := runUntilCrash(t, ref, maxBoots, -1, steps)
			if crashed || total < 20 {
				t.Fatalf("uncrashed run: %d steps, crashed %v", total, crashed)
			}
			for k := 0; k < total; k++ {
				root := filepath.Join(t.TempDir(), "slots")
				copyTree(t, base, root)
				if _, crashed := runUntilCrash(t, root, maxBoots, k, steps); !crashed {
					t.Fatalf("crash at step %d did not happen", k)
				}
				// The same crash, and then state.json is lost too: the previous state must do.
				corrupt := filepath.Join(t.TempDir(), "corrupt")
				copyTree(t, root, corrupt)
				must(t, os.WriteFile(filepath.Join(corrupt, stateName), []byte("{\"version\":"), 0o644))
				checkBoot(t, corrupt, maxBoots, k)
				checkRecovery(t, root, maxBoots, k, v4)
			}
		})
	}
}

// checkRecovery restarts after a crash, checks the booted slot, and then
// runs a whole update.
func checkRecovery(t *testing.T, root string, maxBoots, k int, next artifact) {
	t.Helper()
	ctx := context.Background()
	s, d := checkBoot(t, root, maxBoots, k)
	// The device still takes an update to its end.
	if d.Trial {
		must(t, s.Rollback(ctx, "resumed after crash"))
	}
	must(t, stage(ctx, s, next))
	must(t, s.SetPending(ctx))
	if d, err := s.Boot(ctx); err != nil || !d.Trial || d.Meta.Version != next.meta.Version {
		t.Fatalf("crash at step %d: update after recovery: %+v, %v", k, d, err)
	}
	must(t, s.Commit(ctx))
}

// checkBoot restarts after a crash: the booted slot must verify and be a
// version that may run, the never-committed 2.0.0 only on trial.
func checkBoot(t *testing.T, root string, maxBoots, k int) (*DirSlots, BootDecision) {
	t.Helper()
	ctx := context.Background()
	s, err := OpenDir(ctx, root, maxBoots)
	if err != nil {
		t.Fatalf("crash at step %d: OpenDir: %v", k, err)
	}
	d, err := s.Boot(ctx)
	if err != nil {
		t.Fatalf("crash at step %d: Boot: %v", k, err)
	}
	if d.Slot == "" {
		t.Fatalf("crash at step %d: nothing to boot", k)
	}
	if err := s.Verify(ctx, d.Slot); err != nil {
		t.Fatalf("crash at step %d: booted slot %s does not verify: %v", k, d.Slot, err)
	}
	switch d.Meta.Version {
	case "1.0.0", "3.0.0":
	case "2.0.0":
		if !d.Trial {
			t.Fatalf("crash at step %d: never-committed 2.0.0 runs as active", k)
		}
	default:
		t.Fatalf("crash at step %d: booted %+v", k, d)
	}
	return s, d
}
