package release_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tufrepo"
)

// TestLostTargetsKeyReplacedWithoutReenrolling performs the replacement
// of an image targets key the integrator no longer has (the file is
// gone): the plain rotation cannot work (nobody can co-sign the re-signed
// targets under the old root) and says so; --old-key-lost publishes a
// root listing both keys, re-signs the targets with the new key from the
// record, and publishes a root without the lost key. The device walks
// both roots and keeps v1; targets signed with the lost key (now in an
// attacker's hands) are refused by the server; v2 signed with the new
// key installs on the same enrolled device.
func TestLostTargetsKeyReplacedWithoutReenrolling(t *testing.T) {
	b := testbed.New(t, testbed.Options{})
	ctx := testbed.Ctx(t)
	a := b.Agent(b.AgentConfig("dev-1", "board-a"))
	v1 := b.Release(b.ScriptBundle("1.0.0", true, 512), "1.0.0", 1, "board-a")
	b.Deploy(v1.Target, "dev-1")
	if err := a.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	kf := filepath.Join(b.KeysDir, keyset.RoleKeyFile("image", tufrepo.Targets))
	lost, err := keys.Load(kf)
	if err != nil {
		t.Fatal(err)
	}
	lostID, _ := lost.ID()
	if err := os.Remove(kf); err != nil {
		t.Fatal(err)
	}

	// The plain rotation, tried in a copy of the keys directory, cannot
	// publish and points to --old-key-lost; the server is unchanged.
	cp := filepath.Join(t.TempDir(), "keys")
	if err := os.CopyFS(cp, os.DirFS(b.KeysDir)); err != nil {
		t.Fatal(err)
	}
	plain, err := keyset.RotateRole(cp, "image", tufrepo.Targets, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := release.PublishImageRoot(ctx, b.Admin, cp, plain); err == nil || !strings.Contains(err.Error(), "--old-key-lost") {
		t.Fatalf("plain rotation without the old key: %v; want a pointer to --old-key-lost", err)
	}
	if m, err := b.Server.Store().LatestMeta(ctx, "image", tufrepo.Root); err != nil || m.Version != 1 {
		t.Fatalf("server image root v%d (%v) after the failed rotation, want v1", m.Version, err)
	}

	res, err := release.ReplaceLostTargetsKey(ctx, b.Admin, b.KeysDir, "")
	if err != nil {
		t.Fatalf("replacing the lost targets key: %v", err)
	}
	if !res.Resigned || !res.FromRecord || !slices.Equal(res.Targets, []string{v1.Target}) {
		t.Fatalf("re-signed %+v; want v1 from the record", res)
	}
	m, err := b.Server.Store().LatestMeta(ctx, "image", tufrepo.Root)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := tufrepo.Parse[metadata.RootType](m.Data)
	nk, err := keys.Load(kf)
	if err != nil {
		t.Fatal(err)
	}
	newID, _ := nk.ID()
	if ids := root.Signed.Roles[tufrepo.Targets].KeyIDs; root.Signed.Version != 3 || !slices.Equal(ids, []string{newID}) {
		t.Fatalf("server image root v%d names targets keys %v; want v3 with only %s (lost %s)", root.Signed.Version, ids, newID, lostID)
	}
	if err := a.Cycle(ctx); err != nil {
		t.Fatalf("refresh after the replacement: %v", err)
	}
	if r := trusted[metadata.RootType](t, b, "dev-1", "image", "root"); r.Signed.Version != 3 {
		t.Fatalf("device trusts image root v%d, want v3", r.Signed.Version)
	}
	if got := testbed.Installed(t, a); got != v1.SHA256 {
		t.Fatalf("device runs %q, want v1", got)
	}

	// Whoever has the lost key cannot publish with it.
	cur, err := b.Admin.ImageTargets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prev, _ := tufrepo.Parse[metadata.TargetsType](cur)
	badb, err := tufrepo.Sign(tufrepo.NextTargets(prev, time.Now().Add(time.Hour)), lost)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Admin.PublishImageTargets(ctx, badb); apiStatus(err) != http.StatusBadRequest {
		t.Fatalf("targets signed with the lost key: %v; want 400", err)
	}

	v2 := b.Release(b.ScriptBundle("2.0.0", true, 512), "2.0.0", 2, "board-a")
	b.Deploy(v2.Target, "dev-1")
	testbed.CycleInstalls(t, a, v2.SHA256, "installing v2")
}

// TestLostKeyReplacementResumes: the connection fails when the re-signed
// targets are sent (after the first root was published); running the
// replacement again resumes from the root listing both keys instead of
// adding a third key, and ends at root v3 naming only the new key.
func TestLostKeyReplacementResumes(t *testing.T) {
	var armed atomic.Bool // fail the next targets upload once
	b := testbed.New(t, testbed.Options{Front: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && r.URL.Path == "/v1/image/targets" && armed.CompareAndSwap(true, false) {
				http.Error(w, "connection lost", http.StatusBadGateway)
				return
			}
			next.ServeHTTP(w, r)
		})
	}})
	ctx := testbed.Ctx(t)
	v1 := b.Release(b.ScriptBundle("1.0.0", true, 64), "1.0.0", 1, "board-a")
	armed.Store(true)
	if err := os.Remove(filepath.Join(b.KeysDir, keyset.RoleKeyFile("image", tufrepo.Targets))); err != nil {
		t.Fatal(err)
	}
	if _, err := release.ReplaceLostTargetsKey(ctx, b.Admin, b.KeysDir, ""); apiStatus(err) != http.StatusBadGateway || !strings.Contains(err.Error(), "run the same command again") {
		t.Fatalf("first attempt: %v; want the 502 and a hint to resume", err)
	}
	res, err := release.ReplaceLostTargetsKey(ctx, b.Admin, b.KeysDir, "")
	if err != nil {
		t.Fatalf("resuming: %v", err)
	}
	if !res.Resigned || !slices.Equal(res.Targets, []string{v1.Target}) {
		t.Fatalf("re-signed %+v; want v1", res)
	}
	m, err := b.Server.Store().LatestMeta(ctx, "image", tufrepo.Root)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := tufrepo.Parse[metadata.RootType](m.Data)
	if ids := root.Signed.Roles[tufrepo.Targets].KeyIDs; root.Signed.Version != 3 || len(ids) != 1 {
		t.Fatalf("server image root v%d with targets keys %v; want v3 with one key", root.Signed.Version, ids)
	}
}
