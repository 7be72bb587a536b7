package agent_test

// Several modules on one device (config "modules"): each has its own A/B
// slots, state and process; a revocation of one module's artifact
// mitigates that module only. The director assigning one target per
// module is played by the forger (the testbed server assigns one release
// per device).

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tufrepo"
)

// twoModules turns cfg into a configuration of the modules app and web.
func twoModules(t *testing.T, cfg *agent.Config, names ...string) {
	t.Helper()
	if len(names) == 0 {
		names = []string{"app", "web"}
	}
	base := cfg.Module
	cfg.Module = agent.Module{}
	for _, n := range names {
		m := base
		m.Name = n
		cfg.Modules = append(cfg.Modules, m)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// assign makes the forged director list exactly rs for the device.
func assign(t *testing.T, g *forger, f *front, id string, version int64, rs ...release.Result) {
	t.Helper()
	all := map[string]*metadata.TargetFiles{}
	for _, r := range rs {
		for p, tf := range directorTarget(t, r, id, "board-a", 0, "") {
			all[p] = tf
		}
	}
	g.director(f, id, all, version)
}

func activeSHA(t *testing.T, a *agent.Agent, name string) string {
	t.Helper()
	st, err := a.ModuleSlotState(testbed.Ctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	if st.Active == "" {
		return ""
	}
	return st.Slots[st.Active].SHA256
}

// TestTwoModulesAreUpdatedAndMitigatedIndependently performs a device
// running the modules app and web: both are installed and committed, each
// in its own slots; the revocation of app's artifact degrades app while
// web's process keeps running (same pid) and web's state is untouched;
// the fix of app recovers app, web still untouched. Every report about a
// module names it.
func TestTwoModulesAreUpdatedAndMitigatedIndependently(t *testing.T) {
	const id = "dev-modules-1"
	cb := newCertBed(t)
	cfg := degradeConfig(t, cb, id)
	twoModules(t, cfg)
	cb.push(t, 1)
	rA := cb.publish(t, cb.b.ScriptBundle("1.0.0", true, 1024), tufrepo.ImageMeta{Version: "1.0.0", ReleaseCounter: 1}, true)
	rW := cb.publish(t, cb.b.ScriptBundle("2.0.0", true, 2048), tufrepo.ImageMeta{Name: "web", Module: "web", Version: "2.0.0", ReleaseCounter: 1}, true)
	g := newForger(t, cb.b)
	assign(t, g, cb.f, id, 1000, rA, rW)
	a := cb.b.Agent(cfg)
	if err := a.Cycle(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if activeSHA(t, a, "app") != rA.SHA256 || activeSHA(t, a, "web") != rW.SHA256 {
		t.Fatalf("app runs %s, web %s; want %s and %s", activeSHA(t, a, "app"), activeSHA(t, a, "web"), rA.SHA256, rW.SHA256)
	}
	for _, n := range []string{"app", "web"} {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "modules", n, "slots")); err != nil {
			t.Fatalf("module %s has no slots of its own: %v", n, err)
		}
	}
	pidW := a.ModulePIDOf("web")
	if pidW == 0 || a.ModulePIDOf("app") == 0 {
		t.Fatal("both modules should run")
	}
	stW, err := a.ModuleSlotState(testbed.Ctx(t), "web")
	if err != nil {
		t.Fatal(err)
	}

	cb.push(t, 2, revocation(rA.SHA256, "GO-2026-0050"))
	if err := a.CheckRevocations(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if mode, _, _ := a.ModuleMode("app"); mode != agent.ModeDegraded {
		t.Fatalf("app mode %q, want degraded", mode)
	}
	waitUID(t, a, "app", "65534")
	if mode, _, _ := a.ModuleMode("web"); mode != agent.ModeNormal {
		t.Fatalf("web mode %q, want normal", mode)
	}
	if pid := a.ModulePIDOf("web"); pid != pidW {
		t.Fatalf("web's process changed (%d, was %d) on app's revocation", pid, pidW)
	}
	if stW2, _ := a.ModuleSlotState(testbed.Ctx(t), "web"); stW2.Active != stW.Active || stW2.Slots[stW2.Active] != stW.Slots[stW.Active] || len(a.ModuleRefused("web")) != 0 {
		t.Fatalf("web's state changed on app's revocation: %+v, refused %v", stW2, a.ModuleRefused("web"))
	}
	waitStates(t, cb.b, a, id, "degraded")
	for _, r := range statesIn(cb.b, id, "degraded", "revocation-seen") {
		if mod, _, adv := payload(t, r); mod != "app" || adv != "GO-2026-0050" {
			t.Fatalf("%s report names module %q advisories %q, want app, GO-2026-0050", r.State, mod, adv)
		}
	}

	// app's fix; web's assignment unchanged.
	fix := cb.publish(t, cb.b.ScriptBundle("1.0.1", true, 1024), tufrepo.ImageMeta{Version: "1.0.1", ReleaseCounter: 2}, true)
	assign(t, g, cb.f, id, 1001, fix, rW)
	if err := a.Cycle(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if activeSHA(t, a, "app") != fix.SHA256 {
		t.Fatalf("app runs %s, want the fix", activeSHA(t, a, "app"))
	}
	if mode, _, _ := a.ModuleMode("app"); mode != agent.ModeNormal {
		t.Fatalf("app mode %q after the fix, want normal", mode)
	}
	if pid := a.ModulePIDOf("web"); pid != pidW {
		t.Fatalf("web's process changed (%d, was %d) on app's update", pid, pidW)
	}
	reportSaying(t, cb.b, a, id, "recovered", "GO-2026-0050")

	// A restarted agent finds each module's slots and state again.
	a.Close()
	a2 := cb.b.Agent(cfg)
	if activeSHA(t, a2, "app") != fix.SHA256 || activeSHA(t, a2, "web") != rW.SHA256 || a2.ModulePIDOf("app") == 0 || a2.ModulePIDOf("web") == 0 {
		t.Fatal("after a restart the modules do not run what they committed")
	}
	if why, ok := a2.ModuleRefused("app")[rA.SHA256]; !ok || len(a2.ModuleRefused("web")) != 0 {
		t.Fatalf("after a restart: app refused %q (%v), web refused %v; want the revoked artifact refused for app only", why, ok, a2.ModuleRefused("web"))
	}
	a = a2
	for _, r := range statesIn(cb.b, id, "committed", "recovered") {
		mod, _, _ := payload(t, r)
		want := "app"
		if r.Target == rW.Target {
			want = "web"
		}
		if mod != want {
			t.Fatalf("%s report of %s names module %q, want %s", r.State, r.Target, mod, want)
		}
	}
}

// TestTargetForUnknownModuleIsRefused performs a director that assigns
// this device a release of a module it does not run: refused and
// reported (naming that module), nothing installed into the modules it
// runs.
func TestTargetForUnknownModuleIsRefused(t *testing.T) {
	const id = "dev-modules-2"
	cb := newCertBed(t)
	cfg := degradeConfig(t, cb, id)
	twoModules(t, cfg)
	cb.push(t, 1)
	rDB := cb.publish(t, cb.b.ScriptBundle("3.0.0", true, 512), tufrepo.ImageMeta{Name: "db", Module: "db", Version: "3.0.0", ReleaseCounter: 1}, true)
	assign(t, newForger(t, cb.b), cb.f, id, 1000, rDB)
	a := cb.b.Agent(cfg)
	err := a.Cycle(testbed.Ctx(t))
	if !errors.Is(err, agent.ErrRefused) {
		t.Fatalf("cycle: %v, want agent.ErrRefused", err)
	}
	reportSaying(t, cb.b, a, id, "refused", "module db, which this device does not run")
	for _, r := range statesIn(cb.b, id, "refused") {
		if mod, _, _ := payload(t, r); mod != "db" {
			t.Fatalf("refused report names module %q, want db", mod)
		}
	}
	for _, n := range []string{"app", "web"} {
		if got := activeSHA(t, a, n); got != "" {
			t.Fatalf("module %s runs %s", n, got)
		}
	}
	// Asked again, it is not reported again.
	a.Cycle(testbed.Ctx(t))
	a.FlushReports(testbed.Ctx(t))
	if n := len(statesIn(cb.b, id, "refused")); n != 1 {
		t.Fatalf("%d refused reports, want 1", n)
	}
}

// TestTwoTargetsForOneModuleAreRefused performs a director that lists two
// releases of module app (and one of web): app's assignment is refused and
// reported naming app, nothing is installed into app, web installs.
func TestTwoTargetsForOneModuleAreRefused(t *testing.T) {
	const id = "dev-modules-3"
	cb := newCertBed(t)
	cfg := degradeConfig(t, cb, id)
	twoModules(t, cfg)
	cb.push(t, 1)
	r1 := cb.publish(t, cb.b.ScriptBundle("1.0.0", true, 1024), tufrepo.ImageMeta{Version: "1.0.0", ReleaseCounter: 1}, true)
	r2 := cb.publish(t, cb.b.ScriptBundle("1.0.1", true, 1024), tufrepo.ImageMeta{Version: "1.0.1", ReleaseCounter: 2}, true)
	rW := cb.publish(t, cb.b.ScriptBundle("2.0.0", true, 2048), tufrepo.ImageMeta{Name: "web", Module: "web", Version: "2.0.0", ReleaseCounter: 1}, true)
	assign(t, newForger(t, cb.b), cb.f, id, 1000, r1, r2, rW)
	a := cb.b.Agent(cfg)
	if err := a.Cycle(testbed.Ctx(t)); !errors.Is(err, agent.ErrRefused) {
		t.Fatalf("cycle: %v, want agent.ErrRefused", err)
	}
	if activeSHA(t, a, "app") != "" || activeSHA(t, a, "web") != rW.SHA256 {
		t.Fatalf("app runs %q (want nothing), web %q (want %s)", activeSHA(t, a, "app"), activeSHA(t, a, "web"), rW.SHA256)
	}
	reportSaying(t, cb.b, a, id, "refused", "director lists 2 targets for module app")
	for _, r := range statesIn(cb.b, id, "refused") {
		if mod, _, _ := payload(t, r); mod != "app" {
			t.Fatalf("refused report names module %q, want app", mod)
		}
	}
}

// TestConfigModulesAreValidated: exactly one of module and modules; at
// most MaxModules, unique names.
func TestConfigModulesAreValidated(t *testing.T) {
	base := func() *agent.Config {
		return &agent.Config{DeviceID: "d", HardwareID: "h", ServerURL: "https://s", DataDir: "/tmp/x", ImageRoot: "/i", DirectorRoot: "/d"}
	}
	m := agent.Module{Name: "m", Command: []string{"bin/m"}}
	c := base()
	c.Module, c.Modules = m, []agent.Module{m}
	if err := c.Validate(); err == nil {
		t.Fatal("module and modules both set: accepted")
	}
	c = base()
	c.Modules = []agent.Module{m, m}
	if err := c.Validate(); err == nil {
		t.Fatal("a module listed twice: accepted")
	}
	c = base()
	for i := range agent.MaxModules + 1 {
		mm := m
		mm.Name = "m" + string(rune('a'+i))
		c.Modules = append(c.Modules, mm)
	}
	if err := c.Validate(); err == nil {
		t.Fatal("too many modules: accepted")
	}
	c = base()
	c.Modules = []agent.Module{m, {Name: "n", Command: []string{"bin/n"}}}
	if err := c.Validate(); err != nil || len(c.ModuleList()) != 2 || c.Modules[1].Health.Timeout <= 0 {
		t.Fatalf("two modules: %v", err)
	}
	c = base()
	c.RevocationsStale = &agent.StalePolicy{Policy: "panic"}
	c.Module = m
	if err := c.Validate(); err == nil {
		t.Fatal("an unknown stale policy: accepted")
	}
}
