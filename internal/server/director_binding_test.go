package server_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/devauth"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/tufclient"
	"github.com/ztota/ztota/internal/tufrepo"
)

// TestDirectorMetadataNamesItsDevice: every director targets, snapshot
// and timestamp the server signs names its device, and the shared image
// repository's do not.
func TestDirectorMetadataNamesItsDevice(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	e.enroll(t, "dev-a", "hw1", "")
	e.enroll(t, "dev-b", "hw1", "")
	st := e.Server.Store()
	for _, dev := range []string{"dev-a", "dev-b"} {
		for _, role := range []string{tufrepo.Targets, tufrepo.Snapshot, tufrepo.Timestamp} {
			m, err := st.LatestMeta(ctx, "director/"+dev, role)
			if err != nil {
				t.Fatal(err)
			}
			if err := tufrepo.CheckDevice(m.Data, dev); err != nil {
				t.Errorf("%s director %s: %v", dev, role, err)
			}
		}
	}
	m, err := st.LatestMeta(ctx, "image", tufrepo.Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	if err := tufrepo.CheckDevice(m.Data, "dev-a"); !errors.Is(err, tufrepo.ErrNotForDevice) {
		t.Errorf("image timestamp: %v, want it unbound", err)
	}
}

// TestServerUpgradeBindsExistingDirectors plays a server upgraded in
// place: its database holds director metadata an older server signed
// without the device field, and the device's agent trusts those unbound
// documents. On start the server re-signs that director (targets,
// snapshot, timestamp one version up, bound to the device, same
// assignment); the upgraded agent, which refuses unbound downloads, moves
// from the trusted unbound documents to the new bound ones; a second
// start re-signs nothing.
func TestServerUpgradeBindsExistingDirectors(t *testing.T) {
	data := filepath.Join(t.TempDir(), "server")
	useData := func(c *server.Config) { c.DataDir = data }
	var (
		root      []byte
		key       []byte
		oldTS     int64
		oldTarget []byte
	)
	metaDir := filepath.Join(t.TempDir(), "device-tuf")
	t.Run("older server", func(t *testing.T) {
		e := newEnv(t, useData)
		ctx := ctxT(t)
		d := e.enroll(t, "dev-a", "hw1", "")
		key = d.key
		keep, err := os.ReadFile(filepath.Join(e.KeysDir, keyset.OnlineDir, keyset.DirectorRootFile))
		if err != nil {
			t.Fatal(err)
		}
		root = keep
		// What an older server wrote: the next chain, unbound, signed
		// with the director's online keys.
		ok, err := keyset.LoadOnline(filepath.Join(e.KeysDir, keyset.OnlineDir))
		if err != nil {
			t.Fatal(err)
		}
		st := e.Server.Store()
		latest := func(role string) []byte {
			m, err := st.LatestMeta(ctx, "director/dev-a", role)
			if err != nil {
				t.Fatal(err)
			}
			return m.Data
		}
		pt, err := tufrepo.Parse[metadata.TargetsType](latest(tufrepo.Targets))
		if err != nil {
			t.Fatal(err)
		}
		ps, err := tufrepo.Parse[metadata.SnapshotType](latest(tufrepo.Snapshot))
		if err != nil {
			t.Fatal(err)
		}
		pts, err := tufrepo.Parse[metadata.TimestampType](latest(tufrepo.Timestamp))
		if err != nil {
			t.Fatal(err)
		}
		exp := time.Now().Add(24 * time.Hour)
		tg := tufrepo.NextTargets(pt, exp)
		tb, err := tufrepo.Sign(tg, ok.DirectorTargets)
		if err != nil {
			t.Fatal(err)
		}
		sn := tufrepo.NextSnapshot(ps, tg.Signed.Version, tb, exp)
		sb, err := tufrepo.Sign(sn, ok.DirectorSnapshot)
		if err != nil {
			t.Fatal(err)
		}
		ts := tufrepo.NextTimestamp(pts, sn.Signed.Version, sb, exp)
		tsb, err := tufrepo.Sign(ts, ok.DirectorTimestamp)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutMeta(ctx,
			store.Meta{Repo: "director/dev-a", Role: tufrepo.Targets, Version: tg.Signed.Version, Data: tb, Expires: exp},
			store.Meta{Repo: "director/dev-a", Role: tufrepo.Snapshot, Version: sn.Signed.Version, Data: sb, Expires: exp},
			store.Meta{Repo: "director/dev-a", Role: tufrepo.Timestamp, Version: ts.Signed.Version, Data: tsb, Expires: exp},
		); err != nil {
			t.Fatal(err)
		}
		if err := tufrepo.CheckDevice(tsb, "dev-a"); !errors.Is(err, tufrepo.ErrNotForDevice) {
			t.Fatalf("the simulated old timestamp is bound: %v", err)
		}
		oldTS, oldTarget = ts.Signed.Version, tb
		// The device's older agent trusted exactly these documents.
		if err := os.MkdirAll(metaDir, 0o700); err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{"root.json": keep, "timestamp.json": tsb, "snapshot.json": sb, "targets.json": tb} {
			if err := os.WriteFile(filepath.Join(metaDir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	})
	if t.Failed() {
		return
	}

	var boundTS int64
	t.Run("upgraded server", func(t *testing.T) {
		e := newEnv(t, useData)
		ctx := ctxT(t)
		st := e.Server.Store()
		for _, role := range []string{tufrepo.Targets, tufrepo.Snapshot, tufrepo.Timestamp} {
			m, err := st.LatestMeta(ctx, "director/dev-a", role)
			if err != nil {
				t.Fatal(err)
			}
			if err := tufrepo.CheckDevice(m.Data, "dev-a"); err != nil {
				t.Fatalf("after the upgrade, director %s: %v", role, err)
			}
			if role == tufrepo.Timestamp {
				boundTS = m.Version
			}
		}
		if boundTS != oldTS+1 {
			t.Fatalf("after the upgrade the director timestamp is v%d, want v%d (one re-signing)", boundTS, oldTS+1)
		}
		old, err := tufrepo.Parse[metadata.TargetsType](oldTarget)
		if err != nil {
			t.Fatal(err)
		}
		cur, err := st.LatestMeta(ctx, "director/dev-a", tufrepo.Targets)
		if err != nil {
			t.Fatal(err)
		}
		nt, err := tufrepo.Parse[metadata.TargetsType](cur.Data)
		if err != nil {
			t.Fatal(err)
		}
		if len(nt.Signed.Targets) != len(old.Signed.Targets) {
			t.Fatalf("re-signing changed the assignment: %d targets, was %d", len(nt.Signed.Targets), len(old.Signed.Targets))
		}
		// The upgraded agent moves from the unbound documents it trusts
		// to the bound ones.
		up, err := tufclient.NewUpdater(ctx, tufclient.Options{
			MetadataURL: e.URL + "/director/dev-a", MetadataDir: metaDir, TrustedRoot: root, Device: "dev-a",
			HTTPClient: &http.Client{Transport: &devauth.Transport{DeviceID: "dev-a", Key: key, Now: time.Now}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := up.Refresh(); err != nil {
			t.Fatalf("the upgraded agent's refresh after the server upgrade: %v", err)
		}
		if v := up.GetTrustedMetadataSet().Timestamp.Signed.Version; v != boundTS {
			t.Fatalf("device trusts director timestamp v%d, want the bound v%d", v, boundTS)
		}
	})
	if t.Failed() {
		return
	}

	// A second start finds every director bound and signs nothing.
	e := newEnv(t, useData)
	m, err := e.Server.Store().LatestMeta(ctxT(t), "director/dev-a", tufrepo.Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != boundTS {
		t.Fatalf("a second start re-signed the bound director: timestamp v%d, was v%d", m.Version, boundTS)
	}
}
