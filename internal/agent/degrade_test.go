package agent_test

// Device mitigation by degraded mode: the certifier's signed revocation
// list revokes the artifact the module runs; the agent restarts it under
// its kernel-enforced degraded profile (sandbox package), keeps it so
// across an agent restart, and runs the certified fix under the normal
// profile again. Checked from the module's own view on real processes.

import (
	"archive/tar"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/sandbox"
	"github.com/ztota/ztota/internal/testbed"
)

// probeBundle writes a module that, when the agent gives it a data
// directory (ZTOTA_DATA_DIR: only under a profile), records there its uid,
// the confinement the kernel shows it (/proc/self/status CapEff,
// NoNewPrivs, Seccomp), whether a TCP connect to port on the loopback
// succeeds and whether it can write /tmp, then "done"; it stays up until
// signalled.
func probeBundle(t *testing.T, b *testbed.Bed, version string, port int) string {
	t.Helper()
	script := `#!/bin/sh
if [ "$1" = health ]; then exit 0; fi
if [ -n "$ZTOTA_DATA_DIR" ]; then
  d="$ZTOTA_DATA_DIR"
  id -u > "$d/uid"
  grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status > "$d/status"
  if /usr/bin/bash -c 'echo x > /dev/tcp/127.0.0.1/` + strconv.Itoa(port) + `' 2>/dev/null; then echo connected > "$d/tcp"; else echo denied > "$d/tcp"; fi
  if echo x > /tmp/ztota-degrade-probe-$$ 2>/dev/null; then rm -f /tmp/ztota-degrade-probe-$$; echo wrote > "$d/outside"; else echo denied > "$d/outside"; fi
  echo "$ZTOTA_MODE" > "$d/done"
fi
trap 'exit 0' TERM INT
while :; do sleep 0.05; done
`
	path := filepath.Join(b.Dir, "bundles", "probe-"+version+".tar")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	for _, e := range []struct {
		name string
		data string
	}{{"bin/app", script}, {"VERSION", version}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(e.data))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.data))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// certifiedProbe releases the probe module and uploads its certificate.
func (cb *certBed) certifiedProbe(t *testing.T, version string, counter uint64, port int) release.Result {
	t.Helper()
	r := cb.b.Release(probeBundle(t, cb.b, version, port), version, counter, "board-a")
	if _, err := cb.b.Admin.PutCertificate(testbed.Ctx(t), r.SHA256, cb.bundle(t, r.SHA256, attest.KindCertificate, attest.VerdictPass)); err != nil {
		t.Fatal(err)
	}
	return r
}

// degradeConfig is an agent configuration enforcing certification; the
// test's temporary directories are made traversable (0711) for the
// unprivileged module, as a device's data directory path must be.
func degradeConfig(t *testing.T, cb *certBed, id string) *agent.Config {
	t.Helper()
	cfg := cb.b.AgentConfig(id, "board-a")
	cfg.CertifierRoot = filepath.Join(cb.fx.Dir, certroot.CurrentRootFile)
	logSrv := httptest.NewServer(cb.fx.Log.Handler())
	t.Cleanup(logSrv.Close)
	cfg.CertifierLogURL = logSrv.URL
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	traversable(t, cfg.DataDir)
	return cfg
}

// traversable makes the directories above dataDir, up to the system's
// temporary directory, searchable (0711) by the unprivileged module.
func traversable(t *testing.T, dataDir string) {
	t.Helper()
	for d := filepath.Dir(dataDir); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDegradedStartOnAnUnreachableSlotIsReported performs a device whose
// data directory lies below a directory the degraded uid cannot search:
// the revoked module is not run unconfined again, and the device reports
// "failed" naming the directory (not an exec failure in a restart loop).
func TestDegradedStartOnAnUnreachableSlotIsReported(t *testing.T) {
	const id = "dev-degrade-4"
	cb := newCertBed(t)
	cfg := degradeConfig(t, cb, id)
	a := cb.b.Agent(cfg)
	cb.push(t, 1)
	r := cb.certified(t, "1.0.0", 1)
	cb.b.Deploy(r.Target, id)
	testbed.CycleInstalls(t, a, r.SHA256, "installing the certified release")
	parent := filepath.Dir(cfg.DataDir)
	if err := os.Chmod(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	cb.push(t, 2, revocation(r.SHA256, "GO-2026-0023"))
	if err := a.CheckRevocations(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	reportSaying(t, cb.b, a, id, "failed", "could not be restarted degraded")
	reportSaying(t, cb.b, a, id, "failed", "directory "+parent+" (mode 700")
	if pid := a.ModulePID(); pid != 0 {
		t.Fatalf("the revoked module runs (pid %d) though it could not be confined", pid)
	}
	if mode, _, _ := a.Mode(); mode != agent.ModeDegraded {
		t.Fatalf("mode %q, want degraded (kept, so that a restart tries the profile again)", mode)
	}
}

// hostListener is a TCP listener on the host's loopback.
func hostListener(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// moduleView waits for the module's "done" marker and returns what it
// recorded.
func moduleView(t *testing.T, cfg *agent.Config) map[string]string {
	t.Helper()
	d := filepath.Join(cfg.DataDir, "module-data")
	testbed.WaitFor(t, 20*time.Second, "the module to record its view", func() bool {
		_, err := os.Stat(filepath.Join(d, "done"))
		return err == nil
	})
	v := map[string]string{}
	for _, f := range []string{"uid", "status", "tcp", "outside", "done"} {
		b, err := os.ReadFile(filepath.Join(d, f))
		if err != nil {
			t.Fatal(err)
		}
		v[f] = strings.TrimSpace(string(b))
	}
	for _, f := range []string{"uid", "status", "tcp", "outside", "done"} {
		os.Remove(filepath.Join(d, f))
	}
	return v
}

func checkDegradedView(t *testing.T, v map[string]string) {
	t.Helper()
	if v["done"] != agent.ModeDegraded || v["uid"] != "65534" {
		t.Fatalf("the module runs in mode %q as uid %q, want degraded as 65534", v["done"], v["uid"])
	}
	for _, want := range []string{"CapEff:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2"} {
		if !strings.Contains(v["status"], want) {
			t.Fatalf("the module's /proc/self/status lacks %q:\n%s", want, v["status"])
		}
	}
	if v["tcp"] != "denied" {
		t.Fatalf("the degraded module's TCP connect to the host loopback: %s, want denied", v["tcp"])
	}
	if v["outside"] != "denied" {
		t.Fatalf("the degraded module's write to /tmp (mode 1777): %s, want denied", v["outside"])
	}
}

// procUID is the real uid of pid.
func procUID(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "Uid:"); ok {
			return strings.Fields(rest)[0]
		}
	}
	t.Fatal("no Uid line")
	return ""
}

// TestRevokedRunningModuleIsRestartedDegraded performs the revocation of
// the artifact a device runs: the newest certifier-signed list revokes
// it; the agent restarts the module under the degraded profile (seen from
// the module: uid 65534, no capabilities, no_new_privs, seccomp filter,
// no TCP connect to a listener on the host's loopback), reports
// "degraded" once, starts it degraded again after an agent restart, and
// runs the certified fix normally again, reporting "recovered". On the
// old code the module kept running unconfined as root.
func TestRevokedRunningModuleIsRestartedDegraded(t *testing.T) {
	const id = "dev-degrade-1"
	cb := newCertBed(t)
	port := hostListener(t)
	cfg := degradeConfig(t, cb, id)
	a := cb.b.Agent(cfg)
	cb.push(t, 1)
	r1 := cb.certifiedProbe(t, "1.0.0", 1, port)
	cb.b.Deploy(r1.Target, id)
	testbed.CycleInstalls(t, a, r1.SHA256, "installing the certified release")
	if mode, _, _ := a.Mode(); mode != agent.ModeNormal || procUID(t, a.ModulePID()) != "0" {
		t.Fatalf("before the revocation: mode %q, module uid %s; want normal, unconfined", mode, procUID(t, a.ModulePID()))
	}

	cb.push(t, 2, revocation(r1.SHA256, "GO-2026-0020"))
	if err := a.CheckRevocations(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	checkDegradedView(t, moduleView(t, cfg))
	if mode, adv, _ := a.Mode(); mode != agent.ModeDegraded || len(adv) != 1 || adv[0] != "GO-2026-0020" {
		t.Fatalf("mode %q advisories %v, want degraded for GO-2026-0020", mode, adv)
	}
	reportSaying(t, cb.b, a, id, "degraded", "degraded: GO-2026-0020")
	checkDegradedLimits(t, a.ModulePID(), id)

	// An agent restart: the revoked artifact starts degraded again, and
	// the list seen again is not reported again.
	a.Close()
	a2 := cb.b.Agent(cfg)
	checkDegradedView(t, moduleView(t, cfg))
	if err := a2.CheckRevocations(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	a2.FlushReports(testbed.Ctx(t))
	if n := countSaying(cb.b, id, "degraded", "GO-2026-0020"); n != 1 {
		t.Fatalf("degraded reported %d times, want once", n)
	}

	// The certified fix: installed and committed, it runs normally.
	r2 := cb.certifiedProbe(t, "1.0.1", 2, port)
	cb.b.Deploy(r2.Target, id)
	testbed.CycleInstalls(t, a2, r2.SHA256, "installing the fix")
	if mode, _, _ := a2.Mode(); mode != agent.ModeNormal {
		t.Fatalf("after the fix: mode %q, want normal", mode)
	}
	if uid := procUID(t, a2.ModulePID()); uid != "0" {
		t.Fatalf("the fix runs as uid %s, want unconfined (no module.profile)", uid)
	}
	reportSaying(t, cb.b, a2, id, "recovered", "GO-2026-0020")
}

// TestServerClaimWithoutSignedListDoesNotDegrade performs a server (or a
// path) that claims the running artifact is revoked without the
// certifier's signature: a list signed with another key and an unsigned
// JSON list. Neither degrades the module; only a verified list does.
func TestServerClaimWithoutSignedListDoesNotDegrade(t *testing.T) {
	const id = "dev-degrade-2"
	cb := newCertBed(t)
	cfg := degradeConfig(t, cb, id)
	a := cb.b.Agent(cfg)
	cb.push(t, 1)
	r := cb.certified(t, "1.0.0", 1)
	cb.b.Deploy(r.Target, id)
	testbed.CycleInstalls(t, a, r.SHA256, "installing the certified release")
	forged, err := attest.SignRevocations(attest.RevocationList{Version: 9, Issued: cb.fx.Now, Expires: cb.fx.Now.Add(time.Hour),
		Entries: []attest.Revocation{revocation(r.SHA256, "GO-2026-0021")}}, cb.fx.Online.Certify)
	if err != nil {
		t.Fatal(err)
	}
	cb.f.set(listPath(id), forged)
	if err := a.CheckRevocations(testbed.Ctx(t)); !errors.Is(err, attest.ErrSignature) {
		t.Fatalf("forged list: %v, want %v", err, attest.ErrSignature)
	}
	cb.f.set(listPath(id), []byte(`{"version":10,"entries":[{"artifact_sha256":"`+r.SHA256+`","advisories":["GO-2026-0021"]}]}`))
	if err := a.CheckRevocations(testbed.Ctx(t)); !errors.Is(err, attest.ErrMalformed) {
		t.Fatalf("unsigned list: %v, want %v", err, attest.ErrMalformed)
	}
	a.FlushReports(testbed.Ctx(t))
	if mode, _, _ := a.Mode(); mode != agent.ModeNormal {
		t.Fatalf("mode %q after unsigned claims, want normal", mode)
	}
	if n := countSaying(cb.b, id, "degraded", ""); n != 0 {
		t.Fatalf("%d degraded reports after unsigned claims", n)
	}
	if uid := procUID(t, a.ModulePID()); uid != "0" {
		t.Fatalf("the module was restarted as uid %s", uid)
	}
}

// TestDegradedOnAKernelLackingAFeatureSaysWhich performs a revocation on a
// kernel whose probe reports a missing layer: the module is still
// restarted degraded with what exists, and the degraded report names the
// missing part.
func TestDegradedOnAKernelLackingAFeatureSaysWhich(t *testing.T) {
	const id = "dev-degrade-3"
	restore := agent.SetProbe(func() sandbox.Features {
		f := sandbox.Probe()
		f.Missing = append(f.Missing, "landlock ABI >= 99 (a layer this test pretends is missing)")
		return f
	})
	t.Cleanup(restore)
	cb := newCertBed(t)
	port := hostListener(t)
	cfg := degradeConfig(t, cb, id)
	a := cb.b.Agent(cfg)
	cb.push(t, 1)
	r := cb.certifiedProbe(t, "1.0.0", 1, port)
	cb.b.Deploy(r.Target, id)
	testbed.CycleInstalls(t, a, r.SHA256, "installing the certified release")
	cb.push(t, 2, revocation(r.SHA256, "GO-2026-0022"))
	if err := a.CheckRevocations(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	checkDegradedView(t, moduleView(t, cfg))
	reportSaying(t, cb.b, a, id, "degraded", "the kernel lacks: ")
	reportSaying(t, cb.b, a, id, "degraded", "landlock ABI >= 99 (a layer this test pretends is missing)")
}

// checkDegradedLimits checks, where the kernel offers the v1 memory, cpu
// and pids controllers (this machine's), that the degraded module runs in
// its own cgroup with the default limits.
func checkDegradedLimits(t *testing.T, pid int, device string) {
	t.Helper()
	f := sandbox.Probe()
	if f.Cgroup != "v1" {
		t.Logf("NOT CHECKED: cgroup limits of the degraded module (the hierarchy is %q; defaults apply to v1 only)", f.Cgroup)
		return
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"memory": "memory.limit_in_bytes", "pids": "pids.max", "cpu": "cpu.cfs_quota_us"}
	values := map[string]string{"memory": strconv.Itoa(agent.DegradedMemoryBytes), "pids": strconv.Itoa(agent.DegradedPids),
		"cpu": strconv.Itoa(agent.DegradedCPUMillis * 100)}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			file, ok := want[c]
			if !ok {
				continue
			}
			if !strings.HasSuffix(parts[2], "/ztota-"+device+"-app-degraded") {
				t.Fatalf("the degraded module's %s cgroup is %s, want its own", c, parts[2])
			}
			v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", c, parts[2], file))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(v)); got != values[c] {
				t.Fatalf("%s %s = %s, want %s", c, file, got, values[c])
			}
			delete(want, c)
		}
	}
	if len(want) > 0 {
		t.Fatalf("the degraded module is in no cgroup of %v: %s", want, data)
	}
}
