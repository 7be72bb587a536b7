package agent_test

// Field failures: each test performs a failure that devices meet in the
// field (a stopped agent, one 404, a full disk, wrong bytes from the
// network, a health command's coloured output, a server that refuses a
// batch, a crash after a commit, the same bytes under a new name, a
// relative data directory) and checks that no passing failure is turned
// into a permanent refusal and no terminal report is lost.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/fetch"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
)

// noRefusal asserts that the device refused nothing: no refused report
// reached the server and the refused set is empty.
func noRefusal(t *testing.T, b *testbed.Bed, a *agent.Agent, id string) {
	t.Helper()
	a.FlushReports(testbed.Ctx(t))
	for _, r := range b.History(id) {
		if r.State == "refused" || r.State == "rolled-back" {
			t.Fatalf("the device reported %s: %q; a passing failure was taken as final", r.State, r.Detail)
		}
	}
	if ref := a.Refused(); len(ref) != 0 {
		t.Fatalf("the refused set holds %v after a passing failure", ref)
	}
}

// deviceStatus returns the device's status in a deployment.
func deviceStatus(t *testing.T, b *testbed.Bed, dep, id string) string {
	t.Helper()
	v, err := b.Admin.Deployment(testbed.Ctx(t), dep)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range v.Devices {
		if d.DeviceID == id {
			return d.Status
		}
	}
	t.Fatalf("device %s is not in deployment %s", id, dep)
	return ""
}

// waitDeviceStatus flushes the device's reports until the deployment
// counts it want.
func waitDeviceStatus(t *testing.T, b *testbed.Bed, a *agent.Agent, dep, id, want string) {
	t.Helper()
	testbed.WaitFor(t, 10*time.Second, "deployment "+dep+" to count "+id+" "+want, func() bool {
		a.FlushReports(testbed.Ctx(t))
		return deviceStatus(t, b, dep, id) == want
	})
}

// waitDeploymentEnd flushes the device's reports until the deployment is
// no longer running, and returns its status.
func waitDeploymentEnd(t *testing.T, b *testbed.Bed, a *agent.Agent, dep string) (status string) {
	t.Helper()
	testbed.WaitFor(t, 10*time.Second, "deployment "+dep+" to end", func() bool {
		a.FlushReports(testbed.Ctx(t))
		v, err := b.Admin.Deployment(testbed.Ctx(t), dep)
		status = v.Status
		return err == nil && v.Status != store.DeployRunning
	})
	return status
}

// answered asserts that one more update cycle adds no report: the device
// answered its assignment already, once.
func answered(t *testing.T, b *testbed.Bed, a *agent.Agent, id string) {
	t.Helper()
	n := len(b.History(id))
	a.Cycle(testbed.Ctx(t))
	a.FlushReports(testbed.Ctx(t))
	if m := len(b.History(id)); m != n {
		t.Fatalf("%d more reports for an assignment already answered", m-n)
	}
}

// reportsIn returns the reports of a batch the device uploads (the body
// is put back for the server); none for any other request.
func reportsIn(r *http.Request) []report.Report {
	if !strings.HasSuffix(r.URL.Path, "/reports") {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	var batch []report.Signed
	json.Unmarshal(body, &batch)
	out := make([]report.Report, len(batch))
	for i, s := range batch {
		json.Unmarshal(s.Payload, &out[i])
	}
	return out
}

func artifact(t *testing.T, b *testbed.Bed, sha string) []byte {
	t.Helper()
	data, err := os.ReadFile(b.Server.Store().ArtifactPath(sha))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestStoppedMidDownloadThenRestartInstalls performs a SIGTERM in the
// middle of a download (the agent's context is cancelled while half the
// artifact is on disk); the restarted agent resumes from the bytes it
// holds and installs the release. Before, the cancellation was taken as a
// final verdict: the release was refused for good.
func TestStoppedMidDownloadThenRestartInstalls(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	cfg := b.AgentConfig("dev-1", "board-a")
	a := b.Agent(cfg)
	installV1(t, b, a, "dev-1")
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 64<<10), "2.0.0", 2, "board-a")
	data := artifact(t, b, v2.SHA256)
	half := make(chan struct{})
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/image/targets/") {
			return false
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		close(half)
		<-r.Context().Done()
		return true
	})
	dep := b.Deploy(v2.Target, "dev-1")
	dl := filepath.Join(cfg.DataDir, "download", v2.SHA256)
	ctx, stop := context.WithCancel(testbed.Ctx(t))
	go func() {
		<-half
		for ctx.Err() == nil { // the SIGTERM comes once half the artifact is on disk
			if fi, err := os.Stat(dl); err == nil && fi.Size() >= int64(len(data)/2) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		stop()
	}()
	err := a.Cycle(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cycle stopped mid-download: %v, want context.Canceled", err)
	}
	noRefusal(t, b, a, "dev-1")
	if hasState(b, "dev-1", "failed") {
		t.Fatal("the agent reported a stop of its own as a failure")
	}
	if fi, err := os.Stat(dl); err != nil || fi.Size() < int64(len(data)/2) {
		t.Fatalf("the partial download was not kept: %v", err)
	}
	a.Close()

	ranged := f.recordRange()
	a2 := b.Agent(cfg) // the restart
	testbed.CycleInstalls(t, a2, v2.SHA256, "after the restart")
	if rg := ranged(); !strings.HasPrefix(rg, "bytes=") || rg == "bytes=0-" {
		t.Fatalf("the restarted download asked Range %q; want it to resume from the bytes held", rg)
	}
	waitDeviceStatus(t, b, a2, dep.ID, "dev-1", store.DevCommitted)
}

// TestOne404ThenSuccessInstalls performs a mirror that has not caught up
// yet: the artifact answers 404 once. The device neither refuses the
// release nor counts against the deployment, and installs it on the next
// try.
func TestOne404ThenSuccessInstalls(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	installV1(t, b, a, "dev-1")
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 4096), "2.0.0", 2, "board-a")
	var once atomic.Bool
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/image/targets/") && once.CompareAndSwap(false, true) {
			http.NotFound(w, r)
			return true
		}
		return false
	})
	dep := b.Deploy(v2.Target, "dev-1")
	err := a.Cycle(testbed.Ctx(t))
	var se *fetch.HTTPStatusError
	if !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Fatalf("cycle against a 404: %v, want the 404", err)
	}
	noRefusal(t, b, a, "dev-1")
	if st := deviceStatus(t, b, dep.ID, "dev-1"); st != store.DevAssigned {
		t.Fatalf("after one 404 the deployment counts the device %q, want %q", st, store.DevAssigned)
	}
	// One failed attempt is not yet a failure that persists: it is told in
	// the progress state, not reported "failed".
	if hasState(b, "dev-1", "failed") {
		t.Fatal("a single 404 was reported as failed")
	}
	if d := lastReport(t, b, a, "dev-1", "downloading"); !strings.Contains(d, "will retry") || !strings.Contains(d, "404") {
		t.Fatalf("last downloading report says %q; want the 404 and the retry named", d)
	}
	testbed.CycleInstalls(t, a, v2.SHA256, "after the 404 passed")
}

// TestDiskFullMidWriteThenSpaceFreedInstalls performs ENOSPC in the middle
// of writing the download. The device reports "failed" (someone must free
// space), keeps what it wrote, refuses nothing, and installs once writes
// succeed again.
func TestDiskFullMidWriteThenSpaceFreedInstalls(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	cfg := b.AgentConfig("dev-1", "board-a")
	a := b.Agent(cfg)
	v1 := installV1(t, b, a, "dev-1")
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 64<<10), "2.0.0", 2, "board-a")
	var full atomic.Bool
	full.Store(true)
	agent.SetWriteFault(a, func(off int64, n int) error {
		if full.Load() && off+int64(n) > 16<<10 {
			return syscall.ENOSPC
		}
		return nil
	})
	dep := b.Deploy(v2.Target, "dev-1")
	err := a.Cycle(testbed.Ctx(t))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("cycle with a full disk: %v, want ENOSPC", err)
	}
	refusedWith(t, b, a, "dev-1", err, "failed", "no space left on device", v1.SHA256)
	noRefusal(t, b, a, "dev-1")
	if fi, err := os.Stat(filepath.Join(cfg.DataDir, "download", v2.SHA256)); err != nil || fi.Size() == 0 {
		t.Fatalf("the partial download was not kept: %v", err)
	}
	if st := deviceStatus(t, b, dep.ID, "dev-1"); st != store.DevAssigned {
		t.Fatalf("a full disk counts the device %q in the deployment, want %q", st, store.DevAssigned)
	}
	full.Store(false)
	testbed.CycleInstalls(t, a, v2.SHA256, "after space was freed")
}

// TestTamperedDownloadThenHonestMirrorInstalls performs wrong bytes from
// the network (same length, one byte changed). The download is thrown
// away and started again from zero later; the release is not refused, and
// the honest mirror's bytes are installed.
func TestTamperedDownloadThenHonestMirrorInstalls(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	cfg := b.AgentConfig("dev-1", "board-a")
	a := b.Agent(cfg)
	installV1(t, b, a, "dev-1")
	v2 := b.Release(b.ScriptBundle("2.0.0", true, 4096), "2.0.0", 2, "board-a")
	bad := bytes.Clone(artifact(t, b, v2.SHA256))
	bad[len(bad)/2] ^= 0xff
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/image/targets/") {
			return false
		}
		w.Write(bad)
		return true
	})
	b.Deploy(v2.Target, "dev-1")
	err := a.Cycle(testbed.Ctx(t))
	if !errors.Is(err, fetch.ErrHashMismatch) {
		t.Fatalf("cycle with tampered bytes: %v, want fetch.ErrHashMismatch", err)
	}
	noRefusal(t, b, a, "dev-1")
	if fi, err := os.Stat(filepath.Join(cfg.DataDir, "download", v2.SHA256)); err == nil && fi.Size() != 0 {
		t.Fatalf("%d bytes proven wrong were kept", fi.Size())
	}
	ranged := f.recordRange()
	testbed.CycleInstalls(t, a, v2.SHA256, "after the honest mirror came back")
	if rg := ranged(); rg != "" {
		t.Fatalf("the download after wrong bytes asked Range %q; want it from zero", rg)
	}
	assertSlotHoldsBundle(t, a, b, "2.0.0")
}

// bundleWith writes a bundle whose bin/app is script.
func bundleWith(t *testing.T, b *testbed.Bed, name, script string) string {
	t.Helper()
	path := filepath.Join(b.Dir, "bundles", name+".tar")
	os.MkdirAll(filepath.Dir(path), 0o755)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	for _, e := range []struct {
		name string
		mode int64
		data string
	}{{"bin/app", 0o755, script}, {"VERSION", 0o644, name}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: e.mode, Size: int64(len(e.data))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.data))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestColouredHealthOutputRollbackReachesServer performs a health command
// that fails printing ANSI colour codes and long multi-byte output. The
// rolled-back report is cleaned, signed and reaches the server (before, it
// failed validation and was only logged, so the deployment never ended).
func TestColouredHealthOutputRollbackReachesServer(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	v1 := installV1(t, b, a, "dev-1")
	script := "#!/bin/sh\nif [ \"$1\" = health ]; then\n printf '\\033[31;1mERROR\\033[0m database \\033]0;title\\007down\\r\\n'\n" +
		" i=0; while [ $i -lt 400 ]; do printf 'déjà vu ✓ '; i=$((i+1)); done\n exit 1\nfi\n" +
		"trap 'exit 0' TERM INT\nwhile :; do sleep 0.05; done\n"
	v2 := b.Release(bundleWith(t, b, "2.0.0", script), "2.0.0", 2, "board-a")
	dep := b.Deploy(v2.Target, "dev-1")
	a.Cycle(testbed.Ctx(t))
	if got := testbed.Installed(t, a); got != v1.SHA256 {
		t.Fatalf("the device runs %q after a failed health check, want v1", got)
	}
	detail := lastReport(t, b, a, "dev-1", "rolled-back")
	if !strings.Contains(detail, "ERROR database down") || strings.ContainsRune(detail, 0x1b) || !strings.Contains(detail, "déjà vu") {
		t.Fatalf("rolled-back detail %q: want the cleaned health output", detail)
	}
	waitDeviceStatus(t, b, a, dep.ID, "dev-1", store.DevFailed)
}

// TestRefusedBatchIsDeadLetteredAndLaterReportsArrive performs a server
// that answers 400 to every batch holding one particular report (the
// "verifying" one). That report is dead-lettered on the device, a
// "failed" report names it, and every later report still arrives (before,
// the outbox retried the same batch for ever and nothing more arrived).
func TestRefusedBatchIsDeadLetteredAndLaterReportsArrive(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	cfg := b.AgentConfig("dev-1", "board-a")
	a := b.Agent(cfg)
	var refusedID atomic.Value
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		for _, p := range reportsIn(r) {
			if p.State == report.StateVerifying {
				refusedID.Store(p.ID)
				http.Error(w, "report 0: refused by policy", http.StatusBadRequest)
				return true
			}
		}
		return false
	})
	r := b.Release(b.ScriptBundle("1.0.0", true, 64), "1.0.0", 1, "board-a")
	dep := b.Deploy(r.Target, "dev-1")
	if err := a.Cycle(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	waitStates(t, b, a, "dev-1", "committed", "failed")
	id, _ := refusedID.Load().(string)
	if id == "" {
		t.Fatal("the server never saw the verifying report")
	}
	var notice string
	for _, rep := range b.History("dev-1") {
		if rep.State == "verifying" {
			t.Fatal("the refused report was stored")
		}
		if rep.State == "failed" {
			notice = rep.Detail
		}
	}
	if !strings.Contains(notice, id) {
		t.Fatalf("failed report %q does not name the dead-lettered report %s", notice, id)
	}
	dead, err := os.ReadFile(filepath.Join(cfg.DataDir, "deadletter.jsonl"))
	if err != nil || !bytes.Contains(dead, []byte(id)) {
		t.Fatalf("deadletter.jsonl does not hold %s: %v", id, err)
	}
	if st := deviceStatus(t, b, dep.ID, "dev-1"); st != store.DevCommitted {
		t.Fatalf("deployment counts the device %q, want committed", st)
	}
}

// TestFloorSurvivesCrashBetweenCommitAndSave performs a crash right after
// the slot commit, before state.json got the new release counter floor:
// state.json is put back as it was before the commit. After the restart
// the device still refuses an older release (before, the floor fell and
// the older release was installed).
func TestFloorSurvivesCrashBetweenCommitAndSave(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	cfg := b.AgentConfig("dev-1", "board-a")
	a := b.Agent(cfg)
	statePath := filepath.Join(cfg.DataDir, "state.json")
	var before []byte
	a.OnStep = func(step string) {
		if step == agent.StepHealthy {
			before, _ = os.ReadFile(statePath)
		}
	}
	r5 := b.Release(b.ScriptBundle("5.0.0", true, 64), "5.0.0", 5, "board-a")
	b.Deploy(r5.Target, "dev-1")
	testbed.CycleInstalls(t, a, r5.SHA256, "installing 5.0.0")
	if before == nil {
		t.Fatal("the install never reached the healthy step")
	}
	a.Close()
	if err := os.WriteFile(statePath, before, 0o600); err != nil { // the crash: the floor save never happened
		t.Fatal(err)
	}
	a2 := b.Agent(cfg) // the restart
	olderRefused(t, b, a2, "dev-1", "4.0.0", 4, r5)
}

// TestSameBytesUnderNewNameCompletesDeployment performs a release of the
// bytes a device runs under a second target name, deployed to it. The
// device reports "committed" for the new name and the deployment
// completes (before, the device thought itself up to date and said
// nothing; the deployment ran for ever).
func TestSameBytesUnderNewNameCompletesDeployment(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	bundle := b.ScriptBundle("1.0.0", true, 64)
	r1 := b.Release(bundle, "1.0.0", 1, "board-a")
	b.Deploy(r1.Target, "dev-1")
	if err := a.Cycle(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	r2 := b.Release(bundle, "1.0.1", 1, "board-a")
	if r2.SHA256 != r1.SHA256 || r2.Target == r1.Target {
		t.Fatalf("want the same bytes under a new name: %s %s, %s %s", r1.Target, r1.SHA256, r2.Target, r2.SHA256)
	}
	dep := b.Deploy(r2.Target, "dev-1")
	if err := a.Cycle(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if st := waitDeploymentEnd(t, b, a, dep.ID); st != store.DeployCompleted {
		t.Fatalf("the deployment of the new name ended %q, want %q", st, store.DeployCompleted)
	}
	d, err := b.Server.Store().Device(testbed.Ctx(t), "dev-1")
	if err != nil || d.Installed != r2.Target {
		t.Fatalf("the server thinks the device runs %q (%v), want %q", d.Installed, err, r2.Target)
	}
	answered(t, b, a, "dev-1")
}

// TestRelativeDataDirFromAnotherWorkingDirectory performs an agent started
// from another working directory with a configuration whose data_dir and
// roots are relative: they are taken against the configuration file's
// directory, the module starts and the release is installed (before, the
// module could not be started and the release was rolled back and refused).
func TestRelativeDataDirFromAnotherWorkingDirectory(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	base := b.AgentConfig("dev-1", "board-a")
	etc := filepath.Join(t.TempDir(), "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{base.ImageRoot: "image-root.json", base.DirectorRoot: "director-root.json"} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(etc, dst), data, 0o600)
	}
	conf, _ := json.Marshal(map[string]any{
		"device_id": "dev-1", "hardware_id": "board-a", "server_url": base.ServerURL, "insecure_http": base.InsecureHTTP,
		"data_dir": "data", "image_root": "image-root.json", "director_root": "director-root.json",
		"enroll_token": base.EnrollToken, "poll_interval": "200ms", "min_rate": 1024, "rate_window": "500ms",
		"module": map[string]any{"name": "app", "command": []string{"bin/app"},
			"health": map[string]any{"stay_up": "300ms", "command": []string{"bin/app", "health"}}},
	})
	if err := os.WriteFile(filepath.Join(etc, "agent.json"), conf, 0o600); err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(filepath.Dir(etc), "elsewhere")
	os.MkdirAll(elsewhere, 0o755)
	t.Chdir(elsewhere)
	cfg, err := agent.LoadConfig("../etc/agent.json")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != filepath.Join(etc, "data") {
		t.Fatalf("data_dir resolved to %q, want %q", cfg.DataDir, filepath.Join(etc, "data"))
	}
	a := b.Agent(cfg)
	r := b.Release(b.ScriptBundle("1.0.0", true, 64), "1.0.0", 1, "board-a")
	b.Deploy(r.Target, "dev-1")
	testbed.CycleInstalls(t, a, r.SHA256, "started from another directory")
	noRefusal(t, b, a, "dev-1")
	if a.ModulePID() == 0 {
		t.Fatal("no module runs")
	}
}

// TestHealthCommandChildrenAreKilledAfterTimeout performs a health command
// that starts a background sleeper and then hangs. After its timeout the
// whole process group is gone (before, only the command was killed and the
// sleeper lived on).
func TestHealthCommandChildrenAreKilledAfterTimeout(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	pidFile := filepath.Join(t.TempDir(), "sleeper.pid")
	a := device(t, b, "dev-1", "board-a", func(c *agent.Config) {
		c.Module.Health.Command = []string{"sh", "-c", "sleep 120 >/dev/null 2>&1 & echo $! > " + pidFile + "; sleep 120"}
		c.Module.Health.Timeout = agent.Duration(500 * time.Millisecond)
	})
	r := b.Release(b.ScriptBundle("1.0.0", true, 64), "1.0.0", 1, "board-a")
	b.Deploy(r.Target, "dev-1")
	a.Cycle(testbed.Ctx(t))
	detail := lastReport(t, b, a, "dev-1", "rolled-back")
	if !strings.Contains(detail, "timed out") {
		t.Fatalf("rolled-back detail %q: want the timeout named", detail)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	testbed.WaitFor(t, 5*time.Second, fmt.Sprintf("the health command's sleeper (pid %d) to be gone", pid), func() bool {
		return !alive(pid)
	})
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestModuleDoesNotSeeAgentSecrets performs a module that dumps its
// environment: a secret in the agent's environment is not there; PATH,
// the ZTOTA_* variables and module.env from the configuration are.
func TestModuleDoesNotSeeAgentSecrets(t *testing.T) {
	t.Setenv("ZTOTA_AGENT_SECRET_TOKEN", "s3cret-value")
	b, _ := bed(t, testbed.Options{})
	envFile := filepath.Join(t.TempDir(), "module.env")
	a := device(t, b, "dev-1", "board-a", func(c *agent.Config) { c.Module.Env = []string{"FROM_CONFIG=yes"} })
	script := "#!/bin/sh\nif [ \"$1\" = health ]; then exit 0; fi\nenv > " + envFile + ".tmp && mv " + envFile + ".tmp " + envFile +
		"\ntrap 'exit 0' TERM INT\nwhile :; do sleep 0.05; done\n"
	r := b.Release(bundleWith(t, b, "1.0.0", script), "1.0.0", 1, "board-a")
	b.Deploy(r.Target, "dev-1")
	if err := a.Cycle(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	var env string
	testbed.WaitFor(t, 5*time.Second, "the module's environment dump", func() bool {
		data, err := os.ReadFile(envFile)
		env = string(data)
		return err == nil
	})
	if strings.Contains(env, "s3cret-value") || strings.Contains(env, "ZTOTA_AGENT_SECRET_TOKEN") {
		t.Fatalf("the module sees the agent's secret:\n%s", env)
	}
	for _, want := range []string{"PATH=", "ZTOTA_DEVICE=dev-1", "ZTOTA_VERSION=1.0.0", "ZTOTA_SLOT=", "FROM_CONFIG=yes"} {
		if !strings.Contains(env, want) {
			t.Fatalf("module environment lacks %s:\n%s", want, env)
		}
	}
}

// TestFailedFloorSaveIsAnError performs a failing save of state.json right
// after the commit (state.json cannot be replaced). The cycle returns the
// error instead of only logging it, the commit stands and is reported, and
// after the save works again a restarted agent still refuses an older
// release (the floor comes from the committed slot).
func TestFailedFloorSaveIsAnError(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	cfg := b.AgentConfig("dev-1", "board-a")
	a := b.Agent(cfg)
	statePath := filepath.Join(cfg.DataDir, "state.json")
	a.OnStep = func(step string) {
		if step == agent.StepHealthy { // from here on state.json cannot be replaced
			os.Remove(statePath)
			os.MkdirAll(filepath.Join(statePath, "in-the-way"), 0o700)
		}
	}
	r5 := b.Release(b.ScriptBundle("5.0.0", true, 64), "5.0.0", 5, "board-a")
	b.Deploy(r5.Target, "dev-1")
	err := a.Cycle(testbed.Ctx(t))
	if err == nil || !strings.Contains(err.Error(), "saving the release counter floor failed") {
		t.Fatalf("cycle whose floor save failed: %v, want the failure returned", err)
	}
	if testbed.Installed(t, a) != r5.SHA256 {
		t.Fatal("the commit did not stand")
	}
	lastReport(t, b, a, "dev-1", "committed")
	a.Close()
	if err := os.RemoveAll(statePath); err != nil {
		t.Fatal(err)
	}
	a2 := b.Agent(cfg) // the restart
	olderRefused(t, b, a2, "dev-1", "4.0.0", 4, r5)
}

// TestRedeployOfRefusedReleaseIsAnswered performs a second deployment of a
// release the device rolled back before. The device does not try it again
// but answers the new deployment with "refused", once, so the deployment
// ends (before, the device skipped it silently and the deployment ran for
// ever with the device "assigned").
func TestRedeployOfRefusedReleaseIsAnswered(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	v1 := installV1(t, b, a, "dev-1")
	bad := b.Release(b.ScriptBundle("2.0.0", false, 64), "2.0.0", 2, "board-a")
	first := b.Deploy(bad.Target, "dev-1")
	a.Cycle(testbed.Ctx(t))
	if got := testbed.Installed(t, a); got != v1.SHA256 {
		t.Fatalf("the device runs %q after a failed health check, want v1", got)
	}
	waitDeploymentEnd(t, b, a, first.ID)
	second := b.Deploy(bad.Target, "dev-1")
	if err := a.Cycle(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	waitDeploymentEnd(t, b, a, second.ID)
	if st := deviceStatus(t, b, second.ID, "dev-1"); st != store.DevFailed {
		t.Fatalf("second deployment counts the device %q, want %q", st, store.DevFailed)
	}
	if got := testbed.Installed(t, a); got != v1.SHA256 {
		t.Fatalf("the device runs %q after the redeployment, want v1", got)
	}
	answered(t, b, a, "dev-1")
}

// TestSameBytesUnderOlderCounterIsRefusedNotCommitted performs a release
// of the running bytes under a new name with a lower release counter. The
// device answers the deployment with "refused" (its rollback policy), the
// server does not record the older name as installed, and the running
// bytes stay trusted.
func TestSameBytesUnderOlderCounterIsRefusedNotCommitted(t *testing.T) {
	b, _ := bed(t, testbed.Options{})
	a := device(t, b, "dev-1", "board-a")
	bundle := b.ScriptBundle("5.0.0", true, 64)
	r5 := b.Release(bundle, "5.0.0", 5, "board-a")
	b.Deploy(r5.Target, "dev-1")
	if err := a.Cycle(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	low := b.Release(bundle, "0.9.0", 1, "board-a")
	dep := b.Deploy(low.Target, "dev-1")
	err := a.Cycle(testbed.Ctx(t))
	refusedWith(t, b, a, "dev-1", err, "refused", "rollback", r5.SHA256)
	waitDeviceStatus(t, b, a, dep.ID, "dev-1", store.DevFailed)
	if ref := a.Refused(); len(ref) != 0 {
		t.Fatalf("the running bytes were put in the refused set: %v", ref)
	}
	if d, err := b.Server.Store().Device(testbed.Ctx(t), "dev-1"); err != nil || d.Installed != r5.Target {
		t.Fatalf("the server thinks the device runs %q (%v), want %q", d.Installed, err, r5.Target)
	}
}

// TestReplayAnswerIsRetriedNotDeadLettered performs a server that answers
// 409 (a replayed request nonce) and 401 to the first report uploads: they
// say nothing about the reports, which are sent again and all arrive;
// nothing is dead-lettered.
func TestReplayAnswerIsRetriedNotDeadLettered(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	cfg := b.AgentConfig("dev-1", "board-a")
	a := b.Agent(cfg)
	var n atomic.Int32
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/reports") {
			return false
		}
		switch n.Add(1) {
		case 1:
			http.Error(w, "replayed request", http.StatusConflict)
			return true
		case 2:
			http.Error(w, "request time outside the window", http.StatusUnauthorized)
			return true
		}
		return false
	})
	r := b.Release(b.ScriptBundle("1.0.0", true, 64), "1.0.0", 1, "board-a")
	b.Deploy(r.Target, "dev-1")
	if err := a.Cycle(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	waitStates(t, b, a, "dev-1", "committed")
	if n.Load() < 3 {
		t.Fatalf("only %d uploads: the refusals were not played", n.Load())
	}
	got := collapse(b.States("dev-1"))
	want := []string{"downloading", "verifying", "installing", "restarting", "health-checking", "committed"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("states %v, want %v: a report was lost", got, want)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "deadletter.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("something was dead-lettered after a 409 or 401: %v", err)
	}
}

// TestRefusedNoticeIsNotNoticedAgain performs a server that refuses the
// "verifying" report and also every dead-letter notice. The notice is
// dead-lettered without a notice of its own (no loop), and the committed
// report still arrives.
func TestRefusedNoticeIsNotNoticedAgain(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	cfg := b.AgentConfig("dev-1", "board-a")
	a := b.Agent(cfg)
	var notices atomic.Int32
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		batch := reportsIn(r)
		for _, p := range batch {
			notice := p.State == report.StateFailed && strings.HasPrefix(p.Detail, "the server refused")
			if notice && len(batch) == 1 {
				notices.Add(1)
			}
			if p.State == report.StateVerifying || notice {
				http.Error(w, "refused", http.StatusBadRequest)
				return true
			}
		}
		return false
	})
	r := b.Release(b.ScriptBundle("1.0.0", true, 64), "1.0.0", 1, "board-a")
	b.Deploy(r.Target, "dev-1")
	if err := a.Cycle(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	waitStates(t, b, a, "dev-1", "committed")
	for range 3 {
		a.FlushReports(testbed.Ctx(t))
	}
	if n := notices.Load(); n != 1 {
		t.Fatalf("%d dead-letter notices were sent one at a time, want exactly 1 (no notice of a notice)", n)
	}
}
