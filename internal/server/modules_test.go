package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/tufrepo"
)

// releaseOf publishes a random artifact as release name@version of
// module (with an optional backup target) for the hardware ids.
func (e *env) releaseOf(t *testing.T, module, version string, counter uint64, backup string, hw ...string) string {
	t.Helper()
	r, err := release.Publish(ctxT(t), e.Admin, release.Options{Artifact: artifact(t, 256), KeysDir: e.KeysDir,
		Meta: tufrepo.ImageMeta{Name: module, Version: version, ReleaseCounter: counter, HardwareIDs: hw, Module: module, Backup: backup}})
	if err != nil {
		t.Fatal(err)
	}
	return r.Target
}

// modRep is the device's next report about module.
func (d *device) modRep(state report.State, module, target string) report.Report {
	r := d.rep(state, target)
	r.Module = module
	return r
}

// modules returns the device's modules as GET /v1/devices/{id} shows them.
func (e *env) modules(t *testing.T, dev string) map[string]store.DeviceModule {
	t.Helper()
	a := e.api(t, "GET", "/v1/devices/"+dev, nil)
	if a.code != http.StatusOK {
		t.Fatalf("device %s: %s", dev, a)
	}
	var d store.Device
	if err := json.Unmarshal(a.body, &d); err != nil {
		t.Fatal(err)
	}
	out := map[string]store.DeviceModule{}
	for _, m := range d.Modules {
		out[m.Module] = m
	}
	return out
}

func wantTargets(t *testing.T, e *env, dev string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if want == nil {
		want = []string{}
	}
	got := directorTargets(t, e.Server.Store(), dev)
	if got == nil {
		got = []string{}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("director of %s lists %v, want %v", dev, got, want)
	}
}

// twoModules enrolls dev-a and commits app 1.0 and web 1.0 on it through
// two deployments that run at the same time.
func twoModules(t *testing.T, e *env) (*device, string, string) {
	t.Helper()
	d := e.enroll(t, "dev-a", "hw1", "")
	app1 := e.releaseOf(t, "app", "1.0", 1, "", "hw1")
	web1 := e.releaseOf(t, "web", "1.0", 1, "", "hw1")
	depApp := e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["dev-a"]}`, app1))
	wantTargets(t, e, "dev-a", app1)
	// A second deployment of the same module is refused while the first runs...
	app2 := e.releaseOf(t, "app", "2.0", 2, "", "hw1")
	if a := e.api(t, "POST", "/v1/deployments", []byte(fmt.Sprintf(`{"release":%q,"devices":["dev-a"]}`, app2))); a.code != http.StatusConflict || !strings.Contains(a.errMsg(), depApp.ID) {
		t.Fatalf("second deployment of module app: %s", a)
	}
	// ...one of another module is not.
	depWeb := e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["dev-a"]}`, web1))
	wantTargets(t, e, "dev-a", app1, web1)
	// The web release commits first: only its deployment completes.
	e.mustPost(t, d, d.modRep(report.StateCommitted, "web", web1))
	wantStatus(t, e.view(t, depWeb.ID), store.DevCommitted, "dev-a")
	if v := e.view(t, depWeb.ID); v.Status != store.DeployCompleted {
		t.Fatalf("web deployment: %s", v.Status)
	}
	if v := e.view(t, depApp.ID); v.Status != store.DeployRunning {
		t.Fatalf("app deployment after the web commit: %s", v.Status)
	}
	mods := e.modules(t, "dev-a")
	if mods["web"].Release != web1 || mods["web"].Version != "1.0" || mods["app"].Release != "" || mods["app"].Assigned != app1 {
		t.Fatalf("modules after the web commit: %+v", mods)
	}
	// Then the app release, by an older agent's report without module.
	e.mustPost(t, d, d.rep(report.StateCommitted, app1))
	if v := e.view(t, depApp.ID); v.Status != store.DeployCompleted {
		t.Fatalf("app deployment: %s", v.Status)
	}
	mods = e.modules(t, "dev-a")
	if mods["app"].Release != app1 || mods["web"].Release != web1 || mods["app"].Mode != store.ModeNormal {
		t.Fatalf("modules after both commits: %+v", mods)
	}
	wantTargets(t, e, "dev-a", app1, web1)
	return d, app1, web1
}

// TestTwoModulesDeployConcurrentlyAndCommitIndependently: a device runs
// one release per module; deployments of two modules run at the same
// time, the director lists both targets (each with its deployment), and
// each commit completes only its own deployment.
func TestTwoModulesDeployConcurrentlyAndCommitIndependently(t *testing.T) {
	e := newEnv(t, nil)
	twoModules(t, e)
	// The deployment each target came from stays in its director metadata.
	m, err := e.Server.Store().LatestMeta(ctxT(t), "director/dev-a", tufrepo.Targets)
	if err != nil {
		t.Fatal(err)
	}
	md, err := tufrepo.Parse[metadata.TargetsType](m.Data)
	if err != nil {
		t.Fatal(err)
	}
	for p, tf := range md.Signed.Targets {
		dm, err := tufrepo.ParseDirectorMeta(tf)
		if err != nil || dm.Deployment == "" || dm.DeviceID != "dev-a" {
			t.Fatalf("director target %s: %+v %v", p, dm, err)
		}
	}
}

// TestHaltingOneModulesDeploymentRestoresOnlyThatModule: with app 2.0
// and web 2.0 deploying, halting the app deployment points the director
// back at app 1.0 and keeps listing web 2.0.
func TestHaltingOneModulesDeploymentRestoresOnlyThatModule(t *testing.T) {
	e := newEnv(t, nil)
	_, app1, _ := twoModules(t, e)
	app2 := e.releaseOf(t, "app", "2.0", 2, "", "hw1")
	web2 := e.releaseOf(t, "web", "2.0", 2, "", "hw1")
	depApp := e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["dev-a"]}`, app2))
	depWeb := e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["dev-a"]}`, web2))
	wantTargets(t, e, "dev-a", app2, web2)
	if a := e.api(t, "POST", "/v1/deployments/"+depApp.ID+"/halt", nil); a.code != http.StatusOK {
		t.Fatalf("halt: %s", a)
	}
	wantTargets(t, e, "dev-a", app1, web2)
	if v := e.view(t, depWeb.ID); v.Status != store.DeployRunning {
		t.Fatalf("web deployment after halting the app one: %s", v.Status)
	}
	mods := e.modules(t, "dev-a")
	if mods["app"].Assigned != app1 || mods["web"].Assigned != web2 || mods["web"].Deployment != depWeb.ID {
		t.Fatalf("modules after the halt: %+v", mods)
	}
}

// TestFailureOfOneModuleDoesNotTouchTheOther: web 2.0 rolls back while
// app 2.0 deploys; web's director entry goes back to web 1.0, app keeps
// app 2.0 and its deployment goes on to commit.
func TestFailureOfOneModuleDoesNotTouchTheOther(t *testing.T) {
	e := newEnv(t, nil)
	d, _, web1 := twoModules(t, e)
	app2 := e.releaseOf(t, "app", "2.0", 2, "", "hw1")
	web2 := e.releaseOf(t, "web", "2.0", 2, "", "hw1")
	depApp := e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["dev-a"],"failure_threshold":1}`, app2))
	depWeb := e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["dev-a"],"failure_threshold":1}`, web2))
	e.mustPost(t, d, d.modRep(report.StateRolledBack, "web", web2))
	wantStatus(t, e.view(t, depWeb.ID), store.DevFailed, "dev-a")
	wantStatus(t, e.view(t, depApp.ID), store.DevAssigned, "dev-a")
	wantTargets(t, e, "dev-a", app2, web1)
	e.mustPost(t, d, d.modRep(report.StateCommitted, "app", app2))
	wantStatus(t, e.view(t, depApp.ID), store.DevCommitted, "dev-a")
	mods := e.modules(t, "dev-a")
	if mods["app"].Release != app2 || mods["web"].Release != web1 || mods["web"].LastState != string(report.StateRolledBack) {
		t.Fatalf("modules: %+v", mods)
	}
	wantTargets(t, e, "dev-a", app2, web1)
}

// TestMitigationStatesUpdateTheModuleView: the device's mitigation
// reports about app move app's mode, advisories and since (the server's
// receive time, the device's time beside it); web stays normal.
func TestMitigationStatesUpdateTheModuleView(t *testing.T) {
	e := newEnv(t, nil)
	d, app1, _ := twoModules(t, e)
	e.clk.Advance(2 * time.Minute)
	seen := d.modRep(report.StateRevocationSeen, "app", app1)
	seen.Advisories = "GO-2025-0001, GO-2025-0002"
	seen.Time = e.clk.Now().Add(-30 * time.Second) // the device's clock runs late
	e.mustPost(t, d, seen)
	mods := e.modules(t, "dev-a")
	if a := mods["app"]; a.Mode != store.ModeNormal || !slices.Equal(a.Why, []string{"GO-2025-0001", "GO-2025-0002"}) ||
		!a.Since.Equal(e.clk.Now()) || !a.SinceDevice.Equal(seen.Time) || a.LastState != "revocation-seen" {
		t.Fatalf("app after revocation-seen: %+v", a)
	}
	e.clk.Advance(time.Minute)
	sw := d.modRep(report.StateSwitchingToBackup, "app", app1)
	e.mustPost(t, d, sw)
	if a := e.modules(t, "dev-a")["app"]; a.Mode != store.ModeNormal || a.LastState != "switching-to-backup" || len(a.Why) != 2 {
		t.Fatalf("app while switching: %+v", a)
	}
	e.clk.Advance(time.Minute)
	bak := e.releaseOf(t, "app", "0.9", 1, "", "hw1")
	on := d.modRep(report.StateOnBackup, "app", bak) // the backup committed and runs
	on.Mode = report.ModeBackup
	on.Advisories = "GO-2025-0001,GO-2025-0002"
	e.mustPost(t, d, on)
	a := e.modules(t, "dev-a")["app"]
	if a.Mode != store.ModeBackup || !a.Since.Equal(e.clk.Now()) || a.LastState != "on-backup" || a.Release != bak || a.Version != "0.9" {
		t.Fatalf("app on backup: %+v", a)
	}
	// A mode without a state that implies it: degraded web.
	deg := d.modRep(report.StateDegraded, "web", "")
	deg.Advisories = "GO-2025-0003"
	e.mustPost(t, d, deg)
	mods = e.modules(t, "dev-a")
	if w := mods["web"]; w.Mode != store.ModeDegraded || !slices.Equal(w.Why, []string{"GO-2025-0003"}) {
		t.Fatalf("web degraded: %+v", w)
	}
	if mods["app"].Mode != store.ModeBackup {
		t.Fatalf("app after web degraded: %+v", mods["app"])
	}
	e.clk.Advance(time.Minute)
	e.mustPost(t, d, d.modRep(report.StateRecovered, "app", bak))
	if a := e.modules(t, "dev-a")["app"]; a.Mode != store.ModeNormal || len(a.Why) != 0 || !a.Since.Equal(e.clk.Now()) {
		t.Fatalf("app recovered: %+v", a)
	}
	// list-stale changes the last state only.
	e.mustPost(t, d, d.modRep(report.StateListStale, "web", ""))
	if w := e.modules(t, "dev-a")["web"]; w.Mode != store.ModeDegraded || w.LastState != "list-stale" {
		t.Fatalf("web after list-stale: %+v", w)
	}
	// The history keeps the new fields.
	h := e.History("dev-a")
	last := h[len(h)-1]
	if last.Module != "web" || last.State != "list-stale" {
		t.Fatalf("newest report in the history: %+v", last)
	}
	found := false
	for _, r := range h {
		if r.State == "on-backup" && r.Mode == "backup" && r.Advisories == "GO-2025-0001,GO-2025-0002" && r.Module == "app" {
			found = true
		}
	}
	if !found {
		t.Fatalf("history lacks the on-backup report with its mode and advisories: %+v", h)
	}
}

// TestReportAboutAModuleTheDeviceLacksChangesNothing: a signed report
// about a module the device has no release of, or naming a target of
// another module, is kept in the history and changes no module, no
// deployment and no director.
func TestReportAboutAModuleTheDeviceLacksChangesNothing(t *testing.T) {
	e := newEnv(t, nil)
	d, app1, web1 := twoModules(t, e)
	st := e.Server.Store()
	before := e.modules(t, "dev-a")
	dirBefore := directorTargets(t, st, "dev-a")
	devBefore, err := st.Device(ctxT(t), "dev-a")
	if err != nil {
		t.Fatal(err)
	}
	bad := d.modRep(report.StateDegraded, "db", "")
	bad.Mode = report.ModeDegraded
	bad.Advisories = "GO-2025-0009"
	mismatched := d.modRep(report.StateRolledBack, "app", web1) // web's target under module app
	e.mustPost(t, d, bad, mismatched)
	after := e.modules(t, "dev-a")
	if len(after) != 2 || fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("modules changed:\nbefore %+v\nafter  %+v", before, after)
	}
	if got := directorTargets(t, st, "dev-a"); !slices.Equal(got, dirBefore) {
		t.Fatalf("director changed: %v -> %v", dirBefore, got)
	}
	if devAfter, _ := st.Device(ctxT(t), "dev-a"); devAfter.State != devBefore.State || devAfter.Installed != devBefore.Installed {
		t.Fatalf("device state changed: %+v -> %+v", devBefore, devAfter)
	}
	h := e.History("dev-a")
	if n := len(h); n < 2 || h[n-2].Module != "db" || h[n-1].Target != web1 {
		t.Fatalf("the reports are not in the history: %+v", h)
	}
	_ = app1
}

// TestDevicesListShowsModules: GET /v1/devices lists each device's
// modules (an empty array for a device with none).
func TestDevicesListShowsModules(t *testing.T) {
	e := newEnv(t, nil)
	_, app1, web1 := twoModules(t, e)
	e.enroll(t, "dev-b", "hw1", "")
	a := e.api(t, "GET", "/v1/devices", nil)
	if a.code != http.StatusOK {
		t.Fatal(a)
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(a.body, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 2 || string(raw[1]["modules"]) != "[]" {
		t.Fatalf("devices: %s", a.body)
	}
	var devs []store.Device
	json.Unmarshal(a.body, &devs)
	if ms := devs[0].Modules; len(ms) != 2 || ms[0].Module != "app" || ms[0].Release != app1 || ms[1].Release != web1 || ms[1].Mode != "normal" || ms[0].Why == nil {
		t.Fatalf("dev-a modules: %+v", ms)
	}
}

// TestBackupMustBeAnotherReleaseOfTheSameModuleAndHardware performs an
// integrator signing targets whose backup designation a device could
// never use: the release itself, a target the document does not sign, a
// release of another module, a release for other hardware. Each is
// refused with a 400 that says why, and nothing is stored; a valid
// backup is kept on the release.
func TestBackupMustBeAnotherReleaseOfTheSameModuleAndHardware(t *testing.T) {
	e := newEnv(t, nil)
	key := e.targetsKey(t)
	st := e.Server.Store()
	app1 := e.releaseOf(t, "app", "1.0", 1, "", "hw1")
	web1 := e.releaseOf(t, "web", "1.0", 1, "", "hw1", "hw2")
	narrow := e.releaseOf(t, "app", "0.9", 1, "", "hw1")
	withBackup := func(backup string, hw ...string) func(*md) {
		return func(m *md) {
			p, tf := e.uploaded(t, "2.0", 300, hw...)
			im, err := tufrepo.ParseImageMeta(tf)
			if err != nil {
				t.Fatal(err)
			}
			im.Backup = backup
			if backup == "self" {
				im.Backup = p
			}
			tf2, err := tufrepo.TargetFile(p, tf.Length, tf.Hashes["sha256"], tufrepo.ImageCustom(im))
			if err != nil {
				t.Fatal(err)
			}
			m.Signed.Targets[p] = tf2
		}
	}
	for _, c := range []struct {
		name, backup string
		hw           []string
		want         string
	}{
		{"itself", "self", []string{"hw1"}, "names itself"},
		{"not signed", "app/7.0/app.tar", []string{"hw1"}, "does not sign"},
		{"other module", web1, []string{"hw1"}, "same module"},
		{"other hardware", narrow, []string{"hw1", "hw2"}, "hw2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := e.nextTargets(t, key, withBackup(c.backup, c.hw...))
			unchanged(t, st, func() {
				a := e.api(t, "POST", "/v1/image/targets", body)
				wantRefused(t, c.name, a, http.StatusBadRequest)
				if !strings.Contains(a.errMsg(), c.want) {
					t.Errorf("%s: error %q does not say %q", c.name, a.errMsg(), c.want)
				}
			})
		})
	}
	app2 := e.releaseOf(t, "app", "2.0", 2, app1, "hw1")
	r, err := st.Release(ctxT(t), app2)
	if err != nil || r.Backup != app1 {
		t.Fatalf("release %s: backup %q, %v", app2, r.Backup, err)
	}
	a := e.api(t, "GET", "/v1/releases", nil)
	if !strings.Contains(string(a.body), `"backup":"`+app1+`"`) {
		t.Fatalf("releases list lacks the backup: %s", a.body)
	}
}

// TestReportsWithoutModuleGoToTheOnlyModule: an older agent's reports
// name no module; on a device with one module they are about it, even a
// commit of a target never released here (a factory image), which
// leaves the director listing nothing for the module, as before.
func TestReportsWithoutModuleGoToTheOnlyModule(t *testing.T) {
	e := newEnv(t, nil)
	d := e.enroll(t, "dev-a", "hw1", "")
	app1 := e.release(t, "1.0", 1, "hw1")
	e.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["dev-a"]}`, app1))
	e.mustPost(t, d, d.rep(report.StateCommitted, app1))
	e.mustPost(t, d, d.rep(report.StateIdle, ""))
	if m := e.modules(t, "dev-a"); len(m) != 1 || m["app"].LastState != "idle" || m["app"].Release != app1 {
		t.Fatalf("modules: %+v", m)
	}
	// A report naming a release of a module never assigned to the device
	// (and not a commit) is about the device, not a new module.
	web1 := e.releaseOf(t, "web", "1.0", 1, "", "hw1")
	e.mustPost(t, d, d.rep(report.StateDownloading, web1))
	if m := e.modules(t, "dev-a"); len(m) != 1 || m["app"].LastState != "idle" {
		t.Fatalf("modules after a report about web: %+v", m)
	}
	e.mustPost(t, d, d.rep(report.StateCommitted, "factory/1/image.img"))
	m := e.modules(t, "dev-a")["app"]
	if m.Release != "factory/1/image.img" || m.Version != "" || m.Assigned != "" {
		t.Fatalf("app after a factory image commit: %+v", m)
	}
	wantTargets(t, e, "dev-a")
}

// TestRevocationOfOneModulesArtifactMitigatesThatModule: d09 runs app
// 2.0 and web 1.0, and d03 is being given app 1.0. The certifier revokes
// web 1.0's artifact: d09 gets a mitigation for web 1.0 (found through
// its web module) and no other device does, the app deployment of d03
// runs on, and d09's director still lists app 2.0 beside web 1.0.
func TestRevocationOfOneModulesArtifactMitigatesThatModule(t *testing.T) {
	mb := newMitigationBed(t)
	ctx := ctxT(t)
	st := mb.Server.Store()
	web1 := mb.releaseOf(t, "web", "1.0", 1, "", "hw1")
	r, err := st.Release(ctx, web1)
	if err != nil {
		t.Fatal(err)
	}
	if a := mb.api(t, "PUT", "/v1/certificates/"+r.SHA256, issueFor(t, mb.cert, r.SHA256, attest.KindCertificate, attest.VerdictPass)); a.code != http.StatusOK {
		t.Fatalf("storing the certificate of %s: %s", web1, a)
	}
	d := mb.enroll(t, "d09", "hw1", "fleet")
	for _, target := range []string{mb.v2, web1} {
		mb.deploy(t, fmt.Sprintf(`{"release":%q,"devices":["d09"]}`, target))
	}
	mb.mustPost(t, d, d.modRep(report.StateCommitted, "app", mb.v2), d.modRep(report.StateCommitted, "web", web1))
	follow(t, mb.Server)
	mb.feed.set(mb.revocation(t, 1, r.SHA256, "GO-2025-0042"))
	waitCursor(t, mb.Server, 1)
	if got := mitigatedDevices(t, st); !slices.Equal(got, []string{"d09@" + web1}) {
		t.Fatalf("mitigations: %v", got)
	}
	if dep, _ := st.Deployment(ctx, mb.running); dep.Status != store.DeployRunning {
		t.Fatalf("the app deployment of d03: %s %q", dep.Status, dep.Reason)
	}
	wantTargets(t, mb.env, "d09", mb.v2, web1)
	if m := mb.modules(t, "d09"); m["app"].Release != mb.v2 || m["web"].Release != web1 {
		t.Fatalf("d09 modules: %+v", m)
	}
}
