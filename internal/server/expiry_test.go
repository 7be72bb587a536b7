package server_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/tufclient"
	"github.com/ztota/ztota/internal/tufrepo"
)

func TestResignExpiringKeepsDevicesRefreshingPastTheFirstExpiry(t *testing.T) {
	e := newEnv(t, func(c *server.Config) {
		c.TimestampTTL = time.Hour
		c.SnapshotTTL = 2 * time.Hour
		c.DirectorTargetTTL = 4 * time.Hour
	})
	ctx := ctxT(t)
	st := e.Server.Store()
	d := e.enroll(t, "dev-a", "hw1", "")
	root, err := os.ReadFile(filepath.Join(e.KeysDir, keyset.OnlineDir, keyset.DirectorRootFile))
	if err != nil {
		t.Fatal(err)
	}
	metaDir := t.TempDir()
	refresh := func() (int64, error) {
		u, err := tufclient.NewUpdater(ctx, tufclient.Options{
			MetadataURL: e.URL + "/director/" + d.id, MetadataDir: metaDir, TrustedRoot: root,
			HTTPClient: d.hc, RefTime: e.clk.Now(),
		})
		if err != nil {
			return 0, err
		}
		if err := u.Refresh(); err != nil {
			return 0, err
		}
		return u.GetTrustedMetadataSet().Timestamp.Signed.Version, nil
	}
	if _, err := refresh(); err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	latest := func(repo, role string) store.Meta {
		m, err := st.LatestMeta(ctx, repo, role)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	dirRepo := "director/" + d.id
	firstTS := latest(dirRepo, tufrepo.Timestamp)
	firstImageTS := latest("image", tufrepo.Timestamp)
	firstTargets := latest(dirRepo, tufrepo.Targets)

	// Control: without re-signing, the device cannot refresh once the
	// timestamp expired.
	e.clk.Advance(time.Hour + time.Minute)
	if _, err := refresh(); err == nil {
		t.Fatal("a refresh past the timestamp's expiry succeeded without re-signing: the control is broken")
	}
	if err := e.Server.ResignExpiring(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := refresh(); err != nil {
		t.Fatalf("refresh after re-signing: %v", err)
	}

	// Now as the background loop would: every 10 minutes for 6 hours.
	type key struct{ repo, role string }
	prev := map[key]int64{}
	for step := 0; step < 36; step++ {
		e.clk.Advance(10 * time.Minute)
		if err := e.Server.ResignExpiring(ctx); err != nil {
			t.Fatal(err)
		}
		now := e.clk.Now()
		for _, k := range []key{{dirRepo, tufrepo.Timestamp}, {dirRepo, tufrepo.Snapshot}, {dirRepo, tufrepo.Targets}, {"image", tufrepo.Timestamp}, {"image", tufrepo.Snapshot}} {
			m := latest(k.repo, k.role)
			if m.Version < prev[k] {
				t.Fatalf("%s %s went from version %d down to %d", k.repo, k.role, prev[k], m.Version)
			}
			prev[k] = m.Version
			if !m.Expires.After(now) {
				t.Fatalf("step %d: %s %s version %d expired at %s, now %s", step, k.repo, k.role, m.Version, m.Expires, now)
			}
		}
	}
	if !firstTS.Expires.Before(e.clk.Now()) || !firstImageTS.Expires.Before(e.clk.Now()) {
		t.Fatal("the clock did not pass the original timestamps' expiry")
	}
	if ts := latest(dirRepo, tufrepo.Timestamp); ts.Version <= firstTS.Version {
		t.Errorf("director timestamp not re-signed: version %d", ts.Version)
	}
	if it := latest("image", tufrepo.Timestamp); it.Version <= firstImageTS.Version {
		t.Errorf("image timestamp not re-signed: version %d", it.Version)
	}
	if tg := latest(dirRepo, tufrepo.Targets); tg.Version <= firstTargets.Version || !tg.Expires.After(firstTargets.Expires) {
		t.Errorf("director targets not re-signed: version %d expires %s", tg.Version, tg.Expires)
	}
	v, err := refresh()
	if err != nil {
		t.Fatalf("refresh 6 hours later: %v", err)
	}
	if want := latest(dirRepo, tufrepo.Timestamp).Version; v != want {
		t.Errorf("device trusts timestamp %d, server's latest is %d", v, want)
	}
	// The image repository too, with no device signature needed.
	imgRoot, err := os.ReadFile(filepath.Join(e.KeysDir, keyset.OnlineDir, keyset.ImageRootFile))
	if err != nil {
		t.Fatal(err)
	}
	u, err := tufclient.NewUpdater(ctx, tufclient.Options{MetadataURL: e.URL + "/image", MetadataDir: t.TempDir(),
		TrustedRoot: imgRoot, HTTPClient: d.hc, RefTime: e.clk.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Refresh(); err != nil {
		t.Fatalf("image refresh 6 hours later: %v", err)
	}
}
