package keyset

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/tufrepo"
)

func TestInitWritesSelfSignedRootsAndRefusesToOverwrite(t *testing.T) {
	for _, alg := range []string{"ed25519", "ecdsa-p256"} {
		t.Run(alg, func(t *testing.T) {
			dir := t.TempDir()
			if err := Init(dir, Options{Alg: alg, RootKeys: 3, RootThreshold: 2}); err != nil {
				t.Fatal(err)
			}
			for _, repo := range []string{ImageRootFile, DirectorRootFile} {
				b, err := os.ReadFile(filepath.Join(dir, OnlineDir, repo))
				if err != nil {
					t.Fatal(err)
				}
				r, err := tufrepo.Parse[metadata.RootType](b)
				if err != nil {
					t.Fatal(err)
				}
				if err := tufrepo.Verify(r, tufrepo.Root, r); err != nil {
					t.Fatalf("%s: %v", repo, err)
				}
				if th := r.Signed.Roles[tufrepo.Root].Threshold; th != 2 {
					t.Fatalf("%s root threshold %d, want 2", repo, th)
				}
			}
			if _, err := LoadOnline(filepath.Join(dir, OnlineDir)); err != nil {
				t.Fatal(err)
			}
			// The offline keys never land in online/.
			if _, err := os.Stat(filepath.Join(dir, OnlineDir, ImageTargetsKey)); err == nil {
				t.Fatal("the image targets key is in online/")
			}
			if err := Init(dir, Options{}); err == nil {
				t.Fatal("Init overwrote an existing key set")
			}
		})
	}
}

func TestRotateChainsRootsAndRetiresOldKeys(t *testing.T) {
	dir := t.TempDir()
	if err := Init(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	v1b, _ := os.ReadFile(filepath.Join(dir, OnlineDir, ImageRootFile))
	v1, _ := tufrepo.Parse[metadata.RootType](v1b)
	v2b, err := Rotate(dir, RotateOptions{Repo: "image", NewKeys: 2, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := tufrepo.Parse[metadata.RootType](v2b)
	if err := tufrepo.VerifyRootUpdate(v1, v2); err != nil {
		t.Fatal(err)
	}
	v3b, err := Rotate(dir, RotateOptions{Repo: "image", NewKeys: 1, Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	v3, _ := tufrepo.Parse[metadata.RootType](v3b)
	if err := tufrepo.VerifyRootUpdate(v2, v3); err != nil {
		t.Fatalf("second rotation: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, OfflineDir, "retired-image-1", RootKeyFile("image", 1))); err != nil {
		t.Fatalf("old root key not retired: %v", err)
	}
	if _, err := Rotate(dir, RotateOptions{Repo: "nope"}); err == nil {
		t.Fatal("rotating an unknown repository succeeded")
	}
	if _, err := Rotate(dir, RotateOptions{Repo: "image", NewKeys: 1, Threshold: 2}); err == nil {
		t.Fatal("a threshold above the key count was accepted")
	}
}

func TestRotateRoleReplacesOneOnlineKey(t *testing.T) {
	dir := t.TempDir()
	if err := Init(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	v1b, _ := os.ReadFile(filepath.Join(dir, OnlineDir, DirectorRootFile))
	v1, _ := tufrepo.Parse[metadata.RootType](v1b)
	oldTS, err := LoadOnline(filepath.Join(dir, OnlineDir))
	if err != nil {
		t.Fatal(err)
	}
	v2b, err := RotateRole(dir, "director", tufrepo.Timestamp, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := tufrepo.Parse[metadata.RootType](v2b)
	if err := tufrepo.VerifyRootUpdate(v1, v2); err != nil {
		t.Fatal(err)
	}
	newTS, err := LoadOnline(filepath.Join(dir, OnlineDir))
	if err != nil {
		t.Fatal(err)
	}
	oldID, _ := oldTS.DirectorTimestamp.ID()
	newID, _ := newTS.DirectorTimestamp.ID()
	if ids := v2.Signed.Roles[tufrepo.Timestamp].KeyIDs; len(ids) != 1 || ids[0] != newID || newID == oldID {
		t.Fatalf("timestamp keys %v; want only the new key %s", ids, newID)
	}
	for _, role := range []string{tufrepo.Targets, tufrepo.Snapshot} {
		if a, b := v1.Signed.Roles[role].KeyIDs, v2.Signed.Roles[role].KeyIDs; len(a) != 1 || len(b) != 1 || a[0] != b[0] {
			t.Fatalf("%s keys changed: %v -> %v", role, a, b)
		}
	}
	if _, err := RotateRole(dir, "director", tufrepo.Root, "", time.Time{}); err == nil {
		t.Fatal("RotateRole accepted the root role")
	}
}
