package tufclient

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/tufrepo"
)

// bindTo names device in the repository's targets, snapshot and timestamp
// ("" removes the field) before the next publish.
func (r *testRepo) bindTo(device string) {
	for _, f := range []*map[string]any{&r.targets.Signed.UnrecognizedFields, &r.snapshot.Signed.UnrecognizedFields, &r.timestamp.Signed.UnrecognizedFields} {
		if *f == nil {
			*f = map[string]any{}
		}
		if device == "" {
			delete(*f, tufrepo.DeviceField)
		} else {
			(*f)[tufrepo.DeviceField] = device
		}
	}
}

// trustedFiles reads the metadata the client trusts, by file name.
func trustedFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, n := range []string{"root.json", "timestamp.json", "snapshot.json", "targets.json"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		out[n] = b
	}
	return out
}

// TestOtherDevicesDirectorMetadataIsRefusedBeforeTrust performs the
// freeze attack on the client alone: device A's director is answered with
// device B's validly signed documents at far higher versions (and then
// with unbound ones). A refuses each as a download error wrapping
// tufrepo.ErrNotForDevice, its trusted metadata directory stays byte for
// byte what it was, and when A's own documents come back (at versions
// below B's) A accepts them: it was never frozen. Without the device check
// go-tuf would trust B's timestamp version and refuse A's next one as a
// rollback.
func TestOtherDevicesDirectorMetadataIsRefusedBeforeTrust(t *testing.T) {
	repo := newTestRepo(t)
	repo.bindTo("dev-a")
	repo.addTarget("app/1/a.bin", []byte("for A"))
	o := testOptions(t, repo)
	o.Device = "dev-a"
	refresh := func() error {
		t.Helper()
		up, err := NewUpdater(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		return up.Refresh()
	}
	if err := refresh(); err != nil {
		t.Fatalf("A's own director: %v", err)
	}
	before := trustedFiles(t, o.MetadataDir)
	honest := repo.timestamp.Signed.Version

	// B's documents: same keys, versions far above A's.
	repo.bindTo("dev-b")
	repo.targets.Signed.Version += 50
	repo.snapshot.Signed.Version += 50
	repo.timestamp.Signed.Version += 50
	repo.addTarget("app/2/b.bin", []byte("for B"))
	err := refresh()
	if !errors.Is(err, tufrepo.ErrNotForDevice) {
		t.Fatalf("B's director offered to A: %v, want ErrNotForDevice", err)
	}
	// Unbound documents (an older server, or a stripped field) likewise.
	repo.bindTo("")
	repo.bumpAll()
	if err := refresh(); !errors.Is(err, tufrepo.ErrNotForDevice) {
		t.Fatalf("unbound director offered to A: %v, want ErrNotForDevice", err)
	}
	after := trustedFiles(t, o.MetadataDir)
	for n, b := range before {
		if !bytes.Equal(b, after[n]) {
			t.Fatalf("%s changed in A's trusted metadata after refused documents", n)
		}
	}

	// A's own next documents, at versions below B's: accepted.
	repo.bindTo("dev-a")
	repo.targets.Signed.Version -= 40
	repo.snapshot.Signed.Version -= 40
	repo.timestamp.Signed.Version = honest + 1
	repo.publish()
	if err := refresh(); err != nil {
		t.Fatalf("A's own director after the replay stopped: %v", err)
	}
	ts, err := metadata.Timestamp().FromFile(filepath.Join(o.MetadataDir, "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ts.Signed.Version != honest+1 {
		t.Fatalf("A trusts timestamp v%d, want its own v%d", ts.Signed.Version, honest+1)
	}
}

// TestPlainRepositoriesAreNotDeviceChecked: without Options.Device (the
// image repository, the conformance entry point) documents with or
// without a device field are taken as TUF says; the check is opt-in.
func TestPlainRepositoriesAreNotDeviceChecked(t *testing.T) {
	repo := newTestRepo(t)
	repo.bindTo("dev-b")
	repo.addTarget("app/1/a.bin", []byte("x"))
	up, err := NewUpdater(context.Background(), testOptions(t, repo))
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Refresh(); err != nil {
		t.Fatalf("plain client refused a bound repository: %v", err)
	}
}

// TestDeviceCheckNeedsSeparateTargetsURL: with Device set, a targets URL
// that holds the metadata URL would let metadata pass as target files.
func TestDeviceCheckNeedsSeparateTargetsURL(t *testing.T) {
	repo := newTestRepo(t)
	o := testOptions(t, repo)
	o.Device = "dev-a"
	o.TargetsURL = repo.srv.URL
	if _, err := NewUpdater(context.Background(), o); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("targets URL above the metadata URL: %v, want ErrInvalidOptions", err)
	}
}
