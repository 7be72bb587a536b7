package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/apiclient"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tufrepo"
)

// restartable is a server on a fixed loopback address that a test stops
// and starts again on the same data directory.
type restartable struct {
	t     *testing.T
	dir   string // keys and devices live here too
	cfg   server.Config
	addr  string
	srv   *server.Server
	hs    *http.Server
	admin *apiclient.Client
	log   *slog.Logger
}

func newRestartable(t *testing.T) *restartable {
	dir := t.TempDir()
	r := &restartable{t: t, dir: dir, addr: "127.0.0.1:0", log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := keyset.Init(r.keysDir(), keyset.Options{}); err != nil {
		t.Fatal(err)
	}
	// The --keys flag stays set on every start, as in a service unit that
	// is never edited: the online/ folder keeps the keys of the first
	// start, which after a rotation are the old ones.
	r.cfg = server.Config{DataDir: filepath.Join(dir, "server"), KeysDir: filepath.Join(r.keysDir(), keyset.OnlineDir), Logger: r.log}
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) keysDir() string { return filepath.Join(r.dir, "keys") }

func (r *restartable) start() error {
	srv, err := server.New(context.Background(), r.cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		srv.Close()
		return err
	}
	r.addr = ln.Addr().String()
	r.srv = srv
	r.hs = &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go r.hs.Serve(ln)
	tok, err := os.ReadFile(filepath.Join(r.cfg.DataDir, server.AdminTokenFile))
	if err != nil {
		return err
	}
	r.admin = apiclient.New("http://"+r.addr, strings.TrimSpace(string(tok)))
	return nil
}

func (r *restartable) stop() {
	if r.srv == nil {
		return
	}
	r.hs.Close()
	r.srv.Close()
	r.srv = nil
}

func (r *restartable) restart() {
	r.t.Helper()
	r.stop()
	if err := r.start(); err != nil {
		r.t.Fatalf("restarting the server: %v", err)
	}
}

// bed is the running server seen as a test bed, for its agents and bundles.
func (r *restartable) bed() *testbed.Bed {
	return &testbed.Bed{T: r.t, Dir: r.dir, KeysDir: r.keysDir(), URL: "http://" + r.addr, Admin: r.admin, Log: r.log}
}

// agent makes, enrolls and starts an agent for device id.
func (r *restartable) agent(id string) *agent.Agent {
	b := r.bed()
	return b.Agent(b.AgentConfig(id, "board-a"))
}

// release signs (with the keys directory's current targets key) and
// deploys a script bundle to dev-1, and returns its sha256.
func (r *restartable) release(version string, counter uint64) string {
	t := r.t
	bundle := r.bed().ScriptBundle(version, true, 256)
	res, err := release.Publish(testbed.Ctx(t), r.admin, release.Options{Artifact: bundle, KeysDir: r.keysDir(),
		Meta: tufrepo.ImageMeta{Name: "app", Version: version, ReleaseCounter: counter, HardwareIDs: []string{"board-a"}, Module: "app"}})
	if err != nil {
		t.Fatalf("releasing %s: %v", version, err)
	}
	if _, err := r.admin.Deploy(testbed.Ctx(t), server.DeployRequest{Release: res.Target, Devices: []string{"dev-1"}, FailureThreshold: 1}); err != nil {
		t.Fatal(err)
	}
	return res.SHA256
}

func keyID(t *testing.T, path string) string {
	t.Helper()
	k, err := keys.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	id, err := k.ID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// signedBy checks that the newest stored metadata of role in repo verifies
// under root and carries exactly one signature, by keyID.
func signedBy[T metadata.Roles](t *testing.T, srv *server.Server, root []byte, repo, role, keyID string) {
	t.Helper()
	m, err := srv.Store().LatestMeta(testbed.Ctx(t), repo, role)
	if err != nil {
		t.Fatal(err)
	}
	md, err := tufrepo.Parse[T](m.Data)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := tufrepo.Parse[metadata.RootType](root)
	if err != nil {
		t.Fatal(err)
	}
	if err := tufrepo.Verify(rt, role, md); err != nil {
		t.Fatalf("%s %s v%d does not verify under root v%d: %v", repo, role, m.Version, rt.Signed.Version, err)
	}
	if len(md.Signatures) != 1 || md.Signatures[0].KeyID != keyID {
		t.Fatalf("%s %s v%d is signed by %v; want only %s", repo, role, m.Version, md.Signatures, keyID)
	}
}

func (r *restartable) rotateOnline(repo, role string) (root []byte, newID string) {
	t := r.t
	root, err := keyset.RotateRole(r.keysDir(), repo, role, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	kf := filepath.Join(r.keysDir(), keyset.RoleKeyFile(repo, role))
	data, err := os.ReadFile(kf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.cfg.DataDir, "keys", "new-"+repo+"-"+role+".key"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.admin.PublishRoot(testbed.Ctx(t), repo, root); err != nil {
		t.Fatalf("publishing the %s root with a new %s key: %v", repo, role, err)
	}
	return root, keyID(t, kf)
}

// TestServerAdoptsRotatedKeysAfterRestart rotates the director timestamp
// key, the image snapshot key, the image root keys and the image targets
// key, restarts the server process on the same data directory (started
// with the same --keys folder, which still holds the first keys), and
// checks that everything it signs afterwards is signed by the new keys
// only, and that a device that followed the rotations installs the next
// release (signed with the new targets key) with no fall-back to the old
// key files.
func TestServerAdoptsRotatedKeysAfterRestart(t *testing.T) {
	r := newRestartable(t)
	ctx := testbed.Ctx(t)
	a := r.agent("dev-1")
	testbed.CycleInstalls(t, a, r.release("1.0.0", 1), "installing v1")

	dirRoot, tsID := r.rotateOnline("director", tufrepo.Timestamp)
	_, snapID := r.rotateOnline("image", tufrepo.Snapshot)
	imgRoot, err := keyset.Rotate(r.keysDir(), keyset.RotateOptions{Repo: "image"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.admin.PublishRoot(ctx, "image", imgRoot); err != nil {
		t.Fatalf("publishing the image root with new root keys: %v", err)
	}
	imgRoot, err = keyset.RotateRole(r.keysDir(), "image", tufrepo.Targets, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := release.Resign(ctx, r.admin, r.keysDir(), 0); err != nil {
		t.Fatal(err)
	}
	if err := r.admin.PublishRoot(ctx, "image", imgRoot); err != nil {
		t.Fatalf("publishing the image root with a new targets key: %v", err)
	}
	if err := a.Cycle(ctx); err != nil {
		t.Fatalf("refresh after the rotations: %v", err)
	}

	r.restart()
	if got := keyID(t, filepath.Join(r.cfg.DataDir, "keys", keyset.DirTimestampKey)); got != tsID {
		t.Fatalf("after the restart DATA/keys holds director timestamp key %s, want %s", got, tsID)
	}
	v2 := r.release("2.0.0", 2) // new image targets, snapshot, timestamp; new director for dev-1
	signedBy[metadata.TimestampType](t, r.srv, dirRoot, "director/dev-1", tufrepo.Timestamp, tsID)
	signedBy[metadata.SnapshotType](t, r.srv, imgRoot, "image", tufrepo.Snapshot, snapID)
	signedBy[metadata.TargetsType](t, r.srv, imgRoot, "image", tufrepo.Targets, keyID(t, filepath.Join(r.keysDir(), keyset.RoleKeyFile("image", tufrepo.Targets))))
	testbed.CycleInstalls(t, a, v2, "installing v2 after the restart")
}

// TestRestartFinishesAnInterruptedKeySwitch performs a stop between the
// two steps of adopting a rotated key: the new root is stored (and the
// metadata re-signed) but the key files were not yet renamed, so
// DATA/keys/director-timestamp.key is still the old key and the new one
// sits beside it as new-director-timestamp.key. The old code loaded the
// old key at start and signed the next director metadata with it, which
// every device (already on the new root) refuses; now the server adopts
// the key the stored root names, and the device installs the next
// release. With the new key file gone as well, the server refuses to
// start (ErrOnlineKeyMismatch) instead of signing with the old key.
func TestRestartFinishesAnInterruptedKeySwitch(t *testing.T) {
	r := newRestartable(t)
	ctx := testbed.Ctx(t)
	a := r.agent("dev-1")
	testbed.CycleInstalls(t, a, r.release("1.0.0", 1), "installing v1")
	root, tsID := r.rotateOnline("director", tufrepo.Timestamp)
	if err := a.Cycle(ctx); err != nil {
		t.Fatalf("refresh after the rotation: %v", err)
	}
	r.stop()

	// Undo the renames the server did after its commit.
	kdir := filepath.Join(r.cfg.DataDir, "keys")
	canon := filepath.Join(kdir, keyset.DirTimestampKey)
	retired, err := filepath.Glob(canon + ".retired-*")
	if err != nil || len(retired) != 1 {
		t.Fatalf("retired key files %v (%v); want one", retired, err)
	}
	newFile := filepath.Join(kdir, "new-director-timestamp.key")
	if err := os.Rename(canon, newFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(retired[0], canon); err != nil {
		t.Fatal(err)
	}
	oldID := keyID(t, canon)

	// Without the new key file the server must not start.
	hidden := filepath.Join(r.dir, "hidden.key")
	if err := os.Rename(newFile, hidden); err != nil {
		t.Fatal(err)
	}
	if err := r.start(); !errors.Is(err, server.ErrOnlineKeyMismatch) {
		t.Fatalf("start with only the old director timestamp key: %v; want ErrOnlineKeyMismatch", err)
	}
	if err := os.Rename(hidden, newFile); err != nil {
		t.Fatal(err)
	}

	if err := r.start(); err != nil {
		t.Fatalf("start with the new key beside the old one: %v", err)
	}
	if got := keyID(t, canon); got != tsID {
		t.Fatalf("DATA/keys/%s is %s after the start, want the new %s (old %s)", keyset.DirTimestampKey, got, tsID, oldID)
	}
	if _, err := os.Stat(newFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the adopted key file is still there under its temporary name: %v", err)
	}
	v2 := r.release("2.0.0", 2)
	signedBy[metadata.TimestampType](t, r.srv, root, "director/dev-1", tufrepo.Timestamp, tsID)
	testbed.CycleInstalls(t, a, v2, "installing v2 after the restart")
}
