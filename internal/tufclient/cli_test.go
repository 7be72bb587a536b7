package tufclient

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

const payloadPath = "app/1.0/payload.bin"

// client is one conformance-protocol client with its own directories.
type client struct {
	t           *testing.T
	repo        *testRepo
	metadataDir string
	targetDir   string
}

func newClient(t *testing.T, repo *testRepo) *client {
	t.Helper()
	d := t.TempDir()
	c := &client{t: t, repo: repo, metadataDir: filepath.Join(d, "metadata"), targetDir: filepath.Join(d, "targets")}
	for _, dir := range []string{c.metadataDir, c.targetDir} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *client) run(args ...string) (int, string) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, &out, &errOut)
	return code, out.String() + errOut.String()
}

func (c *client) init() {
	c.t.Helper()
	rootFile := filepath.Join(c.t.TempDir(), "initial_root.json")
	if err := os.WriteFile(rootFile, c.repo.get("/metadata/1.root.json"), 0o600); err != nil {
		c.t.Fatal(err)
	}
	if code, out := c.run("--metadata-dir", c.metadataDir, "init", rootFile); code != 0 {
		c.t.Fatalf("init: exit %d: %s", code, out)
	}
}

func (c *client) refresh() (int, string) {
	c.t.Helper()
	return c.run("--metadata-url", c.repo.metadataURL(), "--metadata-dir", c.metadataDir, "refresh")
}

func (c *client) download(names ...string) (int, string) {
	c.t.Helper()
	args := []string{"--metadata-url", c.repo.metadataURL(), "--metadata-dir", c.metadataDir}
	for _, n := range names {
		args = append(args, "--target-name", n)
	}
	args = append(args, "--target-dir", c.targetDir, "--target-base-url", c.repo.targetsURL(), "download")
	return c.run(args...)
}

// version is the version of the trusted role in the metadata directory.
func (c *client) version(role string) int64 {
	c.t.Helper()
	data, err := os.ReadFile(filepath.Join(c.metadataDir, role+".json"))
	if err != nil {
		return 0
	}
	var v struct {
		Signed struct {
			Version int64 `json:"version"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		c.t.Fatal(err)
	}
	return v.Signed.Version
}

func TestInitCopiesRootWithoutNetwork(t *testing.T) {
	repo := newTestRepo(t)
	c := newClient(t, repo)
	c.init()
	got, err := os.ReadFile(filepath.Join(c.metadataDir, "root.json"))
	if err != nil || !bytes.Equal(got, repo.get("/metadata/1.root.json")) {
		t.Fatalf("root.json not copied: %v", err)
	}
	if n := len(repo.requests); n != 0 {
		t.Fatalf("init made %d requests, want none", n)
	}
}

func TestRefreshAndDownloadSucceed(t *testing.T) {
	repo := newTestRepo(t)
	payload := []byte("firmware v1")
	repo.addTarget(payloadPath, payload)
	c := newClient(t, repo)
	c.init()
	if code, out := c.refresh(); code != 0 {
		t.Fatalf("refresh: exit %d: %s", code, out)
	}
	for role, want := range map[string]int64{"root": 1, "timestamp": 2, "snapshot": 2, "targets": 2} {
		if got := c.version(role); got != want {
			t.Errorf("trusted %s version %d, want %d", role, got, want)
		}
	}
	if code, out := c.download(payloadPath); code != 0 {
		t.Fatalf("download: exit %d: %s", code, out)
	}
	// Stored under the path-escaped target path, as the reference client does.
	got, err := os.ReadFile(filepath.Join(c.targetDir, url.PathEscape(payloadPath)))
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("downloaded file: %q, %v", got, err)
	}
	// A second download finds the verified copy and does not fetch it again.
	repo.resetRequests()
	if code, out := c.download(payloadPath); code != 0 {
		t.Fatalf("second download: exit %d: %s", code, out)
	}
	if n := repo.requested(repo.targetPath(payloadPath, payload)); n != 0 {
		t.Fatalf("cached target fetched %d more times", n)
	}
}

func TestDownloadSeveralTargetNames(t *testing.T) {
	repo := newTestRepo(t)
	repo.addTarget("a.txt", []byte("A"))
	repo.addTarget("dir/b.txt", []byte("B"))
	c := newClient(t, repo)
	c.init()
	if code, out := c.download("a.txt", "dir/b.txt"); code != 0 {
		t.Fatalf("download: exit %d: %s", code, out)
	}
	for name, want := range map[string]string{"a.txt": "A", "dir%2Fb.txt": "B"} {
		got, err := os.ReadFile(filepath.Join(c.targetDir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
}

func TestExpiredTimestampUnderFakeClockIsRefused(t *testing.T) {
	repo := newTestRepo(t) // timestamp expires in one day
	c := newClient(t, repo)
	c.init()
	t.Setenv("FAKETIME", "+12h")
	if code, out := c.refresh(); code != 0 {
		t.Fatalf("refresh half a day ahead: exit %d: %s", code, out)
	}
	repo.bumpTimestamp()
	t.Setenv("FAKETIME", "+3d")
	if code, out := c.refresh(); code != 1 || !strings.Contains(out, "expired") {
		t.Fatalf("refresh three days ahead: exit %d, %q; want 1, timestamp expired", code, out)
	}
	if got := c.version("timestamp"); got != 1 {
		t.Fatalf("expired timestamp v%d became trusted", got)
	}
}

func TestBadFakeTimeFailsTheCommand(t *testing.T) {
	repo := newTestRepo(t)
	c := newClient(t, repo)
	c.init()
	t.Setenv("FAKETIME", "+1d x10")
	if code, out := c.refresh(); code != 1 || !strings.Contains(out, "FAKETIME") {
		t.Fatalf("exit %d, output %q; want 1 naming FAKETIME", code, out)
	}
}

func TestTargetWithDifferentBytesIsRefused(t *testing.T) {
	repo := newTestRepo(t)
	payload := []byte("the signed bytes")
	repo.addTarget(payloadPath, payload)
	repo.set(repo.targetPath(payloadPath, payload), []byte("the evil bytes!!"))
	c := newClient(t, repo)
	c.init()
	if code, out := c.download(payloadPath); code != 1 || !strings.Contains(out, "hash") {
		t.Fatalf("download of tampered target: exit %d, %q; want 1, hash mismatch", code, out)
	}
	if _, err := os.Stat(filepath.Join(c.targetDir, url.PathEscape(payloadPath))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("tampered target was stored: %v", err)
	}
}

func TestEndlessTimestampIsCutAtLimit(t *testing.T) {
	repo := newTestRepo(t)
	ts := repo.get("/metadata/timestamp.json")
	padded := append(bytes.Repeat([]byte(" "), int(DefaultLimits().TimestampMaxLength)), ts...)
	repo.set("/metadata/timestamp.json", padded)
	c := newClient(t, repo)
	c.init()
	if code, out := c.refresh(); code != 1 || !strings.Contains(out, "larger than expected 16384") {
		t.Fatalf("refresh with oversized timestamp: exit %d, %q; want 1, cut at 16384 bytes", code, out)
	}
	if got := c.version("timestamp"); got != 0 {
		t.Fatalf("oversized timestamp trusted (v%d)", got)
	}
}

func TestTimestampRollbackIsRefused(t *testing.T) {
	repo := newTestRepo(t)
	old := repo.get("/metadata/timestamp.json")
	repo.bumpTimestamp()
	c := newClient(t, repo)
	c.init()
	if code, out := c.refresh(); code != 0 {
		t.Fatalf("refresh: exit %d: %s", code, out)
	}
	repo.set("/metadata/timestamp.json", old)
	if code, out := c.refresh(); code != 1 || !strings.Contains(out, "version") {
		t.Fatalf("refresh with timestamp v1 after v2: exit %d, %q; want 1, bad version", code, out)
	}
	if got := c.version("timestamp"); got != 2 {
		t.Fatalf("trusted timestamp is v%d after rollback attempt, want 2", got)
	}
}

func TestRootRotationIsFollowed(t *testing.T) {
	repo := newTestRepo(t)
	c := newClient(t, repo)
	c.init()
	if code, out := c.refresh(); code != 0 {
		t.Fatalf("refresh: exit %d: %s", code, out)
	}
	// v2 replaces the root key and the timestamp key; it is signed by the
	// old and the new root key, as the specification requires.
	oldRoot, newRoot, newTS := repo.keys[metadata.ROOT], newKey(t), newKey(t)
	for _, role := range []string{metadata.ROOT, metadata.TIMESTAMP} {
		for _, id := range repo.root.Signed.Roles[role].KeyIDs {
			if err := repo.root.Signed.RevokeKey(id, role); err != nil {
				t.Fatal(err)
			}
		}
	}
	repo.addKey(metadata.ROOT, newRoot)
	repo.addKey(metadata.TIMESTAMP, newTS)
	repo.keys[metadata.ROOT], repo.keys[metadata.TIMESTAMP] = newRoot, newTS
	repo.root.Signed.Version = 2
	repo.rootKeys = []ed25519.PrivateKey{oldRoot, newRoot}
	repo.publishRoot()
	repo.bumpTimestamp()

	if code, out := c.refresh(); code != 0 {
		t.Fatalf("refresh after rotation: exit %d: %s", code, out)
	}
	if got := c.version("root"); got != 2 {
		t.Fatalf("trusted root v%d, want 2", got)
	}
	if got := c.version("timestamp"); got != 2 {
		t.Fatalf("timestamp signed by the rotated key: trusted v%d, want 2", got)
	}
}

func TestRootNotSignedByOldKeysIsRefused(t *testing.T) {
	repo := newTestRepo(t)
	c := newClient(t, repo)
	c.init()
	newRoot := newKey(t)
	for _, id := range repo.root.Signed.Roles[metadata.ROOT].KeyIDs {
		if err := repo.root.Signed.RevokeKey(id, metadata.ROOT); err != nil {
			t.Fatal(err)
		}
	}
	repo.addKey(metadata.ROOT, newRoot)
	repo.root.Signed.Version = 2
	repo.rootKeys = []ed25519.PrivateKey{newRoot} // the attacker's key only
	repo.publishRoot()
	if code, _ := c.refresh(); code != 1 {
		t.Fatalf("refresh with a root v2 not signed by v1's keys: exit %d, want 1", code)
	}
	if got := c.version("root"); got != 1 {
		t.Fatalf("trusted root v%d, want 1", got)
	}
}

func TestFailingMirrorIsAskedOnce(t *testing.T) {
	repo := newTestRepo(t)
	repo.mu.Lock()
	delete(repo.files, "/metadata/timestamp.json")
	repo.mu.Unlock()
	c := newClient(t, repo)
	c.init()
	if code, _ := c.refresh(); code != 1 {
		t.Fatalf("refresh without timestamp: exit %d, want 1", code)
	}
	if n := repo.requested("/metadata/timestamp.json"); n != 1 {
		t.Fatalf("timestamp requested %d times, want exactly 1 (no retry loop)", n)
	}
}

func TestUnknownTargetFails(t *testing.T) {
	repo := newTestRepo(t)
	c := newClient(t, repo)
	c.init()
	if code, _ := c.download("no/such/target"); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
}

func TestUsageErrorsExitOne(t *testing.T) {
	repo := newTestRepo(t)
	c := newClient(t, repo)
	for name, args := range map[string][]string{
		"no command":          {"--metadata-dir", c.metadataDir},
		"unknown command":     {"--metadata-dir", c.metadataDir, "bogus"},
		"unknown flag":        {"--no-such-flag", "refresh"},
		"refresh without url": {"--metadata-dir", c.metadataDir, "refresh"},
		"refresh before init": {"--metadata-dir", c.metadataDir, "--metadata-url", repo.metadataURL(), "refresh"},
		"init without file":   {"--metadata-dir", c.metadataDir, "init"},
		"download no dir":     {"--metadata-dir", c.metadataDir, "--metadata-url", repo.metadataURL(), "--target-name", "x", "download"},
		"target dir is metadata dir": {"--metadata-dir", c.metadataDir, "--metadata-url", repo.metadataURL(),
			"--target-name", "x", "--target-dir", c.metadataDir, "--target-base-url", repo.targetsURL(), "download"},
	} {
		if code, _ := c.run(args...); code != 1 {
			t.Errorf("%s: exit %d, want 1", name, code)
		}
	}
}

func TestCommandErrorsCarryExitCode(t *testing.T) {
	cmd := Command()
	cmd.SetArgs([]string{"--no-such-flag", "refresh"})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	err := cmd.Execute()
	var ee *ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("error %v does not carry exit code 1", err)
	}
	if !errors.Is(err, ErrUsage) {
		t.Fatalf("error %v is not ErrUsage", err)
	}
}
