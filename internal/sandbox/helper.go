package sandbox

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"github.com/landlock-lsm/go-landlock/landlock"
	"golang.org/x/sys/unix"
)

// Main is the helper's entry point: os.Args is "BINARY HelperArg
// PROFILE-JSON -- MODULE ARGS...". It confines itself in the enforcement
// order (cgroup, loopback, uid/gid and capabilities, no_new_privs,
// Landlock, seccomp) and execs the module. It never returns: on any
// failure it prints the reason on stderr and exits with status 126, and
// the module is not started.
func Main() {
	// Thread-scoped attributes (capabilities, no_new_privs, seccomp) are
	// set on this thread, which is the one that execs the module.
	runtime.LockOSThread()
	err := run(os.Args)
	fmt.Fprintf(os.Stderr, "ztota-sandbox: %v\n", err)
	os.Exit(126)
}

func run(args []string) error {
	if len(args) < 5 || args[1] != HelperArg || args[3] != "--" {
		return errors.New("usage: ztota " + HelperArg + " PROFILE-JSON -- MODULE [ARGS...]")
	}
	p, err := ParseProfile([]byte(args[2]))
	if err != nil {
		return err
	}
	argv := args[4:]
	feat := Probe()
	for _, m := range feat.Missing {
		// Reported, never silent: the agent logs the helper's stderr.
		fmt.Fprintf(os.Stderr, "ztota-sandbox: kernel lacks %s\n", m)
	}
	ppid := os.Getppid()

	// (a) cgroup: limits hold before the module allocates anything.
	if err := setupCgroup(p.Limits); err != nil {
		return err
	}
	// (b) loopback in the fresh network namespace.
	if p.freshNetNS() {
		if err := loopbackUp(); err != nil {
			return err
		}
		if err := onlyLoopback(); err != nil {
			return err
		}
	}
	// (c) identity and capabilities.
	if err := dropPrivileges(p); err != nil {
		return err
	}
	// The parent-death signal is cleared by the credential change.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("pdeathsig: %w", err)
	}
	if os.Getppid() != ppid {
		return errors.New("parent exited")
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	// (d) Landlock.
	if err := applyLandlock(p, feat.LandlockABI); err != nil {
		return err
	}
	// (e) seccomp, last: it forbids syscalls the steps above need.
	if err := applySeccomp(p); err != nil {
		return err
	}
	env := p.Env
	if env == nil {
		env = []string{}
	}
	return fmt.Errorf("exec %s: %w", argv[0], syscall.Exec(argv[0], argv, env))
}

// loopbackUp sets IFF_UP on lo; a fresh network namespace has it down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

// onlyLoopback refuses to go on when the process was not started in a
// fresh network namespace (any interface but lo is visible).
func onlyLoopback() error {
	b, err := os.ReadFile("/proc/self/net/dev")
	if err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 2 {
		return errors.New("network namespace: unreadable /proc/self/net/dev")
	}
	for _, line := range lines[2:] {
		if name, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && name != "lo" {
			return fmt.Errorf("network denied but interface %q is visible: not started in a fresh network namespace", name)
		}
	}
	return nil
}

func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 && n < 64 {
			return n
		}
	}
	return unix.CAP_LAST_CAP
}

// dropPrivileges clears the bounding set of every capability the profile
// does not keep, switches to the profile's uid/gid with no supplementary
// groups, and leaves exactly the kept capabilities (as ambient ones, so
// they survive exec of an unprivileged binary) or none.
func dropPrivileges(p Profile) error {
	keep := map[int]bool{}
	for _, c := range p.Capabilities {
		keep[capByName[c]] = true
	}
	for c := 0; c <= lastCap(); c++ {
		if keep[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if len(keep) > 0 {
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("keepcaps: %w", err)
		}
	}
	if err := syscall.Setgroups([]int{}); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setresgid(int(p.GID), int(p.GID), int(p.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", p.GID, err)
	}
	if err := syscall.Setresuid(int(p.UID), int(p.UID), int(p.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", p.UID, err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	var mask [2]uint32
	for c := range keep {
		mask[c/32] |= 1 << (c % 32)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: mask[0], Permitted: mask[0], Inheritable: mask[0]},
		{Effective: mask[1], Permitted: mask[1], Inheritable: mask[1]},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	for c := range keep {
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			return fmt.Errorf("raise ambient capability %d: %w", c, err)
		}
	}
	return nil
}

// applyLandlock restricts the file system to reading (and executing)
// p.Readable and writing p.Writable, and TCP to the granted ports (none
// when the network is denied). Scoping (ABI >= 6) also cuts abstract UNIX
// sockets and signals to processes outside the sandbox. Parts the kernel
// lacks were reported by run; the rest is enforced.
func applyLandlock(p Profile, abi int) error {
	if abi == 0 {
		return nil
	}
	readable := p.Readable
	if len(readable) == 0 {
		readable = []string{"/"}
	}
	rules := []landlock.Rule{
		landlock.RODirs(readable...),
		landlock.RWFiles("/dev/null", "/dev/zero", "/dev/full").IgnoreIfMissing(),
	}
	if len(p.Writable) > 0 {
		rules = append(rules, landlock.RWDirs(p.Writable...).WithRefer())
	}
	if p.Network != nil {
		for _, port := range p.Network.ConnectTCP {
			rules = append(rules, landlock.ConnectTCP(port))
		}
		for _, port := range p.Network.BindTCP {
			rules = append(rules, landlock.BindTCP(port))
		}
	}
	if err := landlock.V7.BestEffort().Restrict(rules...); err != nil {
		return fmt.Errorf("landlock: %w", err)
	}
	return nil
}

// Socket families the filter leaves usable.
func socketFamilies(p Profile) []uint64 {
	if p.Network == nil {
		return []uint64{unix.AF_UNIX}
	}
	return []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6}
}

// deniedSyscalls fail with EPERM: debugging other processes, mounting,
// loading kernels, modules or BPF programs, joining namespaces, keyrings,
// perf, userfaultfd, io_uring (its operations bypass seccomp), raw I/O
// ports, clock setting, swap and reboot.
var deniedSyscalls = []string{
	"ptrace", "process_vm_readv", "process_vm_writev",
	"mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr",
	"kexec_load", "kexec_file_load", "bpf", "init_module", "finit_module", "delete_module",
	"setns", "keyctl", "add_key", "request_key", "perf_event_open", "userfaultfd",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"iopl", "ioperm", "open_by_handle_at", "swapon", "swapoff", "reboot", "acct",
	"settimeofday", "clock_settime", "adjtimex", "quotactl",
}

func seccompPolicy(p Profile) seccomp.Policy {
	var sockCond seccomp.ArgumentConditions
	for _, fam := range socketFamilies(p) {
		sockCond = append(sockCond, seccomp.Condition{Argument: 0, Operation: seccomp.NotEqual, Value: fam})
	}
	newUser := seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsSet, Value: unix.CLONE_NEWUSER}}
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Names: deniedSyscalls, Action: seccomp.ActionErrno},
			{
				// Any family but the allowed ones; a new user namespace
				// (it would hand the module capabilities inside it).
				NamesWithCondtions: []seccomp.NameWithConditions{
					{Name: "socket", Conditions: sockCond},
					{Name: "unshare", Conditions: newUser},
					{Name: "clone", Conditions: newUser},
				},
				Action: seccomp.ActionErrno,
			},
			// clone3's flags sit in memory the filter cannot read: ENOSYS
			// makes C libraries and runtimes fall back to clone.
			{Names: []string{"clone3"}, Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS)},
		},
	}
}

// denyForeignArch installs a filter that kills the process on any system
// call made through another architecture's entry (on x86-64: the i386
// "int 0x80" path). The policy filter above only inspects native calls and
// lets foreign ones through to its default action, which would let a
// module reach socket() or ptrace under their i386 numbers.
func denyForeignArch() error {
	info, err := arch.GetInfo("")
	if err != nil {
		return err
	}
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4}, // seccomp_data.arch
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, Jf: 0, K: uint32(info.ID)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_KILL_PROCESS},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return e
	}
	return nil
}

func applySeccomp(p Profile) error {
	if !seccomp.Supported() {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if err := denyForeignArch(); err != nil {
		return fmt.Errorf("seccomp (foreign architectures): %w", err)
	}
	if err := seccomp.LoadFilter(seccomp.Filter{NoNewPrivs: true, Policy: seccompPolicy(p)}); err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	return nil
}
