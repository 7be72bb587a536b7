package slot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTamperedSlotIsDetectedByVerify(t *testing.T) {
	ctx := context.Background()
	v1 := newArtifact(t, "1.0.0")
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, root, dir string)
	}{
		{"file content changed", func(t *testing.T, _, dir string) {
			p := filepath.Join(dir, "bin/app")
			must(t, os.Chmod(p, 0o755))
			must(t, os.WriteFile(p, []byte("#!/bin/sh\necho pwned\n"), 0o755))
		}},
		{"same size content changed", func(t *testing.T, _, dir string) {
			p := filepath.Join(dir, "etc/app.conf")
			must(t, os.Chmod(p, 0o644))
			must(t, os.WriteFile(p, []byte("version=6.6.6\n"), 0o644))
		}},
		{"mode changed to setuid", func(t *testing.T, _, dir string) {
			must(t, os.Chmod(filepath.Join(dir, "bin/app"), os.ModeSetuid|0o755))
		}},
		{"file added", func(t *testing.T, _, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "bin/backdoor"), []byte("x"), 0o755))
		}},
		{"file removed", func(t *testing.T, _, dir string) {
			must(t, os.Remove(filepath.Join(dir, "etc/app.conf")))
		}},
		{"symlink retargeted", func(t *testing.T, _, dir string) {
			must(t, os.Remove(filepath.Join(dir, "current")))
			must(t, os.Symlink("/bin/sh", filepath.Join(dir, "current")))
		}},
		{"file replaced by symlink", func(t *testing.T, _, dir string) {
			must(t, os.Remove(filepath.Join(dir, "etc/app.conf")))
			must(t, os.Symlink("/etc/passwd", filepath.Join(dir, "etc/app.conf")))
		}},
		{"slot directory replaced by symlink", func(t *testing.T, root, dir string) {
			must(t, os.Rename(dir, filepath.Join(root, "elsewhere")))
			must(t, os.Symlink("elsewhere", dir))
		}},
		{"manifest rewritten for another artifact", func(t *testing.T, root, _ string) {
			p := filepath.Join(root, manifestName(A))
			b, err := os.ReadFile(p)
			must(t, err)
			m, err := ParseManifest(b)
			must(t, err)
			m.ArtifactSHA256 = strings.Repeat("1", 64)
			b, _ = marshalManifest(m)
			must(t, os.WriteFile(p, b, 0o644))
		}},
		{"manifest removed", func(t *testing.T, root, _ string) {
			must(t, os.Remove(filepath.Join(root, manifestName(A))))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, s := installed(t, 3, v1)
			must(t, s.Verify(ctx, A))
			tc.tamper(t, root, s.Dir(A))
			err := s.Verify(ctx, A)
			var te *TamperedError
			if !errors.As(err, &te) || !errors.Is(err, ErrTampered) || te.Slot != A {
				t.Fatalf("Verify = %v, want a TamperedError for slot a", err)
			}
			// Boot refuses to run a tampered active slot.
			if d, err := s.Boot(ctx); !errors.Is(err, ErrTampered) {
				t.Fatalf("Boot = %+v, %v; want ErrTampered", d, err)
			}
		})
	}
}

func TestTamperedPendingSlotIsRolledBackAtBoot(t *testing.T) {
	ctx := context.Background()
	_, s := installed(t, 3, newArtifact(t, "1.0.0"))
	must(t, stage(ctx, s, newArtifact(t, "2.0.0")))
	must(t, s.SetPending(ctx))
	must(t, os.WriteFile(filepath.Join(s.Dir(B), "bin/planted"), []byte("x"), 0o755))
	d, err := s.Boot(ctx)
	must(t, err)
	if !d.RolledBack || d.From != B || d.Slot != A || !strings.Contains(d.Reason, "verification") {
		t.Fatalf("boot = %+v, want a rollback from the tampered slot b", d)
	}
}

func TestTamperedInactiveSlotCannotBeSetPending(t *testing.T) {
	ctx := context.Background()
	_, s := installed(t, 3, newArtifact(t, "1.0.0"))
	must(t, stage(ctx, s, newArtifact(t, "2.0.0")))
	must(t, os.Remove(filepath.Join(s.Dir(B), "current")))
	if err := s.SetPending(ctx); !errors.Is(err, ErrTampered) {
		t.Fatalf("SetPending = %v, want ErrTampered", err)
	}
}

func TestVerifyUnknownOrEmptySlot(t *testing.T) {
	ctx := context.Background()
	_, s := installed(t, 3, newArtifact(t, "1.0.0"))
	if err := s.Verify(ctx, B); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Verify(b) = %v, want ErrNotInstalled", err)
	}
	if err := s.Verify(ctx, "../a"); err == nil {
		t.Fatal("Verify accepted a bad slot name")
	}
	if s.Dir("../a") != "" {
		t.Fatal("Dir accepted a bad slot name")
	}
}
