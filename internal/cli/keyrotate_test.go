package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tufrepo"
)

// TestKeysRotateImageTargetsInOneCommand runs "ztota keys rotate --repo
// image --role targets" against a real server (refused with "not
// supported yet" before): one command makes the new key, re-signs the
// current targets so v1 stays listed, and publishes the root; "keys
// publish" again (a retry) succeeds with nothing to re-sign; "ztota release" then signs with
// the new key.
func TestKeysRotateImageTargetsInOneCommand(t *testing.T) {
	t.Setenv("ZTOTA_TOKEN", "")
	b := testbed.New(t, testbed.Options{})
	v1 := b.Release(b.ScriptBundle("1.0.0", true, 64), "1.0.0", 1, "board-a")
	tok, err := os.ReadFile(filepath.Join(b.Dir, "server", server.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	api := []string{"--server", b.URL, "--insecure-http", "--token", strings.TrimSpace(string(tok))}
	// The token from the environment, as in the README's first hour.
	t.Setenv("ZTOTA_TOKEN", strings.TrimSpace(string(tok)))
	code, out := run(t, "keys", "rotate", "--keys", b.KeysDir, "--repo", "image", "--role", "targets", "--server", b.URL, "--insecure-http")
	t.Setenv("ZTOTA_TOKEN", "")
	if code != 0 {
		t.Fatalf("keys rotate --repo image --role targets: exit %d\n%s", code, out)
	}
	for _, want := range []string{"new image targets key:", "image targets re-signed with the new targets key from the last targets this keys directory signed: version 3, 1 targets", "published the new image root"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output %q does not say %q", out, want)
		}
	}
	// Publishing again (a retry after a lost answer) succeeds and has
	// nothing to re-sign.
	code, out = run(t, append([]string{"keys", "publish", "--keys", b.KeysDir, "--repo", "image"}, api...)...)
	if code != 0 || !strings.Contains(out, "published the new image root") || strings.Contains(out, "re-signed") {
		t.Fatalf("publishing the same root again: exit %d\n%s", code, out)
	}
	v2 := filepath.Join(b.Dir, "bundles", "app-2.0.0.tar")
	b.ScriptBundle("2.0.0", true, 64)
	code, out = run(t, append([]string{"release", v2, "--name", "app", "--version", "2.0.0", "--counter", "2", "--hardware", "board-a", "--keys", b.KeysDir}, api...)...)
	if code != 0 || !strings.Contains(out, "in image targets version 4") {
		t.Fatalf("release with the new key: exit %d\n%s", code, out)
	}
	cur, err := b.Server.Store().LatestMeta(testbed.Ctx(t), "image", tufrepo.Targets)
	if err != nil {
		t.Fatal(err)
	}
	tt, err := tufrepo.Parse[metadata.TargetsType](cur.Data)
	if err != nil {
		t.Fatal(err)
	}
	if tt.Signed.Targets[v1.Target] == nil || len(tt.Signed.Targets) != 2 {
		t.Fatalf("image targets list %d targets; want v1 and v2", len(tt.Signed.Targets))
	}
}

// TestOldKeyLostIsOnlyForImageTargetsWithAServer: the two-root replacement
// of a lost key is refused for other roles and without a server to send
// the roots to, before anything is written.
func TestOldKeyLostIsOnlyForImageTargetsWithAServer(t *testing.T) {
	t.Setenv("ZTOTA_TOKEN", "")
	dir := filepath.Join(t.TempDir(), "keys")
	if code, out := run(t, "keys", "init", "--out", dir); code != 0 {
		t.Fatalf("keys init: %d %s", code, out)
	}
	for _, args := range [][]string{
		{"--repo", "director", "--role", "targets", "--token", "t"},
		{"--repo", "image", "--role", "timestamp", "--token", "t"},
		{"--repo", "image", "--role", "targets"},
	} {
		code, out := run(t, append([]string{"keys", "rotate", "--keys", dir, "--old-key-lost"}, args...)...)
		if code == 0 || !strings.Contains(out, "--old-key-lost is for --repo image --role targets") {
			t.Errorf("keys rotate --old-key-lost %v: exit %d %s", args, code, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "offline", "image-root-current.json")); !os.IsNotExist(err) {
		t.Fatalf("a refused --old-key-lost wrote a new root: %v", err)
	}
}

// TestOnlineKeyRotationWaitsForTheKeyCopy: rotating an online key with a
// token given does not send the root (the server would refuse a root
// naming a key it does not hold yet, and the command used to fail after
// writing the rotation); it says to copy the key and publish.
func TestOnlineKeyRotationWaitsForTheKeyCopy(t *testing.T) {
	t.Setenv("ZTOTA_TOKEN", "")
	dir := filepath.Join(t.TempDir(), "keys")
	if code, out := run(t, "keys", "init", "--out", dir); code != 0 {
		t.Fatalf("keys init: %d %s", code, out)
	}
	code, out := run(t, "keys", "rotate", "--keys", dir, "--repo", "director", "--role", "timestamp", "--token", "t", "--server", "http://127.0.0.1:1", "--insecure-http")
	if code != 0 || !strings.Contains(out, "then run 'ztota keys publish --keys "+dir+" --repo director'") {
		t.Fatalf("keys rotate --role timestamp with a token: exit %d\n%s", code, out)
	}
}
