package agent_test

// Device mitigation by the integrator's pre-designated backup: the
// certifier's signed list revokes the running release, whose signed image
// metadata names a backup; the agent installs the backup through the A/B
// path (health-checked, committed) and reports it, keeps it across a
// restart, and returns to normal on the fix. A backup that is itself
// revoked, uncertified, for another module or for other hardware is not
// used (degraded instead); a director cannot order the backup without a
// revocation.

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/sandbox"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tufrepo"
)

// publish releases a bundle with the given image metadata (defaults: name
// and module "app", hardware board-a) and, if certify, uploads a passing
// certificate for it.
func (cb *certBed) publish(t *testing.T, bundle string, im tufrepo.ImageMeta, certify bool) release.Result {
	t.Helper()
	if im.Name == "" {
		im.Name = "app"
	}
	if im.Module == "" {
		im.Module = "app"
	}
	if len(im.HardwareIDs) == 0 {
		im.HardwareIDs = []string{"board-a"}
	}
	r, err := release.Publish(testbed.Ctx(t), cb.b.Admin, release.Options{Artifact: bundle, KeysDir: cb.b.KeysDir, Meta: im})
	if err != nil {
		t.Fatal(err)
	}
	if certify {
		if _, err := cb.b.Admin.PutCertificate(testbed.Ctx(t), r.SHA256, cb.bundle(t, r.SHA256, attest.KindCertificate, attest.VerdictPass)); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// designateBackup re-signs the server's image targets with the
// integrator's targets key so that target names backup, bypassing the
// checks of the release tool and of the server, and stores them as the
// next version.
func designateBackup(t *testing.T, b *testbed.Bed, target, backup string) {
	t.Helper()
	ctx := testbed.Ctx(t)
	cur, err := b.Admin.ImageTargets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	md, err := tufrepo.Parse[metadata.TargetsType](cur)
	if err != nil {
		t.Fatal(err)
	}
	tf := md.Signed.Targets[target]
	m, err := tufrepo.ParseImageMeta(tf)
	if err != nil {
		t.Fatal(err)
	}
	m.Backup = backup
	sha := tf.Hashes["sha256"]
	ntf, err := tufrepo.TargetFile(target, tf.Length, sha, tufrepo.ImageCustom(m))
	if err != nil {
		t.Fatal(err)
	}
	next := tufrepo.NextTargets(md, time.Now().Add(time.Hour))
	next.Signed.Version = md.Signed.Version + 1
	next.Signed.Targets[target] = ntf
	key, err := keys.Load(filepath.Join(b.KeysDir, keyset.OfflineDir, keyset.ImageTargetsKey))
	if err != nil {
		t.Fatal(err)
	}
	data, err := tufrepo.Sign(next, key)
	if err != nil {
		t.Fatal(err)
	}
	testbed.InjectImageTargets(t, b.Server.Store(), filepath.Join(b.Dir, "server", "keys"), next.Signed.Version, data)
	b.Server.ForgetCachedMeta("image")
}

// payload decodes the module fields of a stored report.
func payload(t *testing.T, r store.Report) (module, mode, advisories string) {
	t.Helper()
	var p struct {
		Module     string `json:"module"`
		Mode       string `json:"mode"`
		Advisories string `json:"advisories"`
	}
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		t.Fatal(err)
	}
	return p.Module, p.Mode, p.Advisories
}

// statesIn returns the device's reports of the given states, in order.
func statesIn(b *testbed.Bed, id string, states ...string) []store.Report {
	var out []store.Report
	for _, r := range b.History(id) {
		for _, s := range states {
			if r.State == s {
				out = append(out, r)
			}
		}
	}
	return out
}

// backupRelease publishes a certified backup (version 0.9.0, counter 1)
// and the release v1 (1.0.0, counter 2) designating it, and installs v1.
func backupSetup(t *testing.T, cb *certBed, a *agent.Agent, id string, backup tufrepo.ImageMeta, certifyBackup bool) (v1, bk release.Result) {
	t.Helper()
	cb.push(t, 1)
	backup.Version, backup.ReleaseCounter = "0.9.0", 1
	bk = cb.publish(t, cb.b.ScriptBundle("0.9.0", true, 1024), backup, certifyBackup)
	if backup.Module != "" || len(backup.HardwareIDs) > 0 {
		// A backup that the release tool and the server both refuse (another
		// module, other hardware): signed with the integrator's targets key
		// by other means and put into the server's store directly, as a
		// careless integrator and a server that checks nothing would.
		v1 = cb.publish(t, cb.b.ScriptBundle("1.0.0", true, 2048), tufrepo.ImageMeta{Version: "1.0.0", ReleaseCounter: 2}, true)
		designateBackup(t, cb.b, v1.Target, bk.Target)
	} else {
		v1 = cb.publish(t, cb.b.ScriptBundle("1.0.0", true, 2048), tufrepo.ImageMeta{Version: "1.0.0", ReleaseCounter: 2, Backup: bk.Target}, true)
	}
	cb.b.Deploy(v1.Target, id)
	testbed.CycleInstalls(t, a, v1.SHA256, "installing v1")
	return v1, bk
}

// TestRevokedReleaseSwitchesToItsBackup performs the revocation of the
// running release whose signed metadata designates a certified backup
// with a lower release counter: the agent installs the backup through
// the A/B path (health check, commit), reports revocation-seen,
// switching-to-backup and on-backup in that order (mode backup, the
// advisory), stays on it across an agent restart while the director
// still assigns the revoked release (no re-install), and runs the fix
// (a higher counter than the revoked release: the floor was not lowered
// to the backup's) normally again, reporting recovered.
func TestRevokedReleaseSwitchesToItsBackup(t *testing.T) {
	const id = "dev-backup-1"
	cb := newCertBed(t)
	cfg := degradeConfig(t, cb, id)
	a := cb.b.Agent(cfg)
	v1, bk := backupSetup(t, cb, a, id, tufrepo.ImageMeta{}, true)

	cb.push(t, 2, revocation(v1.SHA256, "GO-2026-0040"))
	if err := a.CheckRevocations(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := testbed.Installed(t, a); got != bk.SHA256 {
		t.Fatalf("after the revocation the device runs %s, want the backup %s", got, bk.SHA256)
	}
	if mode, adv, _ := a.Mode(); mode != agent.ModeBackup || len(adv) != 1 || adv[0] != "GO-2026-0040" {
		t.Fatalf("mode %q advisories %v, want backup for GO-2026-0040", mode, adv)
	}
	if a.ModulePID() == 0 || procUID(t, a.ModulePID()) != "0" {
		t.Fatal("the backup does not run under the normal (here: unconfined) profile")
	}
	waitStates(t, cb.b, a, id, "on-backup")
	var order []string
	for _, r := range statesIn(cb.b, id, "revocation-seen", "switching-to-backup", "health-checking", "committed", "on-backup", "degraded") {
		order = append(order, r.State)
		if r.State == "on-backup" || r.State == "switching-to-backup" || r.State == "revocation-seen" {
			mod, mode, adv := payload(t, r)
			if mod != "app" || adv != "GO-2026-0040" {
				t.Fatalf("%s report: module %q advisories %q", r.State, mod, adv)
			}
			if r.State == "on-backup" && mode != "backup" {
				t.Fatalf("on-backup report with mode %q", mode)
			}
		}
	}
	want := "committed revocation-seen switching-to-backup health-checking committed on-backup"
	if got := strings.Join(order[len(order)-6:], " "); got != want || strings.Contains(strings.Join(order, " "), "degraded") {
		t.Fatalf("reports %v, want them to end with %s and no degraded", order, want)
	}

	var st struct {
		Floor uint64 `json:"floor"`
	}
	raw, err := os.ReadFile(filepath.Join(cfg.DataDir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &st); err != nil || st.Floor != 2 {
		t.Fatalf("release counter floor %d (%v) on the backup, want v1's 2 kept", st.Floor, err)
	}

	// Restart: stays on the backup; the director still assigns v1, which
	// is not installed again.
	a.Close()
	a2 := cb.b.Agent(cfg)
	if err := a2.CheckRevocations(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	downloads := len(statesIn(cb.b, id, "downloading"))
	for range 2 {
		a2.Cycle(testbed.Ctx(t))
	}
	if got := testbed.Installed(t, a2); got != bk.SHA256 {
		t.Fatalf("after a restart the device runs %s, want the backup", got)
	}
	if mode, _, _ := a2.Mode(); mode != agent.ModeBackup {
		t.Fatalf("after a restart: mode %q, want backup", mode)
	}
	a2.FlushReports(testbed.Ctx(t))
	if n := len(statesIn(cb.b, id, "downloading")); n != downloads {
		t.Fatalf("the restarted agent downloaded again (%d downloading reports, had %d)", n, downloads)
	}
	if n := len(statesIn(cb.b, id, "switching-to-backup")); n != 1 {
		t.Fatalf("%d switching-to-backup reports, want 1", n)
	}

	// The fix.
	fix := cb.publish(t, cb.b.ScriptBundle("1.0.1", true, 4096), tufrepo.ImageMeta{Version: "1.0.1", ReleaseCounter: 3}, true)
	cb.b.Deploy(fix.Target, id)
	testbed.CycleInstalls(t, a2, fix.SHA256, "installing the fix")
	if mode, _, _ := a2.Mode(); mode != agent.ModeNormal {
		t.Fatalf("after the fix: mode %q, want normal", mode)
	}
	reportSaying(t, cb.b, a2, id, "recovered", "GO-2026-0040")
	rec := statesIn(cb.b, id, "recovered")
	if _, mode, _ := payload(t, rec[len(rec)-1]); mode != "normal" {
		t.Fatalf("recovered report with mode %q", mode)
	}
}

// backupNotUsed performs a revocation of v1 whose designated backup is
// made unusable by backup/certify (and extra revocations), and asserts
// that the module is degraded, not switched, the degraded report saying
// why.
func backupNotUsed(t *testing.T, id string, backup tufrepo.ImageMeta, certify, revokeBackup bool, why string) {
	t.Helper()
	cb := newCertBed(t)
	cfg := degradeConfig(t, cb, id)
	a := cb.b.Agent(cfg)
	v1, bk := backupSetup(t, cb, a, id, backup, certify)
	entries := []attest.Revocation{revocation(v1.SHA256, "GO-2026-0041")}
	if revokeBackup {
		entries = append(entries, revocation(bk.SHA256, "GO-2026-0042"))
	}
	cb.push(t, 2, entries...)
	if err := a.CheckRevocations(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := testbed.Installed(t, a); got != v1.SHA256 {
		t.Fatalf("the device runs %s, want the revoked v1 kept (degraded), not the unusable backup", got)
	}
	if mode, _, _ := a.Mode(); mode != agent.ModeDegraded {
		t.Fatalf("mode %q, want degraded", mode)
	}
	reportSaying(t, cb.b, a, id, "degraded", "backup not used: ")
	reportSaying(t, cb.b, a, id, "degraded", why)
	if n := countSaying(cb.b, id, "switching-to-backup", "") + countSaying(cb.b, id, "on-backup", ""); n != 0 {
		t.Fatalf("%d backup reports for an unusable backup", n)
	}
	waitUID(t, a, "", "65534")
}

// TestRevokedBackupIsNotUsed performs a list that revokes the designated
// backup too: the module is degraded instead.
func TestRevokedBackupIsNotUsed(t *testing.T) {
	backupNotUsed(t, "dev-backup-2", tufrepo.ImageMeta{}, true, true, "is revoked too (GO-2026-0042)")
}

// TestUncertifiedBackupIsNotUsed performs a designated backup without a
// certificate: degraded instead.
func TestUncertifiedBackupIsNotUsed(t *testing.T) {
	backupNotUsed(t, "dev-backup-3", tufrepo.ImageMeta{}, false, false, agent.ErrNoCertificate.Error())
}

// TestBackupOfAnotherModuleIsNotUsed performs a designated backup that is
// a release of another module: degraded instead (a module's slots never
// receive another module's release).
func TestBackupOfAnotherModuleIsNotUsed(t *testing.T) {
	backupNotUsed(t, "dev-backup-4", tufrepo.ImageMeta{Name: "web", Module: "web"}, true, false, "is for module web, not app")
}

// TestBackupForOtherHardwareIsNotUsed performs a designated backup built
// for other hardware: degraded instead.
func TestBackupForOtherHardwareIsNotUsed(t *testing.T) {
	backupNotUsed(t, "dev-backup-5", tufrepo.ImageMeta{HardwareIDs: []string{"board-b"}}, true, false, "is for hardware [board-b]")
}

// TestServerOrderedDowngradeToBackupWithoutRevocationRefused performs a
// server that assigns the designated backup (a lower release counter)
// while nothing is revoked: the floor refuses it, the device reports the
// refusal and keeps v1 in normal mode.
func TestServerOrderedDowngradeToBackupWithoutRevocationRefused(t *testing.T) {
	const id = "dev-backup-6"
	cb := newCertBed(t)
	cfg := degradeConfig(t, cb, id)
	a := cb.b.Agent(cfg)
	v1, bk := backupSetup(t, cb, a, id, tufrepo.ImageMeta{}, true)
	testbed.WaitFor(t, 20*time.Second, "v1's commit at the server", func() bool {
		a.FlushReports(testbed.Ctx(t))
		return hasState(cb.b, id, "committed")
	})
	cb.b.Deploy(bk.Target, id)
	err := a.Cycle(testbed.Ctx(t))
	if !errors.Is(err, agent.ErrRefused) {
		t.Fatalf("cycle with the backup assigned without a revocation: %v, want agent.ErrRefused", err)
	}
	refusedWith(t, cb.b, a, id, err, "refused", "rollback", v1.SHA256)
	if mode, _, _ := a.Mode(); mode != agent.ModeNormal {
		t.Fatalf("mode %q, want normal", mode)
	}
	if n := countSaying(cb.b, id, "switching-to-backup", "") + countSaying(cb.b, id, "on-backup", ""); n != 0 {
		t.Fatalf("%d backup reports without a revocation", n)
	}
}

// waitUID waits until the module name runs as uid (the sandbox helper
// drops its privileges after it started).
func waitUID(t *testing.T, a *agent.Agent, name, uid string) {
	t.Helper()
	testbed.WaitFor(t, 10*time.Second, "module "+name+" running as uid "+uid, func() bool {
		pid := a.ModulePIDOf(name)
		return pid != 0 && procUIDOrGone(pid) == uid
	})
}

// procUIDOrGone is the real uid of pid, "" if it is gone.
func procUIDOrGone(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "Uid:"); ok {
			return strings.Fields(rest)[0]
		}
	}
	return ""
}

// TestSignedProfilesTakePrecedence performs a release whose signed image
// metadata carries normal and degraded privilege profiles while the
// device's configuration has none: the module runs under the signed
// normal profile (its uid, its data directory writable though the profile
// does not list it, ZTOTA_MODE normal), and, revoked without a backup,
// under the signed degraded profile.
func TestSignedProfilesTakePrecedence(t *testing.T) {
	const id = "dev-profiles-1"
	cb := newCertBed(t)
	port := hostListener(t)
	cfg := degradeConfig(t, cb, id)
	a := cb.b.Agent(cfg)
	cb.push(t, 1)
	profiles := &tufrepo.Profiles{
		Normal:   &sandbox.Profile{UID: 65533, GID: 65533, Env: []string{"PATH=/usr/bin:/bin"}},
		Degraded: &sandbox.Profile{UID: 65532, GID: 65532, Env: []string{"PATH=/usr/bin:/bin"}},
	}
	r := cb.publish(t, probeBundle(t, cb.b, "1.0.0", port), tufrepo.ImageMeta{Version: "1.0.0", ReleaseCounter: 1, Profiles: profiles}, true)
	cb.b.Deploy(r.Target, id)
	testbed.CycleInstalls(t, a, r.SHA256, "installing the release with signed profiles")
	if v := moduleView(t, cfg); v["uid"] != "65533" || v["done"] != agent.ModeNormal {
		t.Fatalf("the module runs as uid %q in mode %q, want the signed normal profile's 65533, normal", v["uid"], v["done"])
	}
	cb.push(t, 2, revocation(r.SHA256, "GO-2026-0070"))
	if err := a.CheckRevocations(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if v := moduleView(t, cfg); v["uid"] != "65532" || v["done"] != agent.ModeDegraded {
		t.Fatalf("the revoked module runs as uid %q in mode %q, want the signed degraded profile's 65532, degraded", v["uid"], v["done"])
	}
}

// TestUnhealthyBackupRollsBackAndDegrades performs a designated backup
// that fails its health check: the switch is rolled back through the A/B
// path, the revoked release runs degraded (never unconfined again), the
// report says why the backup was not used, and the mode is degraded.
func TestUnhealthyBackupRollsBackAndDegrades(t *testing.T) {
	const id = "dev-backup-7"
	cb := newCertBed(t)
	cfg := degradeConfig(t, cb, id)
	a := cb.b.Agent(cfg)
	cb.push(t, 1)
	bk := cb.publish(t, cb.b.ScriptBundle("0.9.0", false, 1024), tufrepo.ImageMeta{Version: "0.9.0", ReleaseCounter: 1}, true)
	v1 := cb.publish(t, cb.b.ScriptBundle("1.0.0", true, 2048), tufrepo.ImageMeta{Version: "1.0.0", ReleaseCounter: 2, Backup: bk.Target}, true)
	cb.b.Deploy(v1.Target, id)
	testbed.CycleInstalls(t, a, v1.SHA256, "installing v1")
	cb.push(t, 2, revocation(v1.SHA256, "GO-2026-0043"))
	if err := a.CheckRevocations(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := testbed.Installed(t, a); got != v1.SHA256 {
		t.Fatalf("the device runs %s, want v1 back after the backup's rollback", got)
	}
	if mode, _, _ := a.Mode(); mode != agent.ModeDegraded {
		t.Fatalf("mode %q, want degraded", mode)
	}
	waitUID(t, a, "", "65534")
	waitStates(t, cb.b, a, id, "switching-to-backup", "rolled-back")
	reportSaying(t, cb.b, a, id, "degraded", "backup not used: its install did not commit")
	if n := countSaying(cb.b, id, "on-backup", ""); n != 0 {
		t.Fatalf("%d on-backup reports for a backup that rolled back", n)
	}
}

// TestBackupWhoseCertificateArrivesLaterIsUsedThen performs a backup
// switch that fails for a passing reason — the server has no certificate
// for the backup yet, as when it restarts or lags behind the certifier —
// and checks that the device, degraded meanwhile, switches to the backup
// once the certificate is there, instead of staying degraded for good.
func TestBackupWhoseCertificateArrivesLaterIsUsedThen(t *testing.T) {
	const id = "dev-backup-9"
	cb := newCertBed(t)
	cfg := degradeConfig(t, cb, id)
	a := cb.b.Agent(cfg)
	v1, bk := backupSetup(t, cb, a, id, tufrepo.ImageMeta{}, false)
	cb.push(t, 2, revocation(v1.SHA256, "GO-2026-0049"))
	if err := a.CheckRevocations(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if mode, _, _ := a.Mode(); mode != agent.ModeDegraded {
		t.Fatalf("mode %q without the backup's certificate, want degraded", mode)
	}
	reportSaying(t, cb.b, a, id, "degraded", "tried again later")
	if _, err := cb.b.Admin.PutCertificate(testbed.Ctx(t), bk.SHA256, cb.bundle(t, bk.SHA256, attest.KindCertificate, attest.VerdictPass)); err != nil {
		t.Fatal(err)
	}
	testbed.WaitFor(t, 30*time.Second, "the switch to the backup once its certificate is there", func() bool {
		if err := a.CheckRevocations(testbed.Ctx(t)); err != nil {
			t.Fatal(err)
		}
		mode, _, _ := a.Mode()
		return mode == agent.ModeBackup
	})
	if got := testbed.Installed(t, a); got != bk.SHA256 {
		t.Fatalf("the device runs %s, want the backup %s", got, bk.SHA256)
	}
	waitStates(t, cb.b, a, id, "on-backup")
}
