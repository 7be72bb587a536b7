package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ztota/ztota/examples/demomodules"
	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/apiclient"
	"github.com/ztota/ztota/internal/certd"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/store"
)

// canDegrade says whether the agents here can start a module under the
// degraded profile, which runs it as another uid: only as root.
func canDegrade() bool { return os.Geteuid() == 0 }

func moduleNames() []string { return []string{"app", "sensor"} }

// certify submits a bundle to the certifier and returns the certificate
// bundle (envelope, kind, log receipt) the release carries.
func (d *run) certify(ctx context.Context, b demomodules.Built) ([]byte, error) {
	name := b.Module + "-" + b.Version
	s, err := d.cc.Submit(ctx, name, b.Bundle, "")
	if err != nil {
		return nil, fmt.Errorf("certifying %s: %w", name, err)
	}
	if s.Result.Verdict != "pass" {
		return nil, fmt.Errorf("the certifier rejected %s (%s): %s", name, s.Result.Digest, strings.Join(s.Result.Advisories, ", "))
	}
	bundle, err := d.cc.Bundle(ctx, s.Result.Digest)
	if err != nil {
		return nil, fmt.Errorf("the certificate bundle of %s: %w", name, err)
	}
	d.say("certified %s %s (%s): %s against %s, %d findings, log index %d, sha256 %.12s", b.Module, b.Version, b.Note,
		s.Result.Verdict, s.Result.DBID, len(s.Findings), s.Result.LogIndex, s.Artifact)
	return bundle, nil
}

// newAgent makes, enrolls and returns a device's agent.
func (d *run) newAgent(ctx context.Context, id, url, rootFile string) (*agent.Agent, error) {
	et, err := d.api.EnrollToken(ctx, group, time.Hour)
	if err != nil {
		return nil, err
	}
	ddir := filepath.Join(d.dir, id)
	state := filepath.Join(ddir, "module-state")
	if err := os.MkdirAll(state, 0o777); err != nil {
		return nil, err
	}
	// The modules' state directory: writable by the degraded uid too.
	if err := os.Chmod(state, 0o777); err != nil {
		return nil, err
	}
	online := filepath.Join(d.keys, keyset.OnlineDir)
	cfg := &agent.Config{
		DeviceID: id, HardwareID: hardware, ServerURL: url, ServerCA: d.ca, DataDir: ddir,
		ImageRoot:           filepath.Join(online, keyset.ImageRootFile),
		DirectorRoot:        filepath.Join(online, keyset.DirectorRootFile),
		EnrollToken:         et,
		PollInterval:        agent.Duration(300 * time.Millisecond),
		CertifierRoot:       rootFile,
		RevocationsInterval: agent.Duration(30 * time.Second),
	}
	mod := func(name string) agent.Module {
		return agent.Module{Name: name, Command: []string{"bin/" + name}, Env: []string{"ZTOTA_STATE_DIR=" + state},
			Health: agent.Health{StayUp: agent.Duration(500 * time.Millisecond), Command: []string{"bin/" + name, "health"}}}
	}
	cfg.Modules = []agent.Module{mod("app"), mod("sensor")}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a, err := agent.New(ctx, cfg, d.o.Log)
	if err != nil {
		return nil, err
	}
	if err := a.Enroll(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// sensorPID reads the pid the device's sensor writes with every sample;
// 0 when it does not run (no file, or that process is gone).
func (d *run) sensorPID(id string) int {
	b, err := os.ReadFile(filepath.Join(d.dir, id, "module-state", "sensor-"+id+".samples"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil || pid <= 0 {
		return 0
	}
	if _, err := os.Stat("/proc/" + f[1]); err != nil {
		return 0
	}
	return pid
}

// fixDeployment waits a little for a deployment of the fix made by the
// server itself; auto is false when none came.
func (d *run) fixDeployment(ctx context.Context, target string) (id string, auto bool, err error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		deps, err := d.srv.Store().Deployments(ctx)
		if err != nil {
			return "", false, err
		}
		for _, dp := range deps {
			if dp.Target == target {
				return dp.ID, true, nil
			}
		}
		if time.Now().After(deadline) {
			return "", false, nil
		}
		if err := d.tl.poll(ctx); err != nil {
			return "", false, err
		}
		select {
		case <-ctx.Done():
			return "", false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func deploymentDone(ctx context.Context, api *apiclient.Client, id string) (bool, error) {
	v, err := api.Deployment(ctx, id)
	if err != nil {
		return false, err
	}
	return v.Status != store.DeployRunning, nil
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// summarizeUpdate reads the certifier's update report.
func summarizeUpdate(b []byte) string {
	var u certd.UpdateReport
	if err := json.Unmarshal(b, &u); err != nil {
		return "(unreadable update report)"
	}
	return fmt.Sprintf("%d records added, %d re-inspected, %d revoked, %d still certified (database %s)",
		u.Added, u.Reinspected, len(u.Revoked), len(u.Recertified), u.ID)
}

func formatPIDs(ids []string, pids map[string]int) string {
	var s []string
	for _, id := range ids {
		s = append(s, fmt.Sprintf("%s=%d", id, pids[id]))
	}
	return strings.Join(s, " ")
}

// timeline prints every new status report, in time order, and answers
// questions about them.
type timeline struct {
	st   *store.Store
	ids  []string
	say  func(string, ...any)
	seen map[string]bool
	all  map[string][]entry // per device, in arrival order
}

// entry is a stored report with the fields of its signed payload.
type entry struct {
	store.Report
	rep report.Report
}

func newTimeline(st *store.Store, ids []string, say func(string, ...any)) *timeline {
	return &timeline{st: st, ids: ids, say: say, seen: map[string]bool{}, all: map[string][]entry{}}
}

func (t *timeline) seenIDs() map[string]bool {
	if t == nil {
		return nil
	}
	return t.seen
}

func (t *timeline) poll(ctx context.Context) error {
	var fresh []entry
	for _, id := range t.ids {
		h, err := t.st.History(ctx, id, 0)
		if err != nil {
			return err
		}
		for _, r := range h {
			if t.seen[r.ID] {
				continue
			}
			t.seen[r.ID] = true
			e := entry{Report: r}
			json.Unmarshal(r.Payload, &e.rep) // signed and checked by the server; best effort here
			fresh = append(fresh, e)
			t.all[id] = append(t.all[id], e)
		}
	}
	sort.SliceStable(fresh, func(i, j int) bool { return fresh[i].Received.Before(fresh[j].Received) })
	for _, e := range fresh {
		line := fmt.Sprintf("  %-9s %-19s", e.DeviceID, e.State)
		if e.rep.Module != "" {
			line += " [" + e.rep.Module
			if e.rep.Mode != "" {
				line += " " + e.rep.Mode
			}
			line += "]"
		}
		if e.Target != "" {
			line += " " + e.Target
		}
		if e.State == "downloading" {
			line += fmt.Sprintf(" %d%%", e.Progress)
		}
		if e.Detail != "" {
			line += "  (" + shorten(e.Detail, 150) + ")"
		}
		t.say("%s", line)
	}
	return nil
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func (t *timeline) until(ctx context.Context, done func() (bool, error)) error {
	for {
		if err := t.poll(ctx); err != nil {
			return err
		}
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			time.Sleep(300 * time.Millisecond)
			return t.poll(ctx)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(150 * time.Millisecond):
		}
	}
}

// first returns the device's first report received after since in one of
// states.
func (t *timeline) first(id string, since time.Time, states ...report.State) (entry, bool) {
	for _, e := range t.all[id] {
		if e.Received.After(since) && slices.Contains(states, report.State(e.State)) {
			return e, true
		}
	}
	return entry{}, false
}

func (t *timeline) has(id string, since time.Time, states ...report.State) bool {
	_, ok := t.first(id, since, states...)
	return ok
}

func (t *timeline) allReported(ids []string, since time.Time, states ...report.State) bool {
	for _, id := range ids {
		if !t.has(id, since, states...) {
			return false
		}
	}
	return true
}

// lastReport is when the last of ids first reported one of states.
func (t *timeline) lastReport(ids []string, since time.Time, states ...report.State) time.Time {
	var last time.Time
	for _, id := range ids {
		if e, ok := t.first(id, since, states...); ok && e.Received.After(last) {
			last = e.Received
		}
	}
	return last
}

// modeAfter names the mitigation the device reported first after since:
// "backup" or "degraded" ("" none).
func (t *timeline) modeAfter(id string, since time.Time, states ...report.State) string {
	e, ok := t.first(id, since, states...)
	if !ok {
		return ""
	}
	if e.rep.Mode != "" {
		return e.rep.Mode
	}
	if e.State == string(report.StateOnBackup) {
		return report.ModeBackup
	}
	return report.ModeDegraded
}

// lastMode is the app module's mode after the device's last report that
// says one (normal when none does).
func (t *timeline) lastMode(id string) string {
	mode := report.ModeNormal
	for _, e := range t.all[id] {
		if e.rep.Module != "" && e.rep.Module != "app" {
			continue
		}
		switch {
		case e.rep.Mode != "":
			mode = e.rep.Mode
		case e.State == string(report.StateDegraded):
			mode = report.ModeDegraded
		case e.State == string(report.StateOnBackup):
			mode = report.ModeBackup
		case e.State == string(report.StateRecovered):
			mode = report.ModeNormal
		}
	}
	return mode
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// lastCommitted is the target of the device's last "committed" report
// about module (reports that name no module are about the only one).
func (t *timeline) lastCommitted(id, module string) string {
	target := ""
	for _, e := range t.all[id] {
		if e.State == string(report.StateCommitted) && (e.rep.Module == "" || e.rep.Module == module) {
			target = e.Target
		}
	}
	return target
}
