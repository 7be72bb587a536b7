package e2e

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/apiclient"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/mitm"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tufrepo"
)

// TestTargetsKeyRotationRealProcesses performs the recovery from a leaked
// integrator targets key with real processes: a server, an agent behind a
// man-in-the-middle proxy, and the operator commands of the ztota binary.
// v1 is released with K1 and committed; "ztota keys rotate --repo image
// --role targets" makes K2, re-signs the current targets and publishes the
// new root in one command. An attacker holding K1 signs targets with a
// release of its own: the server refuses them over the API. The operator
// also rotates the director timestamp key and the server is stopped; the attacker writes its targets into the server's database with
// a snapshot and timestamp signed by the server's own online keys, and the
// server starts again (same data directory, same --keys flag) and serves
// them: the device, through the proxy, fetches them and never trusts them.
// "ztota release" of v2 with K2 builds on the integrator's own record
// (the attacker's target dropped), and the same device commits v2 without
// re-enrolling, verifying the director under its rotated timestamp key.
func TestTargetsKeyRotationRealProcesses(t *testing.T) {
	s := startStack(t, true)
	keysDir, data, api := s.keys, s.data, s.api
	px := mitm.Start(t, s.url)
	cfg := s.agentConfig(t, "dev-1", px.URL)
	ag := s.startAgent(t, cfg)
	devs := []string{"dev-1"}
	waitDevices(t, api, devs, 30*time.Second, "", "")

	bundles := t.TempDir()
	v1 := releaseCLI(t, api, keysDir, scriptBundle(t, bundles, "1.0.0", true, 4<<10), "1.0.0", 1)
	ztota(t, append([]string{"deploy", v1.target, "--devices", "dev-1", "--failure-threshold", "1"}, api...)...)
	waitDevices(t, api, devs, 60*time.Second, "committed", v1.target)

	// One command: new targets key, targets re-signed, root published.
	out := ztota(t, append([]string{"keys", "rotate", "--keys", keysDir, "--repo", "image", "--role", "targets"}, api...)...)
	for _, want := range []string{"image targets re-signed with the new targets key from the last targets this keys directory signed", "published the new image root"} {
		if !strings.Contains(out, want) {
			t.Fatalf("ztota keys rotate printed %q; want %q", out, want)
		}
	}
	k1, err := keys.Load(filepath.Join(keysDir, keyset.RoleKeyFile("image", tufrepo.Targets)) + ".retired-1")
	if err != nil {
		t.Fatal(err)
	}

	// The attacker's targets, signed with K1.
	admin := s.admin(t)
	ctx := t.Context()
	curb, err := admin.ImageTargets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := tufrepo.Parse[metadata.TargetsType](curb)
	if err != nil {
		t.Fatal(err)
	}
	bad := tufrepo.NextTargets(cur, time.Now().Add(time.Hour))
	evil := []byte("#!/bin/sh\necho owned\n")
	sum := sha256.Sum256(evil)
	evilTarget := tufrepo.TargetPath("app", "6.6.6", "app.tar")
	tf, err := tufrepo.TargetFile(evilTarget, int64(len(evil)), sum[:], tufrepo.ImageCustom(tufrepo.ImageMeta{
		Name: "app", Version: "6.6.6", ReleaseCounter: 66, HardwareIDs: []string{"board-a"}, Module: "app", ArtifactType: tufrepo.ArtifactBundle}))
	if err != nil {
		t.Fatal(err)
	}
	bad.Signed.Targets[evilTarget] = tf
	badb, err := tufrepo.Sign(bad, k1)
	if err != nil {
		t.Fatal(err)
	}
	var ae *apiclient.APIError
	if err := admin.PublishImageTargets(ctx, badb); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Fatalf("the server took image targets signed by the retired key: %v; want 400", err)
	}

	// The director timestamp key is rotated as well.
	ztota(t, "keys", "rotate", "--keys", keysDir, "--repo", "director", "--role", "timestamp")
	newTS, err := os.ReadFile(filepath.Join(keysDir, keyset.RoleKeyFile("director", tufrepo.Timestamp)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "keys", "new-director-timestamp.key"), newTS, 0o600); err != nil {
		t.Fatal(err)
	}
	ztota(t, append([]string{"keys", "publish", "--keys", keysDir, "--repo", "director"}, api...)...)

	// The server stops; the attacker writes its targets into the server's
	// database with a snapshot and timestamp signed by the server's own
	// online keys; the server starts again (same --keys flag) and serves
	// them.
	s.srv.stop(10 * time.Second)
	injectImageTargets(t, data, bad.Signed.Version, badb)
	s.startServer(t, "server2", s.addr)
	badPath := fmt.Sprintf("/image/%d.targets.json", bad.Signed.Version)
	// Two refreshes that fetched the attacker's targets: the first has
	// finished when the second starts.
	testbed.WaitFor(t, 30*time.Second, "the device to fetch the attacker's targets twice", func() bool {
		n := 0
		for _, ex := range px.Log() {
			if ex.Path == badPath && ex.Status == http.StatusOK {
				n++
			}
		}
		return n >= 2
	})
	trustedTargets := func() *metadata.Metadata[metadata.TargetsType] {
		b, err := os.ReadFile(filepath.Join(cfg.DataDir, "tuf", "image", "targets.json"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := tufrepo.Parse[metadata.TargetsType](b)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if tt := trustedTargets(); tt.Signed.Version >= bad.Signed.Version || tt.Signed.Targets[evilTarget] != nil {
		t.Fatalf("the device trusts image targets v%d with %d targets (the attacker's is v%d)", tt.Signed.Version, len(tt.Signed.Targets), bad.Signed.Version)
	}

	// The integrator's next release is built on its own record: the
	// attacker's target is dropped.
	out = ztota(t, append([]string{"release", scriptBundle(t, bundles, "2.0.0", true, 4<<10), "--name", "app", "--version", "2.0.0",
		"--counter", "2", "--hardware", "board-a", "--module", "app", "--keys", keysDir}, api...)...)
	if !strings.Contains(out, "dropped "+evilTarget) {
		t.Fatalf("ztota release printed %q; want the attacker's %s dropped", out, evilTarget)
	}
	m := releasedLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ztota release printed %q", out)
	}
	v2 := released{m[1], m[2]}
	ztota(t, append([]string{"deploy", v2.target, "--devices", "dev-1", "--failure-threshold", "1"}, api...)...)
	waitDevices(t, api, devs, 60*time.Second, "committed", v2.target)
	tt := trustedTargets()
	if tt.Signed.Targets[v1.target] == nil || tt.Signed.Targets[v2.target] == nil || tt.Signed.Targets[evilTarget] != nil {
		t.Fatalf("the device trusts targets %v; want v1 and v2 only", tt.Signed.Targets)
	}
	for _, repo := range []string{"image", "director"} {
		b, err := os.ReadFile(filepath.Join(cfg.DataDir, "tuf", repo, "root.json"))
		if err != nil {
			t.Fatal(err)
		}
		r, err := tufrepo.Parse[metadata.RootType](b)
		if err != nil {
			t.Fatal(err)
		}
		if r.Signed.Version != 2 {
			t.Fatalf("the device trusts %s root v%d, want the rotated v2", repo, r.Signed.Version)
		}
	}
	ag.stop(10 * time.Second)
	checkSlots(t, cfg.DataDir, v2.sha256)
	s.srv.stop(10 * time.Second)
}

// injectImageTargets writes targets bytes into a stopped server's database
// as the next image targets version, with a snapshot and timestamp signed
// by the server's online keys.
func injectImageTargets(t *testing.T, data string, version int64, targets []byte) {
	t.Helper()
	st, err := store.Open(t.Context(), data)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testbed.InjectImageTargets(t, st, filepath.Join(data, "keys"), version, targets)
}
