package keyset

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/tufrepo"
)

// TestRotateImageTargetsKey rotates the integrator's offline targets key
// (refused outright before): the new image root names only the new key, is
// signed by the current image root keys, leaves the other roles alone; the
// new key replaces offline/image-targets.key and the old one is kept where
// RetiredTargetsKeys finds it.
func TestRotateImageTargetsKey(t *testing.T) {
	dir := t.TempDir()
	if err := Init(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, RoleKeyFile("image", tufrepo.Targets))
	old, err := keys.Load(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	oldID, _ := old.ID()
	rec, err := os.ReadFile(filepath.Join(dir, ImageTargetsRecord))
	if err != nil {
		t.Fatalf("Init kept no record of the targets it signed: %v", err)
	}
	if initial, _ := os.ReadFile(filepath.Join(dir, OnlineDir, ImageTargetsFile)); string(initial) != string(rec) {
		t.Fatal("the record is not the initial image targets")
	}
	v1b, _ := os.ReadFile(filepath.Join(dir, OnlineDir, ImageRootFile))
	v1, _ := tufrepo.Parse[metadata.RootType](v1b)

	v2b, err := RotateRole(dir, "image", tufrepo.Targets, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := tufrepo.Parse[metadata.RootType](v2b)
	if err := tufrepo.VerifyRootUpdate(v1, v2); err != nil {
		t.Fatalf("the new image root does not chain from v1: %v", err)
	}
	nk, err := keys.Load(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	newID, _ := nk.ID()
	if ids := v2.Signed.Roles[tufrepo.Targets].KeyIDs; len(ids) != 1 || ids[0] != newID || newID == oldID {
		t.Fatalf("image targets keys %v; want only the new key %s (old %s)", ids, newID, oldID)
	}
	for _, role := range []string{tufrepo.Root, tufrepo.Snapshot, tufrepo.Timestamp} {
		if a, b := v1.Signed.Roles[role].KeyIDs, v2.Signed.Roles[role].KeyIDs; len(a) != 1 || len(b) != 1 || a[0] != b[0] {
			t.Fatalf("%s keys changed: %v -> %v", role, a, b)
		}
	}
	if cur, err := CurrentRoot(dir, "image"); err != nil || string(cur) != string(v2b) {
		t.Fatalf("CurrentRoot is not the new root (%v)", err)
	}
	// A second rotation retires the second key; newest retired first.
	if _, err := RotateRole(dir, "image", tufrepo.Targets, "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	retired, err := RetiredTargetsKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(retired) != 2 {
		t.Fatalf("%d retired targets keys, want 2", len(retired))
	}
	if id, _ := retired[0].ID(); id != newID {
		t.Fatalf("newest retired key %s, want %s", id, newID)
	}
	if id, _ := retired[1].ID(); id != oldID {
		t.Fatalf("oldest retired key %s, want %s", id, oldID)
	}
}
