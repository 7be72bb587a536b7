package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case HelperArg:
			Main()
		case moduleArg:
			os.Exit(moduleMain(os.Args[2:]))
		case agentArg:
			os.Exit(agentMain(os.Args[2:]))
		}
	}
	os.Exit(m.Run())
}

const nobody = 65534

// env is the test's sandbox set-up: a copy of the test binary that the
// unprivileged module may execute, a data directory owned by the module's
// uid, and a directory outside it that every uid may write (so only the
// sandbox can stop the module writing there).
type env struct {
	bin, data, outside string
	feat               Features
}

func setup(t *testing.T) env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the sandbox helper needs root to drop to another uid; not running as root")
	}
	f := Probe()
	t.Logf("kernel features: %+v", f)
	root, err := os.MkdirTemp("", "ztota-sbx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(root, "module")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	e := env{bin: bin, data: filepath.Join(root, "data"), outside: filepath.Join(root, "outside"), feat: f}
	for _, d := range []string{e.data, e.outside} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(e.data, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	return e
}

func requireFeatures(t *testing.T, f Features, p Profile) {
	t.Helper()
	if f.LandlockABI == 0 {
		t.Skipf("SKIP: kernel lacks Landlock; file-system confinement cannot be shown")
	}
	if f.LandlockABI < 4 {
		t.Skipf("SKIP: kernel Landlock ABI %d < 4 lacks TCP bind/connect rules", f.LandlockABI)
	}
	if !f.Seccomp {
		t.Skipf("SKIP: kernel lacks seccomp filters")
	}
	if p.Network == nil && !f.NetNS {
		t.Skipf("SKIP: kernel lacks network namespaces")
	}
	for _, c := range []string{"memory", "pids"} {
		if !contains(f.Controllers, c) {
			t.Skipf("SKIP: no usable cgroup %s controller (%s hierarchy)", c, f.Cgroup)
		}
	}
}

// runModule runs the test binary as a module under p through Command and
// the re-exec'd helper, and returns what the module observed.
func runModule(t *testing.T, e env, p Profile, spec moduleSpec) moduleResult {
	t.Helper()
	js, _ := json.Marshal(spec)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, err := Command(ctx, e.bin, p, e.data, []string{e.bin, moduleArg, string(js)})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	t.Cleanup(func() {
		if err := RemoveCgroup(p.Limits); err != nil {
			t.Errorf("removing cgroup: %v", err)
		}
	})
	if stderr.Len() > 0 {
		t.Logf("helper/module stderr: %s", stderr.String())
	}
	if err != nil {
		t.Fatalf("module: %v", err)
	}
	var r moduleResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("module output %q: %v", stdout.String(), err)
	}
	return r
}

func listen(t *testing.T) (*net.TCPListener, string) {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.(*net.TCPListener), l.Addr().String()
}

// freePort returns a TCP port on 127.0.0.1 nobody listens on, in [lo, hi].
func freePort(t *testing.T, lo, hi int) int {
	t.Helper()
	for p := lo; p <= hi; p++ {
		l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatalf("no free port in [%d, %d]", lo, hi)
	return 0
}

func expect(t *testing.T, r moduleResult, want map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		got, ok := r.Outcome[k]
		if !ok {
			got, ok = r.Status[k]
		}
		if !ok {
			got = r.Cgroups[k]
		}
		if got != want[k] {
			t.Errorf("%s: got %q, want %q", k, got, want[k])
		} else {
			t.Logf("%s: %s", k, got)
		}
	}
}

func hostInterfaces(t *testing.T) []string {
	b, err := os.ReadFile("/proc/self/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n")[2:] {
		if name, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out = append(out, name)
		}
	}
	return out
}

func cgName(t *testing.T) string {
	return fmt.Sprintf("ztota-sbx-%d-%s", os.Getpid(), strings.ToLower(t.Name()))
}

// TestDegradedProfileConfinesARealModule runs a real module process under
// the degraded profile and performs, from inside it, every escape the
// profile must stop: connecting to a TCP listener on the host's loopback,
// binding a TCP port, writing outside its data directory (into a directory
// every uid may write), creating AF_INET, AF_INET6, AF_NETLINK and
// AF_PACKET sockets, regaining uid 0, opening a user namespace, mounting;
// and reads back its capabilities, no_new_privs, seccomp mode, network
// interfaces and cgroup limits.
func TestDegradedProfileConfinesARealModule(t *testing.T) {
	e := setup(t)
	limits := Limits{Cgroup: cgName(t), MemoryBytes: 64 << 20, Pids: 64, CPUMillis: 500}
	p := Degraded(nobody, nobody, e.data, limits)
	requireFeatures(t, e.feat, p)
	_, addr := listen(t)
	bindAddr := "127.0.0.1:" + strconv.Itoa(freePort(t, 20000, 30000))
	r := runModule(t, e, p, moduleSpec{
		Connect: []string{addr},
		Bind:    []string{bindAddr},
		Write:   []string{filepath.Join(e.data, "state"), filepath.Join(e.outside, "x"), "/tmp/ztota-sbx-escape"},
	})
	if r.UID != nobody || r.GID != nobody {
		t.Errorf("module runs as %d:%d, want %d:%d", r.UID, r.GID, nobody, nobody)
	}
	expect(t, r, map[string]string{
		// seccomp refuses the AF_INET socket before connect or bind can
		// be tried; the fresh network namespace and Landlock's TCP rules
		// stand behind it (shown alone by TestLandlockAloneDeniesTCP).
		"connect " + addr:                         "socket: EPERM",
		"bind " + bindAddr:                        "socket: EPERM",
		"socket AF_INET":                          "EPERM",
		"socket AF_INET6":                         "EPERM",
		"socket AF_NETLINK":                       "EPERM",
		"socket AF_PACKET":                        "EPERM",
		"socket AF_UNIX":                          "ok",
		"write " + filepath.Join(e.data, "state"): "ok",
		// Landlock: the directory is mode 0777, only the sandbox stops it.
		"write " + filepath.Join(e.outside, "x"): "EACCES",
		"write /tmp/ztota-sbx-escape":            "EACCES",
		"setuid 0":                               "EPERM",
		"unshare user":                           "EPERM",
		"mount":                                  "EPERM",
		"CapEff":                                 "0000000000000000",
		"CapPrm":                                 "0000000000000000",
		"CapAmb":                                 "0000000000000000",
		"CapBnd":                                 "0000000000000000",
		"NoNewPrivs":                             "1",
		"Seccomp":                                "2",
		"memory.limit_in_bytes":                  strconv.Itoa(64 << 20),
		"pids.max":                               "64",
		"cpu.cfs_quota_us":                       "50000",
	})
	if !slices.Equal(r.Interfaces, []string{"lo"}) {
		t.Errorf("module sees interfaces %v, want only lo", r.Interfaces)
	}
	for _, c := range []string{"memory", "pids", "cpu"} {
		if !strings.HasSuffix(r.Cgroups[c], "/"+limits.Cgroup) {
			t.Errorf("module's %s cgroup is %q, want the profile's %q", c, r.Cgroups[c], limits.Cgroup)
		}
	}
	if _, err := os.Stat(filepath.Join(e.outside, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file outside the data directory exists after the module ran: %v", err)
	}
}

// TestNormalProfileGrantsWhatItSays runs the same module under a normal
// profile that grants TCP connect to one listener's port, bind on one port
// (a privileged one, with CAP_NET_BIND_SERVICE kept) and a second writable
// directory, and checks the module can do exactly that: the ports and the
// socket families not granted stay closed.
func TestNormalProfileGrantsWhatItSays(t *testing.T) {
	e := setup(t)
	limits := Limits{Cgroup: cgName(t), MemoryBytes: 128 << 20, Pids: 128}
	_, granted := listen(t)
	_, other := listen(t)
	gport, _ := strconv.Atoi(granted[strings.LastIndex(granted, ":")+1:])
	low := freePort(t, 900, 1023)
	lowAddr := "127.0.0.1:" + strconv.Itoa(low)
	otherBind := "127.0.0.1:" + strconv.Itoa(freePort(t, 30001, 40000))
	p := Normal(nobody, nobody, e.data, []string{e.outside}, []string{"CAP_NET_BIND_SERVICE"},
		&Network{ConnectTCP: []uint16{uint16(gport)}, BindTCP: []uint16{uint16(low)}}, limits)
	requireFeatures(t, e.feat, p)
	r := runModule(t, e, p, moduleSpec{
		Connect: []string{granted, other},
		Bind:    []string{lowAddr, otherBind},
		Write:   []string{filepath.Join(e.data, "state"), filepath.Join(e.outside, "x"), "/tmp/ztota-sbx-escape"},
	})
	expect(t, r, map[string]string{
		"connect " + granted:                      "connect: ok",
		"connect " + other:                        "connect: EACCES", // Landlock
		"bind " + lowAddr:                         "bind: ok",
		"bind " + otherBind:                       "bind: EACCES", // Landlock
		"socket AF_INET":                          "ok",
		"socket AF_INET6":                         "ok",
		"socket AF_UNIX":                          "ok",
		"socket AF_NETLINK":                       "EPERM",
		"socket AF_PACKET":                        "EPERM",
		"write " + filepath.Join(e.data, "state"): "ok",
		"write " + filepath.Join(e.outside, "x"):  "ok",
		"write /tmp/ztota-sbx-escape":             "EACCES",
		"setuid 0":                                "EPERM",
		"CapEff":                                  "0000000000000400",
		"CapAmb":                                  "0000000000000400",
		"CapBnd":                                  "0000000000000400",
		"NoNewPrivs":                              "1",
		"Seccomp":                                 "2",
		"memory.limit_in_bytes":                   strconv.Itoa(128 << 20),
		"pids.max":                                "128",
	})
	if host := hostInterfaces(t); !slices.Equal(r.Interfaces, host) {
		t.Errorf("module sees interfaces %v, want the host's %v", r.Interfaces, host)
	}
}

// TestLandlockAloneDeniesTCP grants the network (host namespace, AF_INET
// allowed by seccomp) but no port: Landlock by itself must refuse the
// connect to a live listener and the bind.
func TestLandlockAloneDeniesTCP(t *testing.T) {
	e := setup(t)
	p := Normal(nobody, nobody, e.data, nil, nil, &Network{}, Limits{})
	requireFeatures(t, e.feat, p)
	_, addr := listen(t)
	bindAddr := "127.0.0.1:" + strconv.Itoa(freePort(t, 40001, 50000))
	r := runModule(t, e, p, moduleSpec{Connect: []string{addr}, Bind: []string{bindAddr}})
	expect(t, r, map[string]string{
		"socket AF_INET":   "ok",
		"connect " + addr:  "connect: EACCES",
		"bind " + bindAddr: "bind: EACCES",
		"CapEff":           "0000000000000000",
	})
}

// TestHelperRefusesBadProfileBeforeExec hands the helper a profile asking
// for uid 0; it must refuse it and never start the module.
func TestHelperRefusesBadProfileBeforeExec(t *testing.T) {
	e := setup(t)
	marker := filepath.Join(e.outside, "ran")
	cmd, err := Command(context.Background(), e.bin, Degraded(nobody, nobody, e.data, Limits{}), e.data,
		[]string{"/bin/touch", marker})
	if err != nil {
		t.Fatal(err)
	}
	// Swap the profile on the command line for a root one.
	cmd.Args[2] = `{"uid":0,"gid":0}`
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) || ee.ExitCode() != 126 {
		t.Fatalf("helper with a root profile: %v, want exit status 126", err)
	}
	if !strings.Contains(stderr.String(), "uid and gid must be unprivileged") {
		t.Errorf("helper stderr %q does not name the refusal", stderr.String())
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("module ran despite the refused profile: %v", err)
	}
}

// TestProbeReportsThisKernel records what this machine offers.
func TestProbeReportsThisKernel(t *testing.T) {
	f := Probe()
	b, _ := json.Marshal(f)
	t.Logf("probe: %s", b)
	if f.Cgroup == "" && len(f.Controllers) != 0 {
		t.Errorf("controllers %v without a hierarchy", f.Controllers)
	}
}

// TestHelperRefusesHostNetworkNamespace starts the helper for a profile
// that denies the network without the fresh network namespace Command
// asks for (as a caller bypassing Command would): the helper must refuse
// to start the module rather than run it beside the host's interfaces.
func TestHelperRefusesHostNetworkNamespace(t *testing.T) {
	e := setup(t)
	if host := hostInterfaces(t); slices.Equal(host, []string{"lo"}) {
		t.Skip("SKIP: this host itself has only lo; nothing to tell apart")
	}
	marker := filepath.Join(e.outside, "ran")
	cmd, err := Command(context.Background(), e.bin, Degraded(nobody, nobody, e.data, Limits{}), e.data,
		[]string{"/bin/touch", marker})
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr.Cloneflags = 0
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) || ee.ExitCode() != 126 {
		t.Fatalf("helper in the host namespace: %v, want exit status 126", err)
	}
	if !strings.Contains(stderr.String(), "not started in a fresh network namespace") {
		t.Errorf("helper stderr %q does not name the refusal", stderr.String())
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("module ran in the host network namespace: %v", err)
	}
}

// TestCgroupLimitsHold performs what the limits must stop from inside a
// real module: starting more processes than its pids limit allows (the
// fork fails with EAGAIN) and touching more memory than its memory limit
// (the kernel kills the module).
func TestCgroupLimitsHold(t *testing.T) {
	e := setup(t)
	p := Degraded(nobody, nobody, e.data, Limits{Cgroup: cgName(t) + "-pids", MemoryBytes: 256 << 20, Pids: 24})
	requireFeatures(t, e.feat, p)
	r := runModule(t, e, p, moduleSpec{Spawn: 64})
	expect(t, r, map[string]string{"spawn": "fork: EAGAIN", "pids.max": "24"})

	p.Limits = Limits{Cgroup: cgName(t) + "-mem", MemoryBytes: 32 << 20, Pids: 64}
	js, _ := json.Marshal(moduleSpec{Alloc: 256 << 20})
	cmd, err := Command(context.Background(), e.bin, p, e.data, []string{e.bin, moduleArg, string(js)})
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	err = cmd.Run()
	t.Cleanup(func() {
		if err := RemoveCgroup(p.Limits); err != nil {
			t.Errorf("removing cgroup: %v", err)
		}
	})
	var xe *exec.ExitError
	if !errors.As(err, &xe) || xe.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL || strings.Contains(stdout.String(), "allocated") {
		t.Fatalf("module touching 256 MiB under a 32 MiB limit: %v (stdout %q), want killed", err, stdout.String())
	}
	t.Logf("module touching 256 MiB under a 32 MiB limit: %v", err)
}

// agentArg makes the test binary act as an agent that starts a confined
// module ("sleep") through Command, prints the module's pid and waits.
const agentArg = "__sandbox-test-agent"

func agentMain(args []string) int {
	if len(args) != 2 {
		return 2
	}
	self, data := args[0], args[1]
	cmd, err := Command(context.Background(), self, Degraded(nobody, nobody, data, Limits{}), data, []string{"/bin/sleep", "600"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%d\n", cmd.Process.Pid)
	cmd.Wait()
	return 0
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// TestModuleDiesWithItsAgent kills (SIGKILL) an agent process that
// started a confined module: the module must not outlive it, though the
// helper changed its credentials (which clears the parent-death signal
// the agent set; the helper sets it again).
func TestModuleDiesWithItsAgent(t *testing.T) {
	e := setup(t)
	requireFeatures(t, e.feat, Degraded(nobody, nobody, e.data, Limits{}))
	agent := exec.Command(e.bin, agentArg, e.bin, e.data)
	out, err := agent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil {
		agent.Process.Kill()
		t.Fatalf("reading the module's pid: %v", err)
	}
	// Wait until the helper has exec'd the module (its name is sleep).
	deadline := time.Now().Add(20 * time.Second)
	for {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			agent.Process.Kill()
			t.Fatalf("module %d never became sleep (comm %q)", pid, comm)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := agent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	agent.Wait()
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("module %d outlived its agent", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNetworkNamespaceAloneIsolates grants AF_INET and Landlock connect
// and bind on the port of a live listener in the host's namespace, but
// keeps the module to loopback in a fresh namespace: the connect reaches
// nothing (ECONNREFUSED, the namespace alone stopped it) and the bind on
// that same port succeeds in the module's own namespace.
func TestNetworkNamespaceAloneIsolates(t *testing.T) {
	e := setup(t)
	_, addr := listen(t)
	port, _ := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	p := Normal(nobody, nobody, e.data, nil, nil,
		&Network{LoopbackOnly: true, ConnectTCP: []uint16{uint16(port)}, BindTCP: []uint16{uint16(port)}}, Limits{})
	requireFeatures(t, e.feat, p)
	r := runModule(t, e, p, moduleSpec{Connect: []string{addr}, Bind: []string{addr}})
	expect(t, r, map[string]string{
		"socket AF_INET":  "ok",
		"connect " + addr: "connect: ECONNREFUSED",
		"bind " + addr:    "bind: ok",
	})
	if !slices.Equal(r.Interfaces, []string{"lo"}) {
		t.Errorf("module sees interfaces %v, want only lo", r.Interfaces)
	}
}
