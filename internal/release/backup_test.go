package release

import (
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/tufrepo"
)

func targetsWith(t *testing.T, metas ...tufrepo.ImageMeta) *metadata.Metadata[metadata.TargetsType] {
	t.Helper()
	md := metadata.Targets(time.Now().Add(time.Hour))
	for _, m := range metas {
		m.ArtifactType = tufrepo.ArtifactBundle
		p := tufrepo.TargetPath(m.Name, m.Version, "a.tar")
		tf, err := tufrepo.TargetFile(p, 10, make([]byte, 32), tufrepo.ImageCustom(m))
		if err != nil {
			t.Fatal(err)
		}
		md.Signed.Targets[p] = tf
	}
	return md
}

func TestResolveBackup(t *testing.T) {
	base := targetsWith(t,
		tufrepo.ImageMeta{Name: "app", Version: "0.9.0", ReleaseCounter: 9, HardwareIDs: []string{"board-a", "board-b"}, Module: "app"},
		tufrepo.ImageMeta{Name: "app", Version: "0.8.0", ReleaseCounter: 8, HardwareIDs: []string{"board-a"}, Module: "app"},
		tufrepo.ImageMeta{Name: "sensor", Version: "1.0.0", ReleaseCounter: 1, HardwareIDs: []string{"board-a"}, Module: "sensor"},
	)
	rel := tufrepo.ImageMeta{Name: "app", Version: "1.0.0", ReleaseCounter: 10, HardwareIDs: []string{"board-a", "board-b"}, Module: "app"}

	for _, name := range []string{"app@0.9.0", "app/0.9.0/a.tar"} {
		m := rel
		m.Backup = name
		got, err := resolveBackup(base, m)
		if err != nil || got != "app/0.9.0/a.tar" {
			t.Fatalf("%s: got %q, %v", name, got, err)
		}
	}
	for name, want := range map[string]string{
		"sensor@1.0.0": "same module",
		"app@0.8.0":    "does not support hardware",
		"app@0.7.0":    "no such release",
		"app@1.0.0":    "no such release", // not yet in base
	} {
		m := rel
		m.Backup = name
		if _, err := resolveBackup(base, m); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: got %v, want %q", name, err, want)
		}
	}
	// A re-release of the same name and version naming itself.
	self := targetsWith(t, rel)
	m := rel
	m.Backup = "app@1.0.0"
	if _, err := resolveBackup(self, m); err == nil || !strings.Contains(err.Error(), "own backup") {
		t.Fatalf("self backup: %v", err)
	}
	if got, err := resolveBackup(base, rel); err != nil || got != "" {
		t.Fatalf("no backup: %q %v", got, err)
	}
}
