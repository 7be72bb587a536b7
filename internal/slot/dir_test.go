package slot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/bundle"
)

func TestStagePendingBootCommit(t *testing.T) {
	ctx := context.Background()
	v1, v2 := newArtifact(t, "1.0.0"), newArtifact(t, "2.0.0")
	root, s := installed(t, 3, v1)

	d, err := s.Boot(ctx)
	must(t, err)
	if d.Slot != A || d.Trial || d.Meta.Version != "1.0.0" || d.Dir != filepath.Join(root, A) {
		t.Fatalf("boot after commit = %+v", d)
	}
	if in, _ := s.Inactive(ctx); in != B {
		t.Fatalf("inactive = %q, want b", in)
	}
	must(t, stage(ctx, s, v2))
	st, _ := s.State(ctx)
	if st.Active != A || st.Pending != "" || st.Slots[B].Version != "2.0.0" || st.Slots[B].InstalledAt.IsZero() {
		t.Fatalf("state after stage = %+v", st)
	}
	must(t, s.SetPending(ctx))
	d, err = s.Boot(ctx)
	must(t, err)
	if d.Slot != B || !d.Trial || d.BootCount != 1 || d.Meta.Version != "2.0.0" {
		t.Fatalf("trial boot = %+v", d)
	}
	b, err := os.ReadFile(filepath.Join(d.Dir, "current"))
	if err != nil || string(b) != "#!/bin/sh\necho 2.0.0\n" {
		t.Fatalf("slot b content = %q, %v", b, err)
	}
	must(t, s.Commit(ctx))
	st, _ = s.State(ctx)
	if st.Active != B || st.Pending != "" || st.BootCount != 0 {
		t.Fatalf("state after commit = %+v", st)
	}
	// A restart after the commit runs b without a trial.
	d, err = mustOpen(t, root, 3).Boot(ctx)
	must(t, err)
	if d.Slot != B || d.Trial {
		t.Fatalf("boot after restart = %+v", d)
	}
	if in, _ := s.Inactive(ctx); in != A {
		t.Fatalf("inactive = %q, want a", in)
	}
}

func TestBootCounterExhaustionRollsBackToPrevious(t *testing.T) {
	ctx := context.Background()
	v1, v2 := newArtifact(t, "1.0.0"), newArtifact(t, "2.0.0")
	root, s := installed(t, 2, v1)
	must(t, stage(ctx, s, v2))
	must(t, s.SetPending(ctx))
	for i := 1; i <= 2; i++ {
		// Each boot is a fresh process: the new version hangs before its health check.
		d, err := mustOpen(t, root, 2).Boot(ctx)
		must(t, err)
		if d.Slot != B || !d.Trial || d.BootCount != i {
			t.Fatalf("boot %d = %+v", i, d)
		}
	}
	d, err := mustOpen(t, root, 2).Boot(ctx)
	must(t, err)
	if !d.RolledBack || d.From != B || d.Slot != A || d.Trial || d.Meta.Version != "1.0.0" || !strings.Contains(d.Reason, "boot counter") {
		t.Fatalf("boot 3 = %+v, want a rollback to a", d)
	}
	st, _ := s.State(ctx)
	if st.Active != A || st.Pending != "" || st.RolledBack != B || st.RollbackReason == "" {
		t.Fatalf("state after rollback = %+v", st)
	}
	if err := s.Commit(ctx); !errors.Is(err, ErrNoPending) {
		t.Fatalf("commit after rollback: %v, want ErrNoPending", err)
	}
}

func TestHealthCheckFailureRollsBack(t *testing.T) {
	ctx := context.Background()
	v1, v2 := newArtifact(t, "1.0.0"), newArtifact(t, "2.0.0")
	_, s := installed(t, 3, v1)
	must(t, stage(ctx, s, v2))
	must(t, s.SetPending(ctx))
	if _, err := s.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	must(t, s.Rollback(ctx, "health check failed: exit status 1"))
	d, err := s.Boot(ctx)
	must(t, err)
	if d.Slot != A || d.Trial {
		t.Fatalf("boot after rollback = %+v", d)
	}
	st, _ := s.State(ctx)
	if st.RollbackReason != "health check failed: exit status 1" || st.RolledBack != B {
		t.Fatalf("state = %+v", st)
	}
}

func TestWrongDigestIsRefusedAndActiveSlotUntouched(t *testing.T) {
	ctx := context.Background()
	v1 := newArtifact(t, "1.0.0")
	for _, tc := range []struct {
		name   string
		mutate func(a *artifact)
	}{
		{"declared digest differs", func(a *artifact) { a.meta.SHA256 = strings.Repeat("0", 64) }},
		{"file changed after verification", func(a *artifact) {
			must(t, os.WriteFile(a.path, appBundle(t, "6.6.6"), 0o644))
		}},
		{"file longer than verified", func(a *artifact) {
			f, err := os.OpenFile(a.path, os.O_APPEND|os.O_WRONLY, 0)
			must(t, err)
			f.Write([]byte("trailing"))
			f.Close()
		}},
		{"file shorter than verified", func(a *artifact) { a.meta.Length += 10 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, s := installed(t, 3, v1)
			v2 := newArtifact(t, "2.0.0")
			tc.mutate(&v2)
			err := stage(ctx, s, v2)
			if !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("Stage error = %v, want ErrDigestMismatch", err)
			}
			st, _ := s.State(ctx)
			if _, ok := st.Slots[B]; ok || st.Active != A || st.Pending != "" {
				t.Fatalf("state after refused stage = %+v", st)
			}
			if _, err := os.Lstat(filepath.Join(root, B)); !os.IsNotExist(err) {
				t.Fatalf("slot b exists after refused stage: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(root, stagingPfx+B)); !os.IsNotExist(err) {
				t.Fatalf("staging left behind: %v", err)
			}
			if err := s.SetPending(ctx); !errors.Is(err, ErrNotInstalled) {
				t.Fatalf("SetPending after refused stage: %v, want ErrNotInstalled", err)
			}
			must(t, s.Verify(ctx, A))
			d, err := s.Boot(ctx)
			if err != nil || d.Slot != A || d.Meta.Version != "1.0.0" {
				t.Fatalf("boot = %+v, %v", d, err)
			}
		})
	}
}

// The artifact file is read through the open descriptor from offset 0:
// its path may be gone and its offset anywhere.
func TestStageReadsTheOpenFileFromOffsetZero(t *testing.T) {
	ctx := context.Background()
	v1 := newArtifact(t, "1.0.0")
	_, s := installed(t, 3, v1)
	v2 := newArtifact(t, "2.0.0")
	f, err := os.Open(v2.path)
	must(t, err)
	defer f.Close()
	must(t, os.Remove(v2.path))
	must(t, os.WriteFile(v2.path, appBundle(t, "6.6.6"), 0o644)) // a different file now sits at the path
	if _, err := f.Seek(0, 2); err != nil {
		t.Fatal(err)
	}
	must(t, s.Stage(ctx, f, v2.meta))
	must(t, s.Verify(ctx, B))
	b, err := os.ReadFile(filepath.Join(s.Dir(B), "etc/app.conf"))
	if err != nil || string(b) != "version=2.0.0\n" {
		t.Fatalf("staged content = %q, %v", b, err)
	}
}

func TestUnsafeBundleIsRefusedAndSlotLeftEmpty(t *testing.T) {
	ctx := context.Background()
	_, s := installed(t, 3, newArtifact(t, "1.0.0"))
	evil := writeArtifact(t, t.TempDir(), "2.0.0", buildBundle(t, tent{typ: '0', name: "../../escape", body: "x", mode: 0o644}))
	err := stage(ctx, s, evil)
	if !errors.Is(err, bundle.ErrUnsafeEntry) {
		t.Fatalf("Stage error = %v, want bundle.ErrUnsafeEntry", err)
	}
	st, _ := s.State(ctx)
	if _, ok := st.Slots[B]; ok {
		t.Fatal("slot b recorded after a refused bundle")
	}
}

func TestUnsupportedArtifactTypeIsRefused(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir(), 3)
	a := newArtifact(t, "1.0.0")
	a.meta.ArtifactType = "rootfs-image"
	if err := stage(ctx, s, a); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Stage error = %v, want ErrUnsupported", err)
	}
	if CheckArtifactType("bundle") != nil || !errors.Is(CheckArtifactType("delta"), ErrUnsupported) {
		t.Fatal("CheckArtifactType")
	}
}

func TestStageWhilePendingIsRefused(t *testing.T) {
	ctx := context.Background()
	_, s := installed(t, 3, newArtifact(t, "1.0.0"))
	must(t, stage(ctx, s, newArtifact(t, "2.0.0")))
	must(t, s.SetPending(ctx))
	if err := stage(ctx, s, newArtifact(t, "3.0.0")); !errors.Is(err, ErrPending) {
		t.Fatalf("Stage while pending: %v, want ErrPending", err)
	}
	if err := s.SetPending(ctx); !errors.Is(err, ErrPending) {
		t.Fatalf("SetPending while pending: %v, want ErrPending", err)
	}
}

func TestBadMetaIsRefused(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir(), 3)
	for _, mut := range []func(*Meta){
		func(m *Meta) { m.SHA256 = strings.ToUpper(m.SHA256) },
		func(m *Meta) { m.Length = 0 },
		func(m *Meta) { m.Name = strings.Repeat("n", 300) },
	} {
		a := newArtifact(t, "1.0.0")
		mut(&a.meta)
		if err := stage(ctx, s, a); !errors.Is(err, ErrBadMeta) {
			t.Fatalf("Stage error = %v, want ErrBadMeta", err)
		}
	}
}

func TestFreshDeviceBootsNothingAndFirstRollbackLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir(), 1)
	d, err := s.Boot(ctx)
	if err != nil || d.Slot != "" {
		t.Fatalf("fresh boot = %+v, %v", d, err)
	}
	must(t, stage(ctx, s, newArtifact(t, "1.0.0")))
	must(t, s.SetPending(ctx))
	if d, _ := s.Boot(ctx); d.Slot != A || !d.Trial {
		t.Fatalf("trial = %+v", d)
	}
	d, err = s.Boot(ctx) // second boot with maxBoots 1: rolled back
	if err != nil || !d.RolledBack || d.Slot != "" {
		t.Fatalf("boot = %+v, %v", d, err)
	}
}

func TestStagingLeftoversAreRemovedAtOpen(t *testing.T) {
	root, _ := installed(t, 3, newArtifact(t, "1.0.0"))
	must(t, os.MkdirAll(filepath.Join(root, stagingPfx+B, "half"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, stagingPfx+B, "half", "written"), []byte("x"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, ".state.json.tmp"), []byte("{"), 0o644))
	s := mustOpen(t, root, 3)
	for _, n := range []string{stagingPfx + B, ".state.json.tmp"} {
		if _, err := os.Lstat(filepath.Join(root, n)); !os.IsNotExist(err) {
			t.Fatalf("%s survived OpenDir: %v", n, err)
		}
	}
	must(t, s.Verify(context.Background(), A))
}

func TestCorruptStateFallsBackToPrev(t *testing.T) {
	ctx := context.Background()
	v1, v2 := newArtifact(t, "1.0.0"), newArtifact(t, "2.0.0")
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"garbage", []byte("\x00\x01garbage")},
		{"truncated", nil}, // filled below
		{"empty", []byte{}},
		{"unknown field", []byte(`{"version":1,"active":"a","pending":"","boot_count":0,"max_boots":3,"slots":{},"evil":1}`)},
		{"bad slot name", []byte(`{"version":1,"active":"../x","pending":"","boot_count":0,"max_boots":3,"slots":{}}`)},
		{"oversize", []byte(strings.Repeat(" ", MaxStateBytes+1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, s := installed(t, 3, v1)
			must(t, stage(ctx, s, v2))
			// state.json names b's contents; state.json.prev does not.
			cur, err := os.ReadFile(filepath.Join(root, stateName))
			must(t, err)
			data := tc.data
			if tc.name == "truncated" {
				data = cur[:len(cur)/2]
			}
			must(t, os.WriteFile(filepath.Join(root, stateName), data, 0o644))
			s2 := mustOpen(t, root, 3)
			st, err := s2.State(ctx)
			must(t, err)
			if st.Active != A || st.Slots[A].Version != "1.0.0" {
				t.Fatalf("state after fallback = %+v", st)
			}
			d, err := s2.Boot(ctx)
			if err != nil || d.Slot != A {
				t.Fatalf("boot after fallback = %+v, %v", d, err)
			}
			// The next save repairs state.json from the good state.
			must(t, stage(ctx, s2, v2))
			b, _ := os.ReadFile(filepath.Join(root, stateName))
			if _, err := ParseState(b); err != nil {
				t.Fatalf("state.json not repaired: %v", err)
			}
		})
	}
}

func TestBothStateFilesCorruptIsAClearError(t *testing.T) {
	root, _ := installed(t, 3, newArtifact(t, "1.0.0"))
	must(t, os.WriteFile(filepath.Join(root, stateName), []byte("{"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, prevName), []byte("}"), 0o644))
	_, err := OpenDir(context.Background(), root, 3)
	var se *StateError
	if !errors.As(err, &se) || !errors.Is(err, ErrBadState) || !strings.Contains(err.Error(), "restore") {
		t.Fatalf("OpenDir error = %v, want a StateError that says what to do", err)
	}
}

func TestOpenDirRejectsBadMaxBoots(t *testing.T) {
	for _, n := range []int{0, -1, MaxBootsLimit + 1} {
		if _, err := OpenDir(context.Background(), t.TempDir(), n); err == nil {
			t.Fatalf("maxBoots %d accepted", n)
		}
	}
}
