package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustExec(t *testing.T, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, qs ...string) {
	t.Helper()
	for _, q := range qs {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func oldRelease(target, module, sha string) string {
	return fmt.Sprintf(`INSERT INTO releases (target, name, version, release_counter, hardware_ids, module, sha256, length, created)
		VALUES ('%s', '%s', '1', 1, '["hw1"]', '%s', '%s', 10, 1700000000)`, target, module, module, sha)
}

func oldDevice(id, installed, assigned string) string {
	return fmt.Sprintf(`INSERT INTO devices (id, public_key, hardware_id, enrolled, state, installed, assigned, last_seq)
		VALUES ('%s', zeroblob(32), 'hw1', 1700000000, 'committed', '%s', '%s', 7)`, id, installed, assigned)
}

// TestOldDatabaseKeepsEachDevicesReleaseByModule opens a database made
// before device_modules (one installed and one assigned release per
// device): Open files each under its release's module, once; a target
// that is no release here (a factory image) is left out; a later Open
// does not redo it over what changed since.
func TestOldDatabaseKeepsEachDevicesReleaseByModule(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := OpenSQLite(ctx, filepath.Join(dir, "ztota.db"), schema)
	if err != nil {
		t.Fatal(err)
	}
	shaApp1, shaApp2, shaWeb1 := strings.Repeat("a1", 32), strings.Repeat("a2", 32), strings.Repeat("b1", 32)
	mustExec(t, db,
		oldRelease("app/1/a.tar", "app", shaApp1), oldRelease("app/2/a.tar", "app", shaApp2), oldRelease("web/1/w.tar", "web", shaWeb1),
		oldDevice("dev-1", "app/1/a.tar", "app/2/a.tar"),
		oldDevice("dev-2", "factory.img", "web/1/w.tar"),
		oldDevice("dev-3", "web/1/w.tar", "app/1/a.tar"),
		oldDevice("dev-4", "", ""),
	)
	db.Close()

	want := map[string]string{
		"dev-1": "[app installed=app/1/a.tar assigned=app/2/a.tar mode=normal]",
		"dev-2": "[web installed= assigned=web/1/w.tar mode=normal]",
		"dev-3": "[app installed= assigned=app/1/a.tar mode=normal web installed=web/1/w.tar assigned= mode=normal]",
		"dev-4": "[]",
	}
	show := func(ms []DeviceModule) string {
		var parts []string
		for _, m := range ms {
			parts = append(parts, fmt.Sprintf("%s installed=%s assigned=%s mode=%s", m.Module, m.Release, m.Assigned, m.Mode))
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	for i := 0; i < 2; i++ {
		st, err := Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		for dev, w := range want {
			ms, err := st.DeviceModules(ctx, dev)
			if err != nil {
				t.Fatal(err)
			}
			if got := show(ms); got != w {
				t.Fatalf("open %d: %s modules %s, want %s", i, dev, got, w)
			}
		}
		// The migrated installed release counts as running its artifact.
		err = st.Tx(ctx, func(tx *sql.Tx) error {
			got, err := DevicesRunningTx(ctx, tx, shaApp1)
			if err != nil {
				return err
			}
			if len(got) != 1 || got[0] != (AffectedDevice{DeviceID: "dev-1", Module: "app", Target: "app/1/a.tar"}) {
				return fmt.Errorf("running app 1: %+v", got)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// A change after the migration stays: the next Open does not migrate again.
			err = st.Tx(ctx, func(tx *sql.Tx) error { return SetModuleAssignedTx(ctx, tx, "dev-4", "app", "app/1/a.tar", "") })
			if err != nil {
				t.Fatal(err)
			}
			err = st.Tx(ctx, func(tx *sql.Tx) error { return SetModuleAssignedTx(ctx, tx, "dev-1", "app", "", "") })
			if err != nil {
				t.Fatal(err)
			}
			want["dev-4"] = "[app installed= assigned=app/1/a.tar mode=normal]"
			want["dev-1"] = "[app installed=app/1/a.tar assigned= mode=normal]"
		}
		st.Close()
	}
}

func newDevice(t *testing.T, st *Store, id string) {
	t.Helper()
	mustExec(t, st.DB(), fmt.Sprintf(`INSERT INTO devices (id, public_key, hardware_id, enrolled) VALUES ('%s', zeroblob(32), 'hw1', 1700000000)`, id))
}

func commitModule(t *testing.T, st *Store, dev, module, target string, seq uint64) {
	t.Helper()
	err := st.Tx(context.Background(), func(tx *sql.Tx) error {
		return UpdateModuleStatusTx(context.Background(), tx, dev, module, Report{State: "committed", Target: target, Seq: seq, Time: time.Now()}, time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDevicesRunningIsPerModule: the devices running an artifact are
// found per module of the device; a decommissioned device is not one.
func TestDevicesRunningIsPerModule(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	shaA, shaW := strings.Repeat("0a", 32), strings.Repeat("0b", 32)
	mustExec(t, st.DB(), oldRelease("app/1/a.tar", "app", shaA), oldRelease("web/1/w.tar", "web", shaW))
	for _, d := range []string{"d1", "d2", "d3"} {
		newDevice(t, st, d)
	}
	commitModule(t, st, "d1", "app", "app/1/a.tar", 1)
	commitModule(t, st, "d1", "web", "web/1/w.tar", 2)
	commitModule(t, st, "d2", "web", "web/1/w.tar", 1)
	commitModule(t, st, "d3", "app", "app/1/a.tar", 1)
	mustExec(t, st.DB(), `UPDATE devices SET decommissioned=1700000001 WHERE id='d3'`)
	// An older report arriving late changes nothing.
	commitModule(t, st, "d2", "web", "app/1/a.tar", 0)
	for sha, want := range map[string][]AffectedDevice{
		shaA: {{"d1", "app", "app/1/a.tar"}},
		shaW: {{"d1", "web", "web/1/w.tar"}, {"d2", "web", "web/1/w.tar"}},
	} {
		err := st.Tx(ctx, func(tx *sql.Tx) error {
			got, err := DevicesRunningTx(ctx, tx, sha)
			if err != nil {
				return err
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("running %s: %+v, want %+v", sha[:4], got, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestModuleModeFollowsMitigationReports: mode and advisories move with
// the mitigation states (or an explicit mode), since is the receive time
// of the report that moved them, and a report older than the module's
// newest changes nothing.
func TestModuleModeFollowsMitigationReports(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	newDevice(t, st, "d1")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	apply := func(r Report, at time.Time) DeviceModule {
		t.Helper()
		if err := st.Tx(ctx, func(tx *sql.Tx) error { return UpdateModuleStatusTx(ctx, tx, "d1", "app", r, at) }); err != nil {
			t.Fatal(err)
		}
		m, err := DeviceModuleTx(ctx, st.DB(), "d1", "app")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := apply(Report{Seq: 1, State: "revocation-seen", Advisories: "A-1,B-2", Time: t0.Add(-time.Minute)}, t0)
	if m.Mode != ModeNormal || !slices.Equal(m.Why, []string{"A-1", "B-2"}) || !m.Since.Equal(t0) || !m.SinceDevice.Equal(t0.Add(-time.Minute)) {
		t.Fatalf("revocation-seen: %+v", m)
	}
	m = apply(Report{Seq: 2, State: "on-backup", Time: t0}, t0.Add(time.Minute))
	if m.Mode != ModeBackup || len(m.Why) != 2 || !m.Since.Equal(t0.Add(time.Minute)) {
		t.Fatalf("on-backup: %+v", m)
	}
	m = apply(Report{Seq: 1, State: "recovered", Time: t0}, t0.Add(2*time.Minute))
	if m.Mode != ModeBackup || m.LastState != "on-backup" {
		t.Fatalf("a late older report changed the module: %+v", m)
	}
	m = apply(Report{Seq: 3, State: "degraded", Mode: ModeDegraded, Advisories: "C-3", Time: t0}, t0.Add(3*time.Minute))
	if m.Mode != ModeDegraded || !slices.Equal(m.Why, []string{"C-3"}) {
		t.Fatalf("degraded: %+v", m)
	}
	m = apply(Report{Seq: 4, State: "recovered", Time: t0}, t0.Add(4*time.Minute))
	if m.Mode != ModeNormal || len(m.Why) != 0 || !m.Since.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("recovered: %+v", m)
	}
}
