package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/examples/demomodules"
	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/apiclient"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/vulnfixture"
)

// loopDevices is the fleet size of the mitigation loop test.
const loopDevices = 20

// TestMitigationLoopRealProcesses runs the whole mitigation loop with
// real processes — `ztota certd`, `ztota server` and 20 `ztota agent`s
// with two modules each, app and sensor — and real data: Go programs
// certified against the Go vulnerability database of 2025-07-01 and
// released through the gate, then the 2026-08-21 snapshot loaded into the
// certifier, which revokes app 1.0.0 for GO-2026-5970. Every device
// running it is mitigated (on its designated backup app 0.9.0 where its
// release names one, degraded otherwise) while the sensor runs on with
// the same pid; the server fetches the new list and nudges the devices;
// one repair request names the advisory, the certified fix is deployed by the server to
// exactly the affected devices and everything returns to normal. The
// server is killed (SIGKILL) before the database update and restarted
// after it, and killed again right after the fix is released; the
// certifier is killed once the devices are mitigated: nothing is lost and nothing is done twice
// (one repair request, one mitigation per device, one fix deployment).
func TestMitigationLoopRealProcesses(t *testing.T) {
	needBinary(t)
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING: half of the fleet degrades, and the agent's degraded mode starts the module as another uid, which needs root; not running as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	built, err := demomodules.Build(ctx, "", demomodules.All()...)
	if errors.Is(err, demomodules.ErrProxy) {
		t.Skipf("SKIPPING: the module programs need golang.org/x/text from the Go module proxy, which is unreachable: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	osv, err := vulnfixture.FindOSVData()
	if err != nil {
		t.Skipf("SKIPPING: real OSV data not available: %v", err)
	}
	bundle := map[string]string{}
	for _, b := range built {
		bundle[b.Module+" "+b.Version] = b.Bundle
	}

	s := &stack{dir: t.TempDir()}
	// Degraded modules run under another uid: they must reach their slot.
	for _, d := range []string{filepath.Dir(s.dir), s.dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	s.keys = filepath.Join(s.dir, "keys")
	ztota(t, "keys", "init", "--out", s.keys)
	s.online = filepath.Join(s.keys, keyset.OnlineDir)
	s.data = filepath.Join(s.dir, "server")
	ca, cert, key := keyset.TLSFiles(s.online)
	s.ca = ca

	// The certifier on the 2025-07-01 snapshot, on a fixed port so that
	// it comes back where the server and the devices look for it.
	src := filepath.Join(s.dir, "go-vulndb.zip")
	copyInto(t, filepath.Join(osv, vulnfixture.Snapshot20250701+".zip"), src)
	cdata := filepath.Join(s.dir, "certd")
	caddr := freeAddr(t)
	startCertd := func(name string) *proc {
		p := startProc(t, name, baseEnv(), "certd", "--data", cdata, "--osv", src, "--listen", caddr,
			"--watch", "1h", "--tls-cert", cert, "--tls-key", key)
		p.waitLine(regexp.MustCompile(`certification service listening`), 60*time.Second)
		return p
	}
	cd := startCertd("certd")
	certdURL := "https://" + caddr
	certFlags := []string{"--certd", certdURL, "--certd-ca", ca, "--certd-token-file", filepath.Join(cdata, "admin.token")}
	root := filepath.Join(cdata, "keys", "root.json")

	// The server follows certd's feed and rolls fixes out at once.
	serverArgs := []string{"--certifier-root", root, "--certd", certdURL, "--certd-ca", ca, "--fix-waves", "100", "--fix-failure-threshold", "1"}
	startServer := func(name, listen string) {
		s.srv = startProc(t, name, baseEnv(), append([]string{"server", "--data", s.data, "--keys", s.online, "--listen", listen}, serverArgs...)...)
		s.addr = s.srv.waitLine(regexp.MustCompile(`msg=serving addr=(\S+) scheme=https `), 30*time.Second)[1]
		s.url = "https://" + s.addr
		s.api = []string{"--server", s.url, "--token-file", filepath.Join(s.data, "admin.token"), "--ca", s.ca}
	}
	startServer("server", "127.0.0.1:0")
	admin := s.admin(t)

	rel := func(b, file, version, counter string, extra ...string) released {
		t.Helper()
		p := filepath.Join(s.dir, file)
		copyInto(t, bundle[b], p)
		module := strings.Fields(b)[0]
		args := append([]string{"release", p, "--name", module, "--module", module, "--version", version, "--counter", counter,
			"--hardware", "board-a", "--keys", s.keys}, extra...)
		out, errOut, code := ztotaExit(t, append(append(args, certFlags...), s.api...)...)
		m := releasedLine.FindStringSubmatch(out)
		if code != 0 || m == nil || !strings.Contains(out, "certified by the certifier") {
			t.Fatalf("release %s: exit %d\n%s%s", file, code, out, errOut)
		}
		return released{m[1], m[2]}
	}
	backup := rel("app 0.9.0", "app-0.9.0.tar", "0.9.0", "1")
	withBackup := rel("app 1.0.0", "app-1.0.0-with-backup.tar", "1.0.0", "2", "--backup", backup.target)
	without := rel("app 1.0.0", "app-1.0.0.tar", "1.0.0", "2")
	sensor := rel("sensor 1.0.0", "sensor-1.0.0.tar", "1.0.0", "1")
	if withBackup.sha256 != without.sha256 {
		t.Fatal("the two releases of app 1.0.0 have different artifacts")
	}

	// The fleet.
	var ids, evens, odds []string
	agents := map[string]*proc{}
	for i := 0; i < loopDevices; i++ {
		id := fmt.Sprintf("dev-%02d", i)
		ids = append(ids, id)
		if i%2 == 0 {
			evens = append(evens, id)
		} else {
			odds = append(odds, id)
		}
		tok, err := admin.EnrollToken(ctx, "fleet", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		path := writeLoopConfig(t, s, id, tok, root)
		agents[id] = startProc(t, id, baseEnv(), "agent", "--config", path)
	}
	for _, id := range ids {
		agents[id].waitLine(regexp.MustCompile(`msg=enrolled`), 60*time.Second)
	}
	deploy := func(target string, devs []string) string {
		out := ztota(t, append([]string{"deploy", target, "--devices", strings.Join(devs, ",")}, s.api...)...)
		return strings.Fields(out)[1]
	}
	deps := []string{deploy(withBackup.target, evens), deploy(without.target, odds), deploy(sensor.target, ids)}
	for _, id := range deps {
		waitDeployment(t, admin, id, 3*time.Minute)
	}
	sensorPIDs := map[string]int{}
	for _, id := range ids {
		if sensorPIDs[id] = loopSensorPID(s.dir, id); sensorPIDs[id] == 0 {
			t.Fatalf("%s: no sensor process", id)
		}
	}

	// The server crashes (SIGKILL); the database is updated while it is
	// down; it comes back and must find the certifier's events in the
	// feed, act on each once and nudge the devices. (Killed while devices
	// switch to their backup instead, a device that cannot fetch the
	// backup degrades, as designed; that is the agent's own test.)
	s.srv.kill()
	t0 := time.Now()
	out := ztota(t, "cert", "db", "load", filepath.Join(osv, vulnfixture.Snapshot20260821+".zip"),
		"--certd", certdURL, "--ca", ca, "--token-file", filepath.Join(cdata, "admin.token"))
	t.Logf("database update: %s", strings.TrimSpace(out))
	startServer("server (restarted after the database update)", s.addr)

	affected := ids
	waitAll(t, admin, affected, t0, 2*time.Minute, "a mitigation (degraded or on-backup)", report.StateDegraded, report.StateOnBackup)
	t.Logf("database update to the last device mitigated: %s", time.Since(t0).Round(time.Millisecond))
	// A device may see the list (fetched by the restarted server at
	// start) before the server has acted on the feed event: wait for the
	// mitigations, then check there is exactly one per device.
	var ms []store.Mitigation
	deadline := time.Now().Add(60 * time.Second)
	for {
		if ms, err = admin.Mitigations(ctx, "", ""); err != nil {
			t.Fatal(err)
		}
		if len(ms) >= len(affected) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	checkOnePerDevice(t, ms, affected, withBackup.sha256)
	rs, err := admin.Repairs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || !slices.Equal(rs[0].Advisories, []string{"GO-2026-5970"}) || rs[0].Devices != len(affected) {
		t.Fatalf("repair requests %+v; want one naming GO-2026-5970 for %d devices", rs, len(affected))
	}
	// How each device mitigated. A device whose backup could not be
	// checked at once (the server was being restarted) degrades first and
	// switches to the backup once it can: wait for that.
	for _, id := range affected {
		if slices.Contains(evens, id) {
			deadline := time.Now().Add(90 * time.Second)
			for !onBackupSince(t, admin, id, t0) && time.Now().Before(deadline) {
				time.Sleep(250 * time.Millisecond)
			}
			if !onBackupSince(t, admin, id, t0) {
				t.Errorf("%s never reported on-backup (first mitigation %q)", id, mitigationMode(t, admin, id, t0))
			}
			continue
		}
		if mode := mitigationMode(t, admin, id, t0); mode != report.ModeDegraded || onBackupSince(t, admin, id, t0) {
			t.Errorf("%s mitigated by %q, want degraded only (its release names no backup)", id, mode)
		}
	}

	// The certifier crashes and comes back; the fix is certified and
	// released; the server is killed right after and restarted.
	cd.kill()
	cd = startCertd("certd (restarted)")
	fix := rel("app 1.1.0", "app-1.1.0.tar", "1.1.0", "3")
	s.srv.kill()
	startServer("server (restarted after the fix release)", s.addr)
	waitAll(t, admin, affected, t0, 3*time.Minute, "recovered", report.StateRecovered)
	t.Logf("database update to the last device recovered: %s", time.Since(t0).Round(time.Millisecond))

	// Everything back to normal, each thing done once.
	deadline = time.Now().Add(60 * time.Second)
	for {
		rs, err = admin.Repairs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 1 && rs[0].State == store.RepairClosed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("repair requests %+v; want the one closed", rs)
		}
		time.Sleep(250 * time.Millisecond)
	}
	ms, err = admin.Mitigations(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	checkOnePerDevice(t, ms, affected, withBackup.sha256)
	fixDeps := map[string]bool{}
	for _, m := range ms {
		if m.State != store.MitigationClosed || m.FixDeployment == "" {
			t.Errorf("mitigation of %s: state %s, fix deployment %q; want closed by the fix", m.DeviceID, m.State, m.FixDeployment)
		}
		fixDeps[m.FixDeployment] = true
	}
	var all []store.Deployment
	getJSON(t, admin, "/v1/deployments", &all)
	var ofFix []string
	for _, d := range all {
		if d.Target == fix.target {
			ofFix = append(ofFix, d.ID)
		}
	}
	if len(ofFix) != 1 || len(fixDeps) != 1 || !fixDeps[ofFix[0]] {
		t.Fatalf("deployments of the fix %v, recorded on the mitigations %v; want exactly one", ofFix, fixDeps)
	}
	v, err := admin.Deployment(ctx, ofFix[0])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range v.Devices {
		got = append(got, d.DeviceID)
		if d.Status != store.DevCommitted {
			t.Errorf("%s in the fix deployment: %s", d.DeviceID, d.Status)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, affected) {
		t.Errorf("the fix went to %v, want exactly the affected devices %v", got, affected)
	}
	for _, id := range affected {
		if got := lastCommitted(t, admin, id, "app"); got != fix.target {
			t.Errorf("%s runs %s, want the fix %s", id, got, fix.target)
		}
	}
	for _, id := range affected {
		if m := mitigationMode(t, admin, id, time.Now().Add(-time.Hour)); m == "" {
			t.Errorf("%s: no mitigation in its history", id)
		}
		if last := lastAppMode(t, admin, id); last != report.ModeNormal {
			t.Errorf("%s: app ends in mode %s, want normal", id, last)
		}
	}
	for _, id := range ids {
		if p := loopSensorPID(s.dir, id); p != sensorPIDs[id] {
			t.Errorf("%s: the sensor's pid went from %d to %d; the other module must run on untouched", id, sensorPIDs[id], p)
		}
		h, reps := reportsOf(t, admin, id)
		for i, r := range h {
			if reps[i].Module == "sensor" && r.Received.After(t0) {
				t.Errorf("%s reported %s about the sensor after the database update; it must be untouched", id, r.State)
			}
		}
	}
	for _, id := range ids {
		agents[id].stop(15 * time.Second)
	}
	s.srv.stop(15 * time.Second)
	cd.stop(15 * time.Second)
}

// freeAddr returns a loopback address with a free port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeLoopConfig writes the agent configuration of a loop device: two
// modules, app and sensor, certification enforced under the certifier's
// root.
func writeLoopConfig(t *testing.T, s *stack, id, tok, root string) string {
	t.Helper()
	state := filepath.Join(s.dir, id+"-state")
	if err := os.MkdirAll(state, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(state, 0o777) // the degraded uid writes there too
	mod := func(name string) agent.Module {
		return agent.Module{Name: name, Command: []string{"bin/" + name}, Env: []string{"ZTOTA_STATE_DIR=" + state},
			Health: agent.Health{StayUp: agent.Duration(500 * time.Millisecond), Command: []string{"bin/" + name, "health"}}}
	}
	cfg := &agent.Config{
		DeviceID: id, HardwareID: "board-a", ServerURL: s.url, ServerCA: s.ca,
		DataDir:             filepath.Join(s.dir, id),
		ImageRoot:           filepath.Join(s.online, keyset.ImageRootFile),
		DirectorRoot:        filepath.Join(s.online, keyset.DirectorRootFile),
		EnrollToken:         tok,
		Modules:             []agent.Module{mod("app"), mod("sensor")},
		PollInterval:        agent.Duration(time.Second),
		CertifierRoot:       root,
		RevocationsInterval: agent.Duration(time.Minute), // the server's nudge brings a new list at once
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.dir, id+".json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loopSensorPID is the pid the device's sensor writes with each sample,
// 0 when that process does not run.
func loopSensorPID(dir, id string) int {
	b, err := os.ReadFile(filepath.Join(dir, id+"-state", "sensor-"+id+".samples"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil || !alive(pid) {
		return 0
	}
	return pid
}

func waitDeployment(t *testing.T, admin *apiclient.Client, id string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		v, err := admin.Deployment(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != store.DeployRunning {
			if v.Status != store.DeployCompleted {
				t.Fatalf("deployment %s %s: %+v", id, v.Status, v)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %s still running after %s: %+v", id, d, v)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// reportsOf is a device's history with each report's signed fields.
func reportsOf(t *testing.T, admin *apiclient.Client, id string) ([]store.Report, []report.Report) {
	t.Helper()
	h, err := admin.History(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	reps := make([]report.Report, len(h))
	for i, r := range h {
		json.Unmarshal(r.Payload, &reps[i])
	}
	return h, reps
}

// waitAll waits until every device has reported one of states after since.
func waitAll(t *testing.T, admin *apiclient.Client, ids []string, since time.Time, d time.Duration, what string, states ...report.State) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var missing []string
		for _, id := range ids {
			h, _ := reportsOf(t, admin, id)
			if !slices.ContainsFunc(h, func(r store.Report) bool {
				return r.Received.After(since) && slices.Contains(states, report.State(r.State))
			}) {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %d devices have not reported %s: %v", d, len(missing), what, missing)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// onBackupSince reports whether the device reported its app on the backup
// after since.
func onBackupSince(t *testing.T, admin *apiclient.Client, id string, since time.Time) bool {
	h, reps := reportsOf(t, admin, id)
	for i, r := range h {
		if r.Received.After(since) && reps[i].Module != "sensor" && report.State(r.State) == report.StateOnBackup {
			return true
		}
	}
	return false
}

// mitigationMode is how the device first reported mitigating app after
// since: "backup", "degraded" or "".
func mitigationMode(t *testing.T, admin *apiclient.Client, id string, since time.Time) string {
	h, reps := reportsOf(t, admin, id)
	for i, r := range h {
		if !r.Received.After(since) || reps[i].Module == "sensor" {
			continue
		}
		switch report.State(r.State) {
		case report.StateOnBackup:
			return report.ModeBackup
		case report.StateDegraded:
			return report.ModeDegraded
		}
	}
	return ""
}

// lastAppMode is app's mode after the device's last report that says
// one.
func lastAppMode(t *testing.T, admin *apiclient.Client, id string) string {
	h, reps := reportsOf(t, admin, id)
	mode := report.ModeNormal
	for i, r := range h {
		if reps[i].Module == "sensor" {
			continue
		}
		switch {
		case reps[i].Mode != "":
			mode = reps[i].Mode
		case report.State(r.State) == report.StateDegraded:
			mode = report.ModeDegraded
		case report.State(r.State) == report.StateOnBackup:
			mode = report.ModeBackup
		case report.State(r.State) == report.StateRecovered:
			mode = report.ModeNormal
		}
	}
	return mode
}

// checkOnePerDevice requires exactly one mitigation per affected device,
// of the revoked artifact, all of one repair request.
func checkOnePerDevice(t *testing.T, ms []store.Mitigation, affected []string, sha string) {
	t.Helper()
	var devs []string
	repairs := map[int64]bool{}
	for _, m := range ms {
		devs = append(devs, m.DeviceID)
		repairs[m.Repair] = true
		if m.Artifact != sha {
			t.Errorf("mitigation of %s for artifact %s, want %s", m.DeviceID, m.Artifact, sha)
		}
	}
	slices.Sort(devs)
	if !slices.Equal(devs, affected) || len(repairs) != 1 {
		t.Fatalf("mitigations of %v (repair requests %v); want one per affected device %v, one repair request", devs, repairs, affected)
	}
}

// getJSON GETs an admin API path into out.
func getJSON(t *testing.T, admin *apiclient.Client, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, admin.BaseURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+admin.Token)
	resp, err := admin.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// lastCommitted is the target of the device's last "committed" report
// about module (a report naming no module is about the only one).
func lastCommitted(t *testing.T, admin *apiclient.Client, id, module string) string {
	h, reps := reportsOf(t, admin, id)
	target := ""
	for i, r := range h {
		if report.State(r.State) == report.StateCommitted && (reps[i].Module == "" || reps[i].Module == module) {
			target = r.Target
		}
	}
	return target
}
