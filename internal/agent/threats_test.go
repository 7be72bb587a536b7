package agent_test

// One test per update-path attack of the threat list. Each performs the
// attack over real HTTP against a real server and a real agent, and checks
// that nothing was installed, the device still runs its last good
// software, and the refusal reached the server in a signed report.

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/fetch"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tufrepo"
)

// TestArbitraryInstallationIsRefused: a compromised server assigns, with
// its valid online director keys, an artifact the integrator never signed.
func TestArbitraryInstallationIsRefused(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	v1 := installV1(t, b, a, "dev-1")
	evil := b.ScriptBundle("6.6.6", true, 100)
	data, _ := os.ReadFile(evil)
	// Upload the bytes (the server stores any artifact), then point the
	// director at them without any image-repository entry.
	if err := b.Admin.UploadArtifact(testbed.Ctx(t), evil, sum(data)); err != nil {
		t.Fatal(err)
	}
	fake := v1
	fake.Target = "app/6.6.6/app-6.6.6.tar"
	newForger(t, b).director(f, "dev-1", directorTarget(t, fake, "dev-1", "board-a", int64(len(data)), sum(data)), 1000)
	err := a.Cycle(testbed.Ctx(t))
	refusedWith(t, b, a, "dev-1", err, "refused", "director and image repository disagree", v1.SHA256)
}

// TestEndlessDataIsCutAtTheSignedLength: the mirror sends more bytes than
// the signed length; the download is cut at the bound, thrown away and not
// installed, and retried later (wrong bytes from the network are not a
// verdict on the release): once the mirror is honest the release installs.
func TestEndlessDataIsCutAtTheSignedLength(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	v1 := installV1(t, b, a, "dev-1")
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 4096), "2.0.0", 2, "board-a")
	var served atomic.Int64
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/image/targets/") {
			return false
		}
		// No Content-Length: an endless stream of bytes.
		w.Header().Set("Content-Type", "application/octet-stream")
		chunk := bytes.Repeat([]byte{'A'}, 32<<10)
		for i := 0; i < 4096; i++ {
			n, err := w.Write(chunk)
			served.Add(int64(n))
			if err != nil {
				return true
			}
		}
		return true
	})
	b.Deploy(v2.Target, "dev-1")
	err := a.Cycle(testbed.Ctx(t))
	refusedWith(t, b, a, "dev-1", err, "downloading", "will retry", v1.SHA256)
	if hasState(b, "dev-1", "refused") || len(a.Refused()) != 0 {
		t.Fatalf("endless data was taken as a verdict on the release: refused %v", a.Refused())
	}
	if !errors.Is(err, fetch.ErrTooLong) {
		t.Fatalf("cycle error %v does not wrap fetch.ErrTooLong", err)
	}
	if n := served.Load(); n > 64<<20 {
		t.Fatalf("the agent kept reading %d bytes of an endless stream", n)
	}
	dl, _ := os.ReadDir(filepath.Join(b.Dir, "devices", "dev-1", "download"))
	for _, e := range dl {
		fi, _ := e.Info()
		if fi.Size() > v2.Length {
			t.Fatalf("%s holds %d bytes, more than the signed %d", e.Name(), fi.Size(), v2.Length)
		}
	}
	f.clear()
	testbed.CycleInstalls(t, a, v2.SHA256, "after the mirror stopped sending endless data")
}

// TestTargetForOtherHardwareIsRefused: the director (compromised) assigns a
// release built for other hardware.
func TestTargetForOtherHardwareIsRefused(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	v1 := installV1(t, b, a, "dev-1")
	other := b.Release(b.ScriptBundle("2.0.0", true, 64), "2.0.0", 2, "board-b")
	newForger(t, b).director(f, "dev-1", directorTarget(t, other, "dev-1", "board-a", 0, ""), 1000)
	err := a.Cycle(testbed.Ctx(t))
	refusedWith(t, b, a, "dev-1", err, "refused", "hardware", v1.SHA256)
}

// TestTargetForAnotherDeviceIsRefused: director metadata that names another
// device is not installed.
func TestTargetForAnotherDeviceIsRefused(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	v1 := installV1(t, b, a, "dev-1")
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 64), "2.0.0", 2, "board-a")
	newForger(t, b).director(f, "dev-1", directorTarget(t, v2, "dev-2", "board-a", 0, ""), 1000)
	err := a.Cycle(testbed.Ctx(t))
	refusedWith(t, b, a, "dev-1", err, "refused", "assigned to device dev-2", v1.SHA256)
}

// TestServerRefusesDeployingToWrongHardware: the honest server refuses
// such a deployment up front.
func TestServerRefusesDeployingToWrongHardware(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	device(t, b, "dev-1", "board-a")
	other := b.Release(b.ScriptBundle("2.0.0", true, 64), "2.0.0", 2, "board-b")
	_, err := b.Admin.Deploy(testbed.Ctx(t), server.DeployRequest{Release: other.Target, Devices: []string{"dev-1"}})
	if err == nil || !strings.Contains(err.Error(), "hardware") {
		t.Fatalf("deploying a board-b release to a board-a device: %v", err)
	}
}

// TestDirectorImageDisagreementIsRefused: the director lists the release
// with a different length or hash than the integrator signed.
func TestDirectorImageDisagreementIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		length int64
		sha    string
	}{
		{"length", 1 << 20, ""},
		{"hash", 0, strings.Repeat("ab", 32)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, f := bed(t, testbed.Options{})
			a := device(t, b, "dev-1", "board-a")
			v1 := installV1(t, b, a, "dev-1")
			v2 := b.Release(b.ScriptBundle("2.0.0", true, 64), "2.0.0", 2, "board-a")
			newForger(t, b).director(f, "dev-1", directorTarget(t, v2, "dev-1", "board-a", tc.length, tc.sha), 1000)
			err := a.Cycle(testbed.Ctx(t))
			refusedWith(t, b, a, "dev-1", err, "refused", "disagree", v1.SHA256)
		})
	}
}

// TestReleaseCounterRollbackIsRefused: an older release (lower counter) is
// refused even though both repositories sign it.
func TestReleaseCounterRollbackIsRefused(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	r5 := b.Release(b.ScriptBundle("5.0.0", true, 64), "5.0.0", 5, "board-a")
	b.Deploy(r5.Target, "dev-1")
	if err := a.Cycle(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	olderRefused(t, b, a, "dev-1", "4.9.0", 4, r5)
}

// TestMetadataRollbackIsRefused: after the device trusted a newer
// timestamp, the mirror replays an older one.
func TestMetadataRollbackIsRefused(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	ctx := testbed.Ctx(t)
	old, err := b.Server.Store().LatestMeta(ctx, "image", tufrepo.Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	v1 := installV1(t, b, a, "dev-1") // image timestamp moves on
	b.Release(b.ScriptBundle("2.0.0", true, 64), "2.0.0", 2, "board-a")
	f.set("/image/timestamp.json", old.Data)
	err = a.Cycle(ctx)
	refusedWith(t, b, a, "dev-1", err, "failed", "timestamp", v1.SHA256)
}

// TestMixAndMatchIsRefused: the mirror combines the current timestamp and
// snapshot with targets metadata of an earlier repository state.
func TestMixAndMatchIsRefused(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	ctx := testbed.Ctx(t)
	v1 := installV1(t, b, a, "dev-1")
	oldTargets, err := b.Server.Store().LatestMeta(ctx, "image", tufrepo.Targets)
	if err != nil {
		t.Fatal(err)
	}
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 64), "2.0.0", 2, "board-a")
	cur, _ := b.Server.Store().LatestMeta(ctx, "image", tufrepo.Targets)
	f.set("/image/"+itoa(cur.Version)+".targets.json", oldTargets.Data)
	b.Deploy(v2.Target, "dev-1")
	err = a.Cycle(ctx)
	refusedWith(t, b, a, "dev-1", err, "failed", "hash", v1.SHA256)
}

// TestFreezeIsDetectedAtExpiry: the mirror keeps replaying the same
// (validly signed) timestamp; once it expires the device refuses it, and
// says so, instead of believing nothing changed.
func TestFreezeIsDetectedAtExpiry(t *testing.T) {
	b, f := bed(t, testbed.Options{Server: func(c *server.Config) {
		c.TimestampTTL = 3 * time.Second
		c.ResignInterval = 200 * time.Millisecond
	}})
	a := device(t, b, "dev-1", "board-a", func(c *agent.Config) { c.FullRefresh = agent.Duration(100 * time.Millisecond) })
	ctx := testbed.Ctx(t)
	v1 := installV1(t, b, a, "dev-1")
	frozen, err := b.Server.Store().LatestMeta(ctx, "director/dev-1", tufrepo.Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	f.set("/director/dev-1/timestamp.json", frozen.Data)
	// A new release is deployed, but the frozen mirror hides it.
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 64), "2.0.0", 2, "board-a")
	b.Deploy(v2.Target, "dev-1")
	time.Sleep(time.Until(frozen.Expires) + 1500*time.Millisecond)
	err = a.Cycle(ctx)
	refusedWith(t, b, a, "dev-1", err, "failed", "expired", v1.SHA256)
	// When the mirror stops lying, the device catches up.
	f.clear()
	testbed.CycleInstalls(t, a, v2.SHA256, "after the freeze ended")
}

// TestWithholdingMirrorIsRetriedAndReported: the artifact mirror answers
// 503 and then nothing; the device reports the failure, keeps running v1,
// and installs once the mirror serves again.
func TestWithholdingMirrorIsRetriedAndReported(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	v1 := installV1(t, b, a, "dev-1")
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 64), "2.0.0", 2, "board-a")
	var calls atomic.Int32
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/image/targets/") {
			return false
		}
		calls.Add(1)
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return true
	})
	b.Deploy(v2.Target, "dev-1")
	err := a.Cycle(testbed.Ctx(t))
	refusedWith(t, b, a, "dev-1", err, "failed", "will retry", v1.SHA256)
	if n := calls.Load(); n < 1 || n > 64 {
		t.Fatalf("mirror asked %d times; want a bounded number of retries", n)
	}
	f.clear()
	testbed.CycleInstalls(t, a, v2.SHA256, "after the mirror recovered")
}

// TestSlowRetrievalIsAbortedAndRetried: the mirror trickles bytes below the
// minimum rate; the download is aborted, reported, and resumed later.
func TestSlowRetrievalIsAbortedAndRetried(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	v1 := installV1(t, b, a, "dev-1")
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 64<<10), "2.0.0", 2, "board-a")
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/image/targets/") {
			return false
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		for i := 0; i < 200; i++ {
			if _, err := w.Write([]byte{0}); err != nil {
				return true
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return true
			case <-time.After(50 * time.Millisecond):
			}
		}
		return true
	})
	b.Deploy(v2.Target, "dev-1")
	start := time.Now()
	err := a.Cycle(testbed.Ctx(t))
	refusedWith(t, b, a, "dev-1", err, "failed", "slow", v1.SHA256)
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("slow retrieval took %s to abort", d)
	}
	f.clear()
	testbed.CycleInstalls(t, a, v2.SHA256, "installing v2")
}

// TestRootKeyCompromiseBelowThresholdHasNoEffect: with image root
// threshold 2 of 2, an attacker holding one root key signs a new root that
// hands the targets role to their own key. The server refuses it, and a
// device served it directly refuses it too.
func TestRootKeyCompromiseBelowThresholdHasNoEffect(t *testing.T) {
	b, f := bed(t, testbed.Options{Keys: keyset.Options{RootKeys: 2, RootThreshold: 2}})
	a := device(t, b, "dev-1", "board-a")
	v1 := installV1(t, b, a, "dev-1")
	ctx := testbed.Ctx(t)
	stolen, err := keys.Load(filepath.Join(b.KeysDir, keyset.OfflineDir, keyset.RootKeyFile("image", 1)))
	if err != nil {
		t.Fatal(err)
	}
	evilTargets, _ := keys.Generate("")
	curRoot, _ := b.Server.Store().LatestMeta(ctx, "image", tufrepo.Root)
	root, err := tufrepo.Parse[metadata.RootType](curRoot.Data)
	if err != nil {
		t.Fatal(err)
	}
	root.Signed.Version++
	tk, _ := evilTargets.TUF()
	for _, id := range root.Signed.Roles[tufrepo.Targets].KeyIDs {
		root.Signed.RevokeKey(id, tufrepo.Targets)
	}
	root.Signed.AddKey(tk, tufrepo.Targets)
	evilRoot, err := tufrepo.Sign(root, stolen)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Admin.PublishRoot(ctx, "image", evilRoot); err == nil {
		t.Fatal("the server accepted a root signed by one of two root keys")
	}
	f.set("/image/2.root.json", evilRoot)
	b.Release(b.ScriptBundle("2.0.0", true, 64), "2.0.0", 2, "board-a")
	err = a.Cycle(ctx)
	refusedWith(t, b, a, "dev-1", err, "failed", "root", v1.SHA256)
}

// TestTOCTOUDownloadedFileChangedBeforeInstall: after the download was
// verified, the file on the device's disk is altered before it is staged.
// The agent re-verifies the open file and refuses; what it installs later
// is exactly the verified bytes.
func TestTOCTOUDownloadedFileChangedBeforeInstall(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	v1 := installV1(t, b, a, "dev-1")
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 4096), "2.0.0", 2, "board-a")
	dl := filepath.Join(b.Dir, "devices", "dev-1", "download", v2.SHA256)
	var tampered atomic.Bool
	a.OnStep = func(step string) {
		if step == agent.StepDownloaded && tampered.CompareAndSwap(false, true) {
			f, err := os.OpenFile(dl, os.O_WRONLY, 0)
			if err != nil {
				t.Error(err)
				return
			}
			f.WriteAt([]byte("#!/bin/sh\necho owned\n"), 512)
			f.Close()
		}
	}
	b.Deploy(v2.Target, "dev-1")
	err := a.Cycle(testbed.Ctx(t))
	refusedWith(t, b, a, "dev-1", err, "failed", "verify", v1.SHA256)
	a.OnStep = nil
	testbed.CycleInstalls(t, a, v2.SHA256, "installing v2")
	assertSlotHoldsBundle(t, a, b, "2.0.0")
}

// TestTOCTOUMirrorChangesArtifactAfterCheck: the artifact on the server
// changes after the device downloaded and checked it. The device installs
// the bytes it verified, never re-reading the mirror.
func TestTOCTOUMirrorChangesArtifactAfterCheck(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	installV1(t, b, a, "dev-1")
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 4096), "2.0.0", 2, "board-a")
	cas := b.Server.Store().ArtifactPath(v2.SHA256)
	a.OnStep = func(step string) {
		if step == agent.StepDownloaded {
			os.WriteFile(cas, bytes.Repeat([]byte("X"), int(v2.Length)), 0o600)
		}
	}
	b.Deploy(v2.Target, "dev-1")
	testbed.CycleInstalls(t, a, v2.SHA256, "installing v2")
	assertSlotHoldsBundle(t, a, b, "2.0.0")
}

func assertSlotHoldsBundle(t *testing.T, a *agent.Agent, b *testbed.Bed, version string) {
	t.Helper()
	st, err := a.SlotState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(b.Dir, "devices", "dev-1", "slots", st.Active)
	got, err := os.ReadFile(filepath.Join(dir, "VERSION"))
	if err != nil || string(got) != version {
		t.Fatalf("slot %s VERSION = %q (%v), want %q", st.Active, got, err, version)
	}
	script, _ := os.ReadFile(filepath.Join(dir, "bin", "app"))
	if strings.Contains(string(script), "owned") {
		t.Fatal("the tampered bytes were installed")
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// TestRootRotationIsFollowedByDevices: the integrator replaces the image
// root keys with "ztota keys rotate" (new root signed by the old and new
// thresholds); devices that pinned root v1 walk to v2 and keep updating.
func TestRootRotationIsFollowedByDevices(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	installV1(t, b, a, "dev-1")
	ctx := testbed.Ctx(t)
	data, err := keyset.Rotate(b.KeysDir, keyset.RotateOptions{Repo: "image", NewKeys: 2, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Admin.PublishRoot(ctx, "image", data); err != nil {
		t.Fatal(err)
	}
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 64), "2.0.0", 2, "board-a")
	b.Deploy(v2.Target, "dev-1")
	testbed.CycleInstalls(t, a, v2.SHA256, "after the root rotation")
	trusted, err := os.ReadFile(filepath.Join(b.Dir, "devices", "dev-1", "tuf", "image", "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := tufrepo.Parse[metadata.RootType](trusted)
	if err != nil {
		t.Fatal(err)
	}
	if root.Signed.Version != 2 || root.Signed.Roles[tufrepo.Root].Threshold != 2 {
		t.Fatalf("device trusts root v%d with threshold %d, want v2 with 2", root.Signed.Version, root.Signed.Roles[tufrepo.Root].Threshold)
	}
}

// TestFastForwardRecoveredThroughOnlineKeyRotation: an attacker holding the
// director's timestamp key makes a device trust a timestamp at version
// 1,000,000; the server's honest timestamps then look like rollbacks and
// the device refuses every update. The operator rotates the timestamp key
// ("ztota keys rotate --repo director --role timestamp"), installs the new
// key on the server and publishes the new root; the server re-signs every
// director, the device drops the fast-forwarded timestamp (the new root no
// longer trusts its key) and updates again.
func TestFastForwardRecoveredThroughOnlineKeyRotation(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	v1 := installV1(t, b, a, "dev-1")
	ctx := testbed.Ctx(t)
	st := b.Server.Store()

	// The attack: a validly signed timestamp far ahead, over the real snapshot.
	snap, err := st.LatestMeta(ctx, "director/dev-1", tufrepo.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	g := newForger(t, b)
	ts := metadata.Timestamp(time.Now().Add(time.Hour).UTC().Truncate(time.Second))
	ts.Signed.Version = 1_000_000
	ts.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": tufrepo.MetaFile(snap.Version, snap.Data)}
	g.bind(ts, "dev-1")
	tsb, err := tufrepo.Sign(ts, g.keys.DirectorTimestamp)
	if err != nil {
		t.Fatal(err)
	}
	f.set("/director/dev-1/timestamp.json", tsb)
	if err := a.Cycle(ctx); err != nil {
		t.Fatalf("the fast-forwarded timestamp was not even accepted: %v", err)
	}
	trustedTS := func() int64 {
		data, err := os.ReadFile(filepath.Join(b.Dir, "devices", "dev-1", "tuf", "director", "timestamp.json"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := tufrepo.Parse[metadata.TimestampType](data)
		if err != nil {
			t.Fatal(err)
		}
		return m.Signed.Version
	}
	if v := trustedTS(); v != 1_000_000 {
		t.Fatalf("device trusts director timestamp %d, want the attacker's 1000000", v)
	}
	f.clear()

	// The device is now stuck: the server's honest timestamp is lower.
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 64), "2.0.0", 2, "board-a")
	b.Deploy(v2.Target, "dev-1")
	err = a.Cycle(ctx)
	refusedWith(t, b, a, "dev-1", err, "failed", "timestamp", v1.SHA256)

	// Recovery.
	root, err := keyset.RotateRole(b.KeysDir, "director", tufrepo.Timestamp, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Admin.PublishRoot(ctx, "director", root); err == nil || !strings.Contains(err.Error(), "does not hold") {
		t.Fatalf("publishing a root naming a timestamp key the server does not hold: %v", err)
	}
	newKey, err := os.ReadFile(filepath.Join(b.KeysDir, keyset.RoleKeyFile("director", tufrepo.Timestamp)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "server", "keys", "new-director-timestamp.key"), newKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.Admin.PublishRoot(ctx, "director", root); err != nil {
		t.Fatal(err)
	}
	testbed.CycleInstalls(t, a, v2.SHA256, "after the timestamp key rotation")
	if v := trustedTS(); v >= 1_000_000 {
		t.Fatalf("device still trusts timestamp %d", v)
	}
}
