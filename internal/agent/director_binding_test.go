package agent_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tufrepo"
)

// directorFiles reads the director metadata a device trusts.
func directorFiles(t *testing.T, b *testbed.Bed, dev string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, n := range []string{"root.json", "timestamp.json", "snapshot.json", "targets.json"} {
		data, err := os.ReadFile(filepath.Join(b.Dir, "devices", dev, "tuf", "director", n))
		if err != nil {
			t.Fatal(err)
		}
		out[n] = data
	}
	return out
}

// TestOtherDeviceDirectorMetadataIsRefusedBeforeTrust performs the freeze
// attack of issue 6 on an agent in process: dev-b gets two deployments, so
// its director versions are above dev-a's; an on-path attacker answers
// dev-a's director requests with dev-b's documents exactly as the server
// signed them. dev-a's cycle fails with tufrepo.ErrNotForDevice, its
// trusted director metadata is byte for byte unchanged, dev-b's release is
// not put in dev-a's refused set, and once the path is honest dev-a
// installs the release it is assigned. On the old code dev-a trusted
// dev-b's versions, refused dev-b's target for ever, and refused every
// later honest timestamp as a rollback.
func TestOtherDeviceDirectorMetadataIsRefusedBeforeTrust(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	ctx := testbed.Ctx(t)
	a := device(t, b, "dev-a", "board-a")
	bee := device(t, b, "dev-b", "board-a")
	if err := a.Cycle(ctx); err != nil { // a first refresh: dev-a trusts its own director
		t.Fatal(err)
	}
	v1 := installV1(t, b, bee, "dev-b")
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 64), "2.0.0", 2, "board-a")
	b.Deploy(v2.Target, "dev-b")
	if err := bee.Cycle(ctx); err != nil {
		t.Fatal(err)
	}

	// dev-b's newest director documents, as the server sent them.
	st := b.Server.Store()
	docs := map[string][]byte{}
	var bTS int64
	for _, role := range []string{tufrepo.Timestamp, tufrepo.Snapshot, tufrepo.Targets} {
		m, err := st.LatestMeta(ctx, "director/dev-b", role)
		if err != nil {
			t.Fatal(err)
		}
		name := strconv.FormatInt(m.Version, 10) + "." + role + ".json"
		if role == tufrepo.Timestamp {
			name, bTS = "timestamp.json", m.Version
		}
		docs[name] = m.Data
	}
	before := directorFiles(t, b, "dev-a")
	aTS, err := tufrepo.Parse[metadata.TimestampType](before["timestamp.json"])
	if err != nil {
		t.Fatal(err)
	}
	if bTS <= aTS.Signed.Version {
		t.Fatalf("dev-b's director timestamp v%d is not above dev-a's v%d; the replay would prove nothing", bTS, aTS.Signed.Version)
	}

	// The replay.
	for name, data := range docs {
		f.set("/director/dev-a/"+name, data)
	}
	for i := 0; i < 2; i++ { // twice: a refused replay does not wedge the next cycle
		err := a.Cycle(ctx)
		// Errorf, not Fatalf, from here on: on the old code the test
		// goes on to show the freeze that follows.
		if !errors.Is(err, tufrepo.ErrNotForDevice) {
			t.Errorf("cycle %d under the replay: %v, want ErrNotForDevice", i, err)
		} else if !strings.Contains(err.Error(), `names device "dev-b"`) {
			t.Errorf("cycle %d error does not say whose metadata it was: %v", i, err)
		}
	}
	after := directorFiles(t, b, "dev-a")
	for n := range before {
		if !bytes.Equal(before[n], after[n]) {
			t.Errorf("dev-a's trusted director %s changed under the replay", n)
		}
	}
	if got := testbed.Installed(t, a); got != "" {
		t.Errorf("dev-a installed %q under the replay", got)
	}

	// The path is honest again; dev-a's own assignment (dev-b's v1, which
	// the old code had refused for good) installs.
	f.clear()
	b.Deploy(v1.Target, "dev-a")
	testbed.CycleInstalls(t, a, v1.SHA256, "after the replay stopped")
	m, err := tufrepo.Parse[metadata.TimestampType](directorFiles(t, b, "dev-a")["timestamp.json"])
	if err != nil {
		t.Fatal(err)
	}
	if got := tufrepo.BoundDevice(m); got != "dev-a" {
		t.Fatalf("dev-a trusts a director timestamp bound to %q", got)
	}
}
