// Package demo runs the whole mitigation story on one machine with real
// vulnerability data: keys, a certification service (certd) and an OTA
// server over loopback TLS, several in-process device agents, and real
// Go programs as modules. It certifies the programs against an older
// snapshot of the Go vulnerability database, releases them through the
// certification gate (app 1.0.0 with a designated backup, app 0.9.0, for
// half of the devices), deploys them, loads a newer snapshot — the
// certifier revokes app 1.0.0 for GO-2026-5970 —, watches the devices
// mitigate (backup or degraded) while the other module runs on, prints
// the repair request, certifies and releases the fix and watches it reach
// exactly the affected devices. It prints a timeline of every signed
// status report the server receives.
package demo

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ztota/ztota/examples/demomodules"
	"github.com/ztota/ztota/internal/apiclient"
	"github.com/ztota/ztota/internal/certclient"
	"github.com/ztota/ztota/internal/certd"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/tlsutil"
	"github.com/ztota/ztota/internal/tufrepo"
)

// Options of a demo run.
type Options struct {
	Devices int // at least 2; devices with an odd number get the release with a backup (all of them when not run as root)
	Keep    bool
	Out     io.Writer
	Log     *slog.Logger // agents', server's and certifier's log; nil discards it
	Timeout time.Duration
	// CacheDir caches the built module programs (default
	// demomodules.DefaultCacheDir()).
	CacheDir string
}

// DeviceOutcome is what one device went through.
type DeviceOutcome struct {
	ID         string
	HasBackup  bool   // its app 1.0.0 release designates a backup
	Mitigation string // the mode it reported after the revocation: "backup" or "degraded" ("" none)
	Recovered  bool   // it reported "recovered" after the fix
	Final      string // the app target it runs at the end
	FinalMode  string // the app's mode at the end
	SensorPIDs []int  // the sensor's pid before the update, after the mitigation and at the end (when it runs)
}

// Result summarises a run, for tests.
type Result struct {
	Devices     []DeviceOutcome
	Revoked     string   // the artifact (sha256) the certifier revoked
	Advisories  []string // the advisories it was revoked for
	Mitigations int      // mitigations the server recorded
	// SensorRolledBack counts devices that rolled the unhealthy sensor
	// 2.0.0 back to 1.0.0.
	SensorRolledBack int
	// MitigationsClosed counts the mitigations closed at the end;
	// FixDeployments the deployments recorded on them.
	MitigationsClosed int
	FixDeployments    []string
	Webhooks          []string // the signed repair webhooks received, in order
	Repairs           []store.Repair
	FixTarget         string
	FixAutomatic      bool // the server deployed the fix by itself
	FixCommitted      int  // devices that committed the fix
	AllNormal         bool // every device runs the fix (or its untouched release) in normal mode at the end
	ToMitigated       time.Duration
	ToRecovered       time.Duration
	Reports           int
	Dir               string
}

// Embedded vulnerability data (see osv/README.md).
var (
	//go:embed osv/Go-2025-07-01-x-text.zip
	snapshotOld []byte
	//go:embed osv/Go-2026-08-21-x-text.zip
	snapshotNew []byte
)

const (
	snapshotOldName = "Go-2025-07-01"
	snapshotNewName = "Go-2026-08-21"
	hardware        = "demo-board"
	group           = "demo"
)

// Run runs the demo.
func Run(ctx context.Context, o Options) error {
	_, err := RunResult(ctx, o)
	return err
}

// RunResult runs the demo and returns what happened.
func RunResult(ctx context.Context, o Options) (Result, error) {
	if o.Devices < 2 {
		o.Devices = 4
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil || !o.Keep {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	d := &run{o: o, start: time.Now()}
	err := d.main(ctx)
	d.res.Reports = len(d.tl.seenIDs())
	return d.res, err
}

// run is one demo run.
type run struct {
	o     Options
	res   Result
	start time.Time
	dir   string
	keys  string
	ca    string
	api   *apiclient.Client
	cc    *certclient.Client
	srv   *server.Server
	tl    *timeline
	ids   []string
}

func (d *run) say(format string, args ...any) {
	fmt.Fprintf(d.o.Out, "[%6.2fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *run) main(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "ztota-demo-")
	if err != nil {
		return err
	}
	d.dir, d.res.Dir = dir, dir
	if !d.o.Keep {
		defer os.RemoveAll(dir)
	}
	// A degraded module runs under another uid: it must be able to reach
	// its slot through the workspace.
	if err := os.Chmod(dir, 0o711); err != nil {
		return err
	}
	d.say("workspace %s", dir)

	// Module programs first: the only step that may need the network.
	built, err := demomodules.Build(ctx, d.o.CacheDir, demomodules.All()...)
	if err != nil {
		return err
	}
	prog := map[string]demomodules.Built{}
	for _, b := range built {
		prog[b.Module+" "+b.Version] = b
		how := "built"
		if b.Cached {
			how = "cached"
		}
		d.say("module program %s %s (%s): %s", b.Module, b.Version, b.Note, how)
	}

	d.keys = filepath.Join(dir, "keys")
	if err := keyset.Init(d.keys, keyset.Options{}); err != nil {
		return err
	}
	online := filepath.Join(d.keys, keyset.OnlineDir)
	caFile, certFile, keyFile := keyset.TLSFiles(online)
	d.ca = caFile
	d.say("integrator and operator keys made (ed25519): offline root+targets, online snapshot/timestamp/director, a TLS CA")

	// The certification service, on the older snapshot.
	osvDir := filepath.Join(dir, "osv")
	if err := os.MkdirAll(osvDir, 0o755); err != nil {
		return err
	}
	oldZip, newZip := filepath.Join(osvDir, snapshotOldName+".zip"), filepath.Join(osvDir, snapshotNewName+".zip")
	if err := os.WriteFile(oldZip, snapshotOld, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(newZip, snapshotNew, 0o644); err != nil {
		return err
	}
	source := filepath.Join(osvDir, "go-vulndb.zip")
	if err := os.WriteFile(source, snapshotOld, 0o644); err != nil {
		return err
	}
	cd, err := certd.Open(ctx, certd.Config{DataDir: filepath.Join(dir, "certd"), OSV: []string{source},
		TLSCertFile: certFile, TLSKeyFile: keyFile, WatchInterval: time.Hour, Logger: d.o.Log})
	if err != nil {
		return err
	}
	defer cd.Close()
	var bg sync.WaitGroup
	bgctx, stopBG := context.WithCancel(ctx)
	defer func() { stopBG(); bg.Wait() }()
	addrc := make(chan string, 1)
	bg.Add(1)
	go func() {
		defer bg.Done()
		if err := cd.Serve(bgctx, "127.0.0.1:0", func(a string) { addrc <- a }); err != nil && bgctx.Err() == nil {
			d.o.Log.Error("certd", "err", err)
		}
	}()
	var certdURL string
	select {
	case a := <-addrc:
		certdURL = "https://" + a
	case <-ctx.Done():
		return ctx.Err()
	}
	d.cc = certclient.New(certdURL, cd.Token())
	tr, err := tlsutil.Transport(caFile)
	if err != nil {
		return err
	}
	d.cc.HTTP.Transport = tr
	rootFile := filepath.Join(dir, "certifier-root.json")
	if err := os.WriteFile(rootFile, cd.Root(), 0o644); err != nil {
		return err
	}
	croot, err := certroot.Trust(cd.Root())
	if err != nil {
		return err
	}
	d.say("certifier listening on %s: vulnerability database %s (the golang.org/x/text records of the Go vulnerability database, CC-BY 4.0)",
		certdURL, snapshotOldName)

	// The OTA server: pins the certifier's root, follows its event feed.
	hooks, err := startHooks(certFile, keyFile, d.say)
	if err != nil {
		return err
	}
	defer hooks.close()
	d.srv, err = server.New(ctx, server.Config{DataDir: filepath.Join(dir, "server"), KeysDir: online, Logger: d.o.Log,
		TLSCertFile: certFile, TLSKeyFile: keyFile, CertifierRoot: croot, CertdURL: certdURL, CertdCAFile: caFile,
		FeedWait: 2 * time.Second, FeedMaxBackoff: 500 * time.Millisecond,
		Repair: server.RepairConfig{Waves: []float64{100}, FailureThreshold: 0.5, ScanInterval: 2 * time.Second,
			Webhook: hooks.url(), WebhookCAFile: caFile, WebhookMaxBackoff: time.Second}})
	if err != nil {
		return err
	}
	defer d.srv.Close()
	ln, err := listenLoopback()
	if err != nil {
		return err
	}
	url := "https://" + ln.Addr().String()
	bg.Add(1)
	go func() { defer bg.Done(); d.srv.Serve(bgctx, ln) }()
	tok, err := os.ReadFile(filepath.Join(dir, "server", server.AdminTokenFile))
	if err != nil {
		return err
	}
	d.api = apiclient.New(url, strings.TrimSpace(string(tok)))
	if d.api.HTTP.Transport, err = tlsutil.Transport(caFile); err != nil {
		return err
	}
	d.say("OTA server listening on %s: pins the certifier's root, follows its signed event feed, deploys only certified releases", url)
	if err := hooks.pin(ctx, d.api); err != nil {
		return err
	}

	// Certify the four programs.
	bundles := map[string][]byte{}
	for _, b := range built {
		if b.Spec == demomodules.AppFix {
			continue // written later, once app 1.0.0 is revoked
		}
		bundle, err := d.certify(ctx, b)
		if err != nil {
			return err
		}
		bundles[b.Module+" "+b.Version] = bundle
	}

	// Release them through the gate.
	relDir := filepath.Join(dir, "release")
	if err := os.MkdirAll(relDir, 0o755); err != nil {
		return err
	}
	publish := func(b demomodules.Built, file string, counter uint64, backup string) (release.Result, error) {
		p := filepath.Join(relDir, file)
		if err := copyFile(b.Bundle, p); err != nil {
			return release.Result{}, err
		}
		r, err := release.Publish(ctx, d.api, release.Options{Artifact: p, KeysDir: d.keys, Certificate: bundles[b.Module+" "+b.Version],
			Meta: tufrepo.ImageMeta{Name: b.Module, Version: b.Version, ReleaseCounter: counter, HardwareIDs: []string{hardware},
				Module: b.Module, Backup: backup}})
		if err != nil {
			return r, fmt.Errorf("releasing %s: %w", file, err)
		}
		note := ""
		if backup != "" {
			note = ", backup " + backup
		}
		d.say("released %s (counter %d%s) with its certificate; image targets version %d, signed offline", r.Target, counter, note, r.TargetsVersion)
		return r, nil
	}
	rBackup, err := publish(prog["app 0.9.0"], "app-0.9.0.tar", 1, "")
	if err != nil {
		return err
	}
	rWith, err := publish(prog["app 1.0.0"], "app-1.0.0-with-backup.tar", 2, rBackup.Target)
	if err != nil {
		return err
	}
	rWithout, err := publish(prog["app 1.0.0"], "app-1.0.0.tar", 2, "")
	if err != nil {
		return err
	}
	rSensor, err := publish(prog["sensor 1.0.0"], "sensor-1.0.0.tar", 1, "")
	if err != nil {
		return err
	}
	d.res.Revoked = rWith.SHA256

	// Devices.
	actx, stopAgents := context.WithCancel(ctx)
	var awg sync.WaitGroup
	defer func() { stopAgents(); awg.Wait() }()
	var withBackup, without []string
	for i := 1; i <= d.o.Devices; i++ {
		id := fmt.Sprintf("device-%d", i)
		d.ids = append(d.ids, id)
		if i%2 == 1 || !canDegrade() {
			withBackup = append(withBackup, id)
		} else {
			without = append(without, id)
		}
		a, err := d.newAgent(ctx, id, url, rootFile)
		if err != nil {
			return err
		}
		awg.Add(1)
		go func() { defer awg.Done(); a.Run(actx) }()
	}
	d.tl = newTimeline(d.srv.Store(), d.ids, d.say)
	d.say("%d devices enrolled (own ed25519 keys); each agent pins the image, director and certifier roots and supervises %s",
		d.o.Devices, strings.Join(moduleNames(), " and "))
	if !canDegrade() {
		d.say("(not running as root: the agent's degraded mode starts the module as another uid, which needs root; every device gets the release with a backup)")
	}

	// Deploy: app 1.0.0 with a backup to half of the devices, without to
	// the others, and the sensor to all.
	deps := []struct {
		rel  string
		devs []string
	}{{rWith.Target, withBackup}, {rWithout.Target, without}, {rSensor.Target, d.ids}}
	for _, dp := range deps {
		if len(dp.devs) == 0 {
			continue
		}
		v, err := d.api.Deploy(ctx, server.DeployRequest{Release: dp.rel, Devices: dp.devs})
		if err != nil {
			return fmt.Errorf("deploying %s: %w", dp.rel, err)
		}
		d.say("deployment %s: %s to %s", v.ID, dp.rel, strings.Join(dp.devs, " "))
		if err := d.tl.until(ctx, func() (bool, error) { return deploymentDone(ctx, d.api, v.ID) }); err != nil {
			return fmt.Errorf("waiting for deployment %s: %w", v.ID, err)
		}
		v, _ = d.api.Deployment(ctx, v.ID)
		d.say("deployment %s %s", v.ID, v.Status)
	}
	// An update that fails its health check: every device rolls the
	// sensor back, app untouched.
	rBad, err := publish(prog["sensor 2.0.0"], "sensor-2.0.0.tar", 2, "")
	if err != nil {
		return err
	}
	v, err := d.api.Deploy(ctx, server.DeployRequest{Release: rBad.Target, Devices: d.ids, FailureThreshold: 1})
	if err != nil {
		return fmt.Errorf("deploying %s: %w", rBad.Target, err)
	}
	d.say("deployment %s: %s (fails its health check) to every device", v.ID, rBad.Target)
	tBad := time.Now()
	if err := d.tl.until(ctx, func() (bool, error) {
		done, err := deploymentDone(ctx, d.api, v.ID)
		return done && d.tl.allReported(d.ids, tBad, report.StateRolledBack), err
	}); err != nil {
		return fmt.Errorf("waiting for deployment %s: %w", v.ID, err)
	}
	for _, id := range d.ids {
		if d.tl.lastCommitted(id, "sensor") == rSensor.Target && d.tl.has(id, tBad, report.StateRolledBack) {
			d.res.SensorRolledBack++
		}
	}
	v, _ = d.api.Deployment(ctx, v.ID)
	d.say("deployment %s %s: %d/%d devices rolled the sensor back to %s", v.ID, v.Status, d.res.SensorRolledBack, len(d.ids), rSensor.Target)

	pids := map[string]int{}
	for _, id := range d.ids {
		if pids[id] = d.sensorPID(id); pids[id] == 0 {
			return fmt.Errorf("%s: the sensor does not run", id)
		}
	}
	d.say("sensor pids: %s", formatPIDs(d.ids, pids))

	// The vulnerability database moves on.
	d.say("--- the vulnerability database is updated to %s ---", snapshotNewName)
	t0 := time.Now()
	upd, err := d.cc.UploadDB(ctx, 0, newZip)
	if err != nil {
		return fmt.Errorf("loading %s: %w", snapshotNewName, err)
	}
	d.say("certifier: %s loaded and every certified artifact re-inspected: %s", snapshotNewName, summarizeUpdate(upd))
	// The server learns of the revocation from the certifier's signed
	// feed, fetches the new signed revocation list and nudges the devices
	// (their own periodic check is 30 s away).

	affected := append(append([]string(nil), withBackup...), without...)
	slices.Sort(affected)
	var repair store.Repair
	err = d.tl.until(ctx, func() (bool, error) {
		rs, err := d.api.Repairs(ctx)
		if err != nil || len(rs) == 0 {
			return false, err
		}
		repair = rs[0]
		return d.tl.allReported(affected, t0, report.StateDegraded, report.StateOnBackup), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the devices to mitigate: %w", err)
	}
	last := d.tl.lastReport(affected, t0, report.StateDegraded, report.StateOnBackup)
	d.res.ToMitigated = last.Sub(t0)
	d.say("every affected device mitigated %.2fs after the database update", d.res.ToMitigated.Seconds())
	ms, err := d.api.Mitigations(ctx, "", "")
	if err != nil {
		return err
	}
	d.res.Mitigations = len(ms)
	d.res.Advisories = repair.Advisories
	d.say("repair request #%d: %s; releases %s; %d affected devices; %d mitigations recorded",
		repair.ID, strings.Join(repair.Advisories, ", "), strings.Join(repair.Releases, " "), repair.Devices, len(ms))
	d.say("  reason: %s", repair.Reason)
	for _, id := range d.ids {
		if p := d.sensorPID(id); p != pids[id] {
			return fmt.Errorf("%s: the sensor's pid changed from %d to %d during the mitigation", id, pids[id], p)
		}
	}
	d.say("sensor pids unchanged: %s", formatPIDs(d.ids, pids))

	// The fix.
	d.say("--- the integrator fixes app: golang.org/x/text v0.43.0 ---")
	fixBundle, err := d.certify(ctx, prog["app 1.1.0"])
	if err != nil {
		return err
	}
	bundles["app 1.1.0"] = fixBundle
	rFix, err := publish(prog["app 1.1.0"], "app-1.1.0.tar", 3, "")
	if err != nil {
		return err
	}
	tFix := time.Now()
	d.res.FixTarget = rFix.Target
	depID, auto, err := d.fixDeployment(ctx, rFix.Target)
	if err != nil {
		return err
	}
	if !auto {
		v, err := d.api.Deploy(ctx, server.DeployRequest{Release: rFix.Target, Devices: affected})
		if err != nil {
			return fmt.Errorf("deploying the fix: %w", err)
		}
		depID = v.ID
		d.say("deployment %s: the fix to the %d affected devices, started by the demo (the server made none: is its automatic fix roll-out off?)", depID, len(affected))
	} else {
		d.say("deployment %s: the server deployed the certified fix by itself to the affected devices", depID)
	}
	d.res.FixAutomatic = auto
	err = d.tl.until(ctx, func() (bool, error) {
		done, err := deploymentDone(ctx, d.api, depID)
		return done && d.tl.allReported(affected, t0, report.StateRecovered), err
	})
	if err != nil {
		return fmt.Errorf("waiting for the fix: %w", err)
	}
	d.res.ToRecovered = d.tl.lastReport(affected, t0, report.StateRecovered).Sub(t0)
	// The server may have split the roll-out (devices it found busy go
	// into a later deployment): count the fix on every deployment the
	// mitigations name.
	fixDeps := []string{depID}
	if auto {
		ms, err := d.api.Mitigations(ctx, "", "")
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.FixDeployment != "" && !slices.Contains(fixDeps, m.FixDeployment) {
				fixDeps = append(fixDeps, m.FixDeployment)
			}
		}
	}
	for _, id := range fixDeps {
		if err := d.tl.until(ctx, func() (bool, error) { return deploymentDone(ctx, d.api, id) }); err != nil {
			return fmt.Errorf("waiting for the fix: %w", err)
		}
		dv, err := d.api.Deployment(ctx, id)
		if err != nil {
			return err
		}
		n := 0
		for _, x := range dv.Devices {
			if x.Status == store.DevCommitted {
				n++
			}
		}
		d.res.FixCommitted += n
		d.say("deployment %s %s: %d/%d committed", id, dv.Status, n, len(dv.Devices))
	}

	// The end state.
	d.res.AllNormal = true
	for _, id := range d.ids {
		o := DeviceOutcome{ID: id, HasBackup: slices.Contains(withBackup, id), Final: d.tl.lastCommitted(id, "app")}
		o.Mitigation = d.tl.modeAfter(id, t0, report.StateDegraded, report.StateOnBackup)
		o.Recovered = d.tl.has(id, t0, report.StateRecovered)
		o.FinalMode = d.tl.lastMode(id)
		o.SensorPIDs = []int{pids[id], d.sensorPID(id)}
		if o.SensorPIDs[1] != pids[id] {
			d.res.AllNormal = false
		}
		if o.Final != rFix.Target || o.FinalMode != report.ModeNormal {
			d.res.AllNormal = false
		}
		d.res.Devices = append(d.res.Devices, o)
	}
	// The server closes the mitigations and the repair request once the
	// devices report the fix.
	err = d.tl.until(ctx, func() (bool, error) {
		rs, err := d.api.Repairs(ctx)
		if err != nil {
			return false, err
		}
		d.res.Repairs = rs
		for _, r := range rs {
			if r.State != store.RepairClosed {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the repair request to close: %w", err)
	}
	ms, err = d.api.Mitigations(ctx, "", "")
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.State == store.MitigationClosed {
			d.res.MitigationsClosed++
		}
		if m.FixDeployment != "" {
			d.res.FixDeployments = appendNew(d.res.FixDeployments, m.FixDeployment)
		}
	}
	d.say("%d of %d mitigations closed by the devices' reports of the fix", d.res.MitigationsClosed, len(ms))
	if err := d.tl.until(ctx, func() (bool, error) {
		return slices.Contains(hooks.events(), "repair.closed"), nil
	}); err != nil {
		return fmt.Errorf("waiting for the repair.closed webhook: %w", err)
	}
	d.res.Webhooks = hooks.events()
	d.say("--- timeline ---")
	d.say("database update -> last device mitigated: %.2fs", d.res.ToMitigated.Seconds())
	d.say("database update -> last device recovered: %.2fs (fix released -> last device recovered: %.2fs)",
		d.res.ToRecovered.Seconds(), (d.res.ToRecovered - tFix.Sub(t0)).Seconds())
	for _, o := range d.res.Devices {
		line := fmt.Sprintf("  %-9s mitigated by %-8s recovered %-5t runs %s (%s)", o.ID, o.Mitigation, o.Recovered, o.Final, o.FinalMode)
		if len(o.SensorPIDs) > 0 {
			line += fmt.Sprintf("; sensor pid %d -> %d", o.SensorPIDs[0], o.SensorPIDs[1])
		}
		d.say("%s", line)
	}
	for _, r := range d.res.Repairs {
		d.say("  repair request #%d %s: %s (%d devices)", r.ID, r.State, strings.Join(r.Advisories, ", "), r.Devices)
	}
	return d.check(affected)
}

// check returns an error unless the run ended as the story says.
func (d *run) check(affected []string) error {
	var problems []string
	for _, o := range d.res.Devices {
		if !slices.Contains(affected, o.ID) {
			continue
		}
		switch {
		case o.Mitigation == "":
			problems = append(problems, o.ID+" never mitigated")
		case !o.Recovered:
			problems = append(problems, o.ID+" never recovered")
		}
		if o.HasBackup && o.Mitigation != report.ModeBackup {
			problems = append(problems, fmt.Sprintf("%s has a backup but went %s", o.ID, o.Mitigation))
		}
		if !o.HasBackup && o.Mitigation != "" && o.Mitigation != report.ModeDegraded {
			problems = append(problems, fmt.Sprintf("%s has no backup but went %s", o.ID, o.Mitigation))
		}
	}
	if d.res.FixCommitted != len(affected) {
		problems = append(problems, fmt.Sprintf("the fix committed on %d of %d devices", d.res.FixCommitted, len(affected)))
	}
	if !d.res.AllNormal {
		problems = append(problems, "not every device is back to normal")
	}
	if d.res.SensorRolledBack != len(d.ids) {
		problems = append(problems, fmt.Sprintf("the unhealthy sensor rolled back on %d of %d devices", d.res.SensorRolledBack, len(d.ids)))
	}
	if d.res.MitigationsClosed != len(affected) {
		problems = append(problems, fmt.Sprintf("%d of %d mitigations closed", d.res.MitigationsClosed, len(affected)))
	}
	if len(d.res.Repairs) != 1 {
		problems = append(problems, fmt.Sprintf("%d repair requests, want 1", len(d.res.Repairs)))
	}
	if !slices.Contains(d.res.Advisories, "GO-2026-5970") {
		problems = append(problems, fmt.Sprintf("the repair request names %v, want GO-2026-5970", d.res.Advisories))
	}
	if len(problems) > 0 {
		return errors.New("the demo did not end as expected: " + strings.Join(problems, "; "))
	}
	return nil
}
