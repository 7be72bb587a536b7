package cli

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
)

// TestDevicesListAndShowPrintModules runs 'ztota devices list' and
// 'devices show' against a server holding a device with two modules, one
// on its backup because of two advisories: the list has a row per device
// and module with mode, why and since; show prints the modules and the
// recent reports with their module, mode and advisories; --json carries
// the same.
func TestDevicesListAndShowPrintModules(t *testing.T) {
	b := testbed.New(t, testbed.Options{})
	ctx := testbed.Ctx(t)
	st := b.Server.Store()
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	err := st.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, public_key, hardware_id, grp, enrolled) VALUES ('dev-1', zeroblob(32), 'hw1', 'lab', 1700000000),
			('dev-2', zeroblob(32), 'hw1', '', 1700000000)`); err != nil {
			return err
		}
		for _, r := range []store.Release{
			{Target: "app/1.0/app.tar", Name: "app", Version: "1.0", HardwareIDs: []string{"hw1"}, Module: "app", SHA256: strings.Repeat("a", 64), Length: 1},
			{Target: "app/0.9/app.tar", Name: "app", Version: "0.9", HardwareIDs: []string{"hw1"}, Module: "app", SHA256: strings.Repeat("b", 64), Length: 1},
			{Target: "web/2.0/web.tar", Name: "web", Version: "2.0", HardwareIDs: []string{"hw1"}, Module: "web", SHA256: strings.Repeat("c", 64), Length: 1},
		} {
			if err := store.PutReleaseTx(ctx, tx, r); err != nil {
				return err
			}
		}
		reps := []store.Report{
			{ID: "r1", DeviceID: "dev-1", Seq: 1, Time: t0, State: "committed", Target: "web/2.0/web.tar", Module: "web"},
			{ID: "r2", DeviceID: "dev-1", Seq: 2, Time: t0, State: "committed", Target: "app/1.0/app.tar", Module: "app"},
			{ID: "r3", DeviceID: "dev-1", Seq: 3, Time: t0.Add(-time.Second), State: "on-backup", Target: "app/0.9/app.tar", Module: "app",
				Mode: "backup", Advisories: "GO-2026-0001,GO-2026-0002"},
		}
		for i, r := range reps {
			r.Payload, r.Sig = []byte("{}"), []byte("s")
			if _, err := store.AddReportsTx(ctx, tx, []store.Report{r}, t0.Add(time.Duration(i)*time.Second)); err != nil {
				return err
			}
			if err := store.UpdateModuleStatusTx(ctx, tx, "dev-1", r.Module, r, t0.Add(time.Duration(i)*time.Second)); err != nil {
				return err
			}
		}
		return store.SetModuleAssignedTx(ctx, tx, "dev-1", "web", "web/2.0/web.tar", "dep-1")
	})
	if err != nil {
		t.Fatal(err)
	}
	api := []string{"--server", b.URL, "--insecure-http", "--token", b.Admin.Token}
	code, out := run(t, append([]string{"devices", "list"}, api...)...)
	if code != 0 {
		t.Fatalf("devices list: %d %s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("devices list: want a header and 3 rows (2 modules of dev-1, dev-2 without any):\n%s", out)
	}
	for _, col := range []string{"DEVICE", "MODULE", "STATE", "INSTALLED", "MODE", "WHY", "SINCE", "LAST SEEN"} {
		if !strings.Contains(lines[0], col) {
			t.Fatalf("header %q lacks %s", lines[0], col)
		}
	}
	want := [][]string{
		{"dev-1", "app", "on-backup", "app/0.9/app.tar", "", "backup", "GO-2026-0001,GO-2026-0002", "2026-03-04T05:06:09Z"},
		{"dev-1", "web", "committed", "web/2.0/web.tar", "web/2.0/web.tar", "normal", "-", "-"},
		{"dev-2", "-", "", "", "", "-", "-", "-"},
	}
	// Cells by the header's column positions, as scripts read them.
	heads := []string{"DEVICE", "MODULE", "STATE", "INSTALLED", "ASSIGNED", "MODE", "WHY", "SINCE", "HARDWARE"}
	for i, w := range want {
		l := lines[i+1]
		var got []string
		for j := 0; j+1 < len(heads); j++ {
			from, to := strings.Index(lines[0], heads[j]), strings.Index(lines[0], heads[j+1])
			got = append(got, strings.TrimSpace(l[min(from, len(l)):min(to, len(l))]))
		}
		if strings.Join(got, "|") != strings.Join(w, "|") {
			t.Errorf("row %d: %q, cells %q, want %q", i+1, l, got, w)
		}
	}
	code, out = run(t, append([]string{"devices", "list", "--json"}, api...)...)
	var devs []store.Device
	if code != 0 || json.Unmarshal([]byte(out), &devs) != nil || len(devs) != 2 || len(devs[0].Modules) != 2 || devs[0].Modules[0].Mode != "backup" {
		t.Fatalf("devices list --json: %d %s", code, out)
	}

	code, out = run(t, append([]string{"devices", "show", "dev-1"}, api...)...)
	if code != 0 {
		t.Fatalf("devices show: %d %s", code, out)
	}
	for _, s := range []string{"device:     dev-1", "group:      lab", "MODULE", "DEPLOYMENT",
		"app/0.9/app.tar  0.9", "dep-1", "backup", "GO-2026-0001,GO-2026-0002", "2026-03-04T05:06:09Z", "2026-03-04T05:06:06Z",
		"on-backup at 2026-03-04T05:06:09Z", "recent reports (3):",
		"on-backup        module=app mode=backup advisories=GO-2026-0001,GO-2026-0002 app/0.9/app.tar",
		"committed        module=web web/2.0/web.tar"} {
		if !strings.Contains(out, s) {
			t.Errorf("devices show lacks %q:\n%s", s, out)
		}
	}
	code, out = run(t, append([]string{"devices", "show", "dev-1", "--json", "--history", "1"}, api...)...)
	var sh DeviceShow
	if code != 0 || json.Unmarshal([]byte(out), &sh) != nil || len(sh.Device.Modules) != 2 || len(sh.History) != 1 || sh.History[0].Advisories != "GO-2026-0001,GO-2026-0002" {
		t.Fatalf("devices show --json: %d %s", code, out)
	}
	if code, out := run(t, append([]string{"devices", "show", "dev-9"}, api...)...); code == 0 || !strings.Contains(out, "404") {
		t.Fatalf("devices show of an unknown device: %d %s", code, out)
	}
	if code, out := run(t, append([]string{"devices", "show", "dev-1", "--history", "0"}, api...)...); code == 0 || !strings.Contains(out, "--history") {
		t.Fatalf("devices show --history 0: %d %s", code, out)
	}
}

// TestReleaseBackupFlag: 'ztota release --backup TARGET' designates the
// backup; the server keeps it on the release, and refuses a backup of
// another module with a message that says so.
func TestReleaseBackupFlag(t *testing.T) {
	b := testbed.New(t, testbed.Options{})
	api := []string{"--server", b.URL, "--insecure-http", "--token", b.Admin.Token, "--keys", b.KeysDir}
	art := func(name string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(name+" bytes"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	code, out := run(t, append([]string{"release", art("app.tar"), "--name", "app", "--version", "1.0", "--counter", "1", "--hardware", "hw1"}, api...)...)
	if code != 0 {
		t.Fatalf("release 1.0: %d %s", code, out)
	}
	code, out = run(t, append([]string{"release", art("web.tar"), "--name", "web", "--version", "1.0", "--counter", "1", "--hardware", "hw1"}, api...)...)
	if code != 0 {
		t.Fatalf("release web 1.0: %d %s", code, out)
	}
	code, out = run(t, append([]string{"release", art("app2.tar"), "--name", "app", "--version", "2.0", "--counter", "2", "--hardware", "hw1", "--backup", "web/1.0/web.tar"}, api...)...)
	if code == 0 || !strings.Contains(out, "same module") {
		t.Fatalf("release with a backup of another module: %d %s", code, out)
	}
	code, out = run(t, append([]string{"release", art("app2.tar"), "--name", "app", "--version", "2.0", "--counter", "2", "--hardware", "hw1", "--backup", "app/1.0/app.tar"}, api...)...)
	if code != 0 {
		t.Fatalf("release with a backup: %d %s", code, out)
	}
	r, err := b.Server.Store().Release(testbed.Ctx(t), "app@2.0")
	if err != nil || r.Backup != "app/1.0/app.tar" {
		t.Fatalf("release app 2.0: backup %q, %v", r.Backup, err)
	}
}
