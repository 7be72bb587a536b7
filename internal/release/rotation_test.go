package release_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/apiclient"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tufrepo"
)

// front records the paths devices request and answers some of them with
// bodies of the test's choosing (a mirror the attacker controls).
type front struct {
	mu       sync.Mutex
	seen     []string
	override map[string][]byte
}

func (f *front) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r.URL.Path)
		body, ok := f.override[r.URL.Path]
		f.mu.Unlock()
		if ok {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *front) set(path string, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.override == nil {
		f.override = map[string][]byte{}
	}
	f.override[path] = body
}

func (f *front) clear() {
	f.mu.Lock()
	f.override = nil
	f.mu.Unlock()
}

// requested says whether a request path began with prefix and held sub.
func (f *front) requested(prefix, sub string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.seen, func(p string) bool { return strings.HasPrefix(p, prefix) && strings.Contains(p, sub) })
}

// trusted reads a metadata file the device trusts.
func trusted[T metadata.Roles](t *testing.T, b *testbed.Bed, dev, repo, role string) *metadata.Metadata[T] {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.Dir, "devices", dev, "tuf", repo, role+".json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := tufrepo.Parse[T](data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func apiStatus(err error) int {
	var ae *apiclient.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// TestCompromisedTargetsKeyRecoveredWithoutReenrolling performs the
// recovery from a leaked integrator targets key end to end, over real HTTP
// with a real server and agent. Release v1 is signed with K1 and
// installed. Before the leak is noticed, the attacker publishes targets
// listing a release of its own with K1 (accepted: the server still trusts
// K1). The integrator rotates to K2 ("keys rotate --repo image --role
// targets": a new image root signed by the root keys; the current targets
// re-signed from the integrator's own record, the attacker's earlier
// release dropped; the root published). The attacker then signs targets
// listing another malicious release with K1: the server refuses them over
// the API; the attacker writes them into the server's store anyway, with
// snapshot and timestamp signed by the server's own online keys, and has
// the director assign the malicious release. The device refuses the K1
// targets (not signed by the key its new root names), downloads nothing
// and keeps v1. The integrator's next release, signed with K2, drops the
// attacker's target and the device installs it, with the same enrollment
// throughout. On the old code the rotation itself was refused ("not
// supported yet").
func TestCompromisedTargetsKeyRecoveredWithoutReenrolling(t *testing.T) {
	f := &front{}
	b := testbed.New(t, testbed.Options{Front: f.handler})
	ctx := testbed.Ctx(t)
	a := b.Agent(b.AgentConfig("dev-1", "board-a"))

	v1 := b.Release(b.ScriptBundle("1.0.0", true, 512), "1.0.0", 1, "board-a")
	b.Deploy(v1.Target, "dev-1")
	testbed.CycleInstalls(t, a, v1.SHA256, "installing v1")
	k1, err := keys.Load(filepath.Join(b.KeysDir, keyset.RoleKeyFile("image", tufrepo.Targets)))
	if err != nil {
		t.Fatal(err)
	}

	// Before the leak is noticed the attacker uses K1 through the API
	// (with a stolen integrator token): the server still trusts K1 and
	// lists the attacker's release.
	early := b.ScriptBundle("6.0.0", true, 99)
	earlySum, earlyTarget := uploadEvil(t, b, early)
	curb, err := b.Admin.ImageTargets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	curT, _ := tufrepo.Parse[metadata.TargetsType](curb)
	withEarly := tufrepo.NextTargets(curT, time.Now().Add(time.Hour))
	withEarly.Signed.Targets[earlyTarget] = evilFile(t, earlyTarget, "6.0.0", early, earlySum)
	earlyb, err := tufrepo.Sign(withEarly, k1)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Admin.PublishImageTargets(ctx, earlyb); err != nil {
		t.Fatalf("targets signed with K1 before the rotation: %v", err)
	}

	// Rotation. The root alone is refused: the server's targets are
	// signed by K1 only, and devices taking the root would fail every
	// refresh until the offline key re-signed them.
	root, err := keyset.RotateRole(b.KeysDir, "image", tufrepo.Targets, "", time.Time{})
	if err != nil {
		t.Fatalf("rotating the image targets key: %v", err)
	}
	if err := b.Admin.PublishRoot(ctx, "image", root); apiStatus(err) != http.StatusConflict || !strings.Contains(err.Error(), "not signed by the targets key") {
		t.Fatalf("publishing the new image root before the targets were re-signed: %v; want 409", err)
	}
	res, err := release.Resign(ctx, b.Admin, b.KeysDir, 0)
	if err != nil {
		t.Fatalf("re-signing the image targets: %v", err)
	}
	if !res.Resigned || !res.FromRecord || !slices.Equal(res.Targets, []string{v1.Target}) || !slices.Equal(res.Dropped, []string{earlyTarget}) {
		t.Fatalf("re-signed %+v; want v1 alone, from the record, the attacker's %s dropped", res, earlyTarget)
	}
	if err := b.Admin.PublishRoot(ctx, "image", root); err != nil {
		t.Fatalf("publishing the new image root: %v", err)
	}
	if again, err := release.Resign(ctx, b.Admin, b.KeysDir, 0); err != nil || again.Resigned {
		t.Fatalf("a second Resign: %+v %v; want nothing to do", again, err)
	}
	if err := a.Cycle(ctx); err != nil {
		t.Fatalf("refresh after the rotation: %v", err)
	}
	next, _ := tufrepo.Parse[metadata.RootType](root)
	if r := trusted[metadata.RootType](t, b, "dev-1", "image", "root"); r.Signed.Version != next.Signed.Version {
		t.Fatalf("device trusts image root v%d, want v%d", r.Signed.Version, next.Signed.Version)
	}
	if tt := trusted[metadata.TargetsType](t, b, "dev-1", "image", "targets"); tt.Signed.Targets[v1.Target] == nil || tt.Signed.Targets[earlyTarget] != nil {
		t.Fatalf("the re-signed targets the device trusts list %d targets; want the running v1 and not %s", len(tt.Signed.Targets), earlyTarget)
	}

	// The attack: K1 signs targets with a malicious release.
	evil := b.ScriptBundle("6.6.6", true, 100)
	evilSum, evilTarget := uploadEvil(t, b, evil)
	evilSHA := hex.EncodeToString(evilSum)
	st := b.Server.Store()
	cur, err := st.LatestMeta(ctx, "image", tufrepo.Targets)
	if err != nil {
		t.Fatal(err)
	}
	prev, _ := tufrepo.Parse[metadata.TargetsType](cur.Data)
	bad := tufrepo.NextTargets(prev, time.Now().Add(time.Hour))
	bad.Signed.Targets[evilTarget] = evilFile(t, evilTarget, "6.6.6", evil, evilSum)
	badb, err := tufrepo.Sign(bad, k1)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Admin.PublishImageTargets(ctx, badb); apiStatus(err) != http.StatusBadRequest {
		t.Fatalf("the server took targets signed by the retired key over the API: %v; want 400", err)
	}
	injectImageTargets(t, b, f, bad.Signed.Version, badb, store.Release{Target: evilTarget, Name: "app", Version: "6.6.6",
		ReleaseCounter: 66, HardwareIDs: []string{"board-a"}, Module: "app", SHA256: evilSHA, Length: tufLength(t, evil)})
	dep := b.Deploy(evilTarget, "dev-1")

	err = a.Cycle(ctx)
	if !errors.Is(err, &metadata.ErrUnsignedMetadata{}) {
		t.Fatalf("cycle with K1-signed targets: %v; want go-tuf's unsigned-metadata refusal", err)
	}
	if !f.requested("/image/", "/"+itoa(bad.Signed.Version)+".targets.json") {
		t.Fatal("the device never fetched the attacker's targets: the attack did not reach it")
	}
	if f.requested("/image/targets/", evilSHA) {
		t.Fatal("the device requested the malicious artifact")
	}
	if got := testbed.Installed(t, a); got != v1.SHA256 {
		t.Fatalf("device runs %q, want v1", got)
	}
	if tt := trusted[metadata.TargetsType](t, b, "dev-1", "image", "targets"); tt.Signed.Version >= bad.Signed.Version || tt.Signed.Targets[evilTarget] != nil {
		t.Fatalf("the device trusts image targets v%d (the attacker's is v%d)", tt.Signed.Version, bad.Signed.Version)
	}

	// Recovery: the operator halts the deployment, the integrator releases
	// v2 with K2 (built on its own record: the attacker's target dropped).
	f.clear()
	if _, err := b.Admin.Halt(ctx, dep.ID); err != nil {
		t.Fatal(err)
	}
	v2, err := release.Publish(ctx, b.Admin, release.Options{Artifact: b.ScriptBundle("2.0.0", true, 512), KeysDir: b.KeysDir,
		Meta: tufrepo.ImageMeta{Name: "app", Version: "2.0.0", ReleaseCounter: 2, HardwareIDs: []string{"board-a"}, Module: "app"}})
	if err != nil {
		t.Fatalf("releasing v2 with the new key: %v", err)
	}
	if !slices.Equal(v2.Dropped, []string{evilTarget}) {
		t.Fatalf("v2 dropped %v; want the attacker's %s", v2.Dropped, evilTarget)
	}
	b.Deploy(v2.Target, "dev-1")
	testbed.CycleInstalls(t, a, v2.SHA256, "installing v2")
	tt := trusted[metadata.TargetsType](t, b, "dev-1", "image", "targets")
	if tt.Signed.Targets[evilTarget] != nil || tt.Signed.Targets[v1.Target] == nil {
		t.Fatalf("device trusts targets %v; want v1 and v2 without the attacker's", tt.Signed.Targets)
	}
}

// uploadEvil uploads an attacker's bundle (the server stores any bytes)
// and returns its sha256 and target path.
func uploadEvil(t *testing.T, b *testbed.Bed, path string) ([]byte, string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if err := b.Admin.UploadArtifact(testbed.Ctx(t), path, hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	return sum[:], tufrepo.TargetPath("app", versionOf(path), filepath.Base(path))
}

// versionOf reads the version out of a ScriptBundle path (app-V.tar).
func versionOf(path string) string {
	return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "app-"), ".tar")
}

func tufLength(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// evilFile describes the attacker's bundle as an image target for board-a.
func evilFile(t *testing.T, target, version, path string, sum []byte) *metadata.TargetFiles {
	t.Helper()
	tf, err := tufrepo.TargetFile(target, tufLength(t, path), sum, tufrepo.ImageCustom(tufrepo.ImageMeta{
		Name: "app", Version: version, ReleaseCounter: 66, HardwareIDs: []string{"board-a"}, Module: "app", ArtifactType: tufrepo.ArtifactBundle}))
	if err != nil {
		t.Fatal(err)
	}
	return tf
}

// injectImageTargets puts targets bytes into the server's store as the next
// image targets version, with a snapshot and timestamp signed by the
// server's own online keys (a server the attacker controls), and the
// release row that lets the director assign it. The timestamp is also
// answered by the front: the server keeps its latest timestamp in memory.
func injectImageTargets(t *testing.T, b *testbed.Bed, f *front, version int64, targets []byte, rel store.Release) {
	t.Helper()
	ts := testbed.InjectImageTargets(t, b.Server.Store(), filepath.Join(b.Dir, "server", "keys"), version, targets, rel)
	f.set("/image/timestamp.json", ts)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
