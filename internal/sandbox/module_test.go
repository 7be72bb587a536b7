package sandbox

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// moduleArg makes the test binary act as the confined "module": it tries
// what the spec asks and prints, as JSON, the outcome of every attempt
// ("ok" or the errno name, prefixed by the failing step).
const moduleArg = "__sandbox-test-module"

type moduleSpec struct {
	Connect []string `json:"connect"`
	Bind    []string `json:"bind"`
	Write   []string `json:"write"`
	// Spawn starts that many children that wait on a pipe, and records
	// the errno of the first start that fails.
	Spawn int `json:"spawn"`
	// Alloc touches that many bytes of memory, then reports "allocated".
	Alloc int64 `json:"alloc"`
}

type moduleResult struct {
	Outcome    map[string]string `json:"outcome"`
	Status     map[string]string `json:"status"`
	Interfaces []string          `json:"interfaces"`
	Cgroups    map[string]string `json:"cgroups"`
	UID, GID   int
}

func errnoName(err error) string {
	if err == nil {
		return "ok"
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return unix.ErrnoName(en)
	}
	return err.Error()
}

func tcpAddr(s string) (*unix.SockaddrInet4, error) {
	a, err := net.ResolveTCPAddr("tcp4", s)
	if err != nil {
		return nil, err
	}
	sa := &unix.SockaddrInet4{Port: a.Port}
	copy(sa.Addr[:], a.IP.To4())
	return sa, nil
}

// tcpAttempt opens an AF_INET stream socket and connects or binds it.
func tcpAttempt(addr string, bind bool) string {
	sa, err := tcpAddr(addr)
	if err != nil {
		return err.Error()
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "socket: " + errnoName(err)
	}
	defer unix.Close(fd)
	if bind {
		return "bind: " + errnoName(unix.Bind(fd, sa))
	}
	return "connect: " + errnoName(unix.Connect(fd, sa))
}

func moduleMain(args []string) int {
	var spec moduleSpec
	if len(args) != 1 || json.Unmarshal([]byte(args[0]), &spec) != nil {
		fmt.Fprintln(os.Stderr, "module: bad spec")
		return 2
	}
	r := moduleResult{Outcome: map[string]string{}, Status: map[string]string{}, Cgroups: map[string]string{}}
	r.UID, r.GID = os.Getuid(), os.Getgid()
	for _, a := range spec.Connect {
		r.Outcome["connect "+a] = tcpAttempt(a, false)
	}
	for _, a := range spec.Bind {
		r.Outcome["bind "+a] = tcpAttempt(a, true)
	}
	for _, p := range spec.Write {
		r.Outcome["write "+p] = errnoName(errors.Unwrap(os.WriteFile(p, []byte("x"), 0o644)))
	}
	for name, fam := range map[string]int{"AF_UNIX": unix.AF_UNIX, "AF_INET": unix.AF_INET, "AF_INET6": unix.AF_INET6, "AF_NETLINK": unix.AF_NETLINK, "AF_PACKET": unix.AF_PACKET} {
		typ := unix.SOCK_DGRAM
		if fam == unix.AF_PACKET {
			typ = unix.SOCK_RAW
		}
		fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
		}
		r.Outcome["socket "+name] = errnoName(err)
	}
	// setuid(0) on this thread only, as a raw system call.
	if _, _, e := unix.RawSyscall(unix.SYS_SETUID, 0, 0, 0); e != 0 {
		r.Outcome["setuid 0"] = errnoName(e)
	} else {
		r.Outcome["setuid 0"] = "ok"
	}
	if spec.Spawn > 0 {
		r.Outcome["spawn"] = spawn(spec.Spawn)
	}
	if spec.Alloc > 0 {
		buf := make([]byte, spec.Alloc)
		for i := 0; i < len(buf); i += 4096 {
			buf[i] = 1
		}
		r.Outcome["alloc"] = "allocated"
	}
	r.Outcome["unshare user"] = errnoName(unix.Unshare(unix.CLONE_NEWUSER))
	r.Outcome["mount"] = errnoName(unix.Mount("none", "/mnt", "tmpfs", 0, ""))
	if f, err := os.Open("/proc/self/status"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			k, v, ok := strings.Cut(s.Text(), ":")
			if ok {
				r.Status[k] = strings.TrimSpace(v)
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/self/net/dev"); err == nil {
		for _, line := range strings.Split(string(b), "\n")[2:] {
			if name, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
				r.Interfaces = append(r.Interfaces, name)
			}
		}
	}
	if own, err := ownCgroups(); err == nil {
		for c, file := range map[string]string{"memory": "memory.limit_in_bytes", "pids": "pids.max", "cpu": "cpu.cfs_quota_us"} {
			r.Cgroups[c] = own[c]
			if b, err := os.ReadFile(filepath.Join(cgroupRoot, c, own[c], file)); err == nil {
				r.Cgroups[file] = strings.TrimSpace(string(b))
			}
		}
	}
	out, _ := json.Marshal(r)
	os.Stdout.Write(out)
	return 0
}

// spawn forks n children blocked on a pipe; it returns "ok" or the errno
// of the first fork that failed, then releases the children.
func spawn(n int) string {
	rd, wr, err := os.Pipe()
	if err != nil {
		return err.Error()
	}
	defer rd.Close()
	var procs []*os.Process
	out := "ok"
	for i := 0; i < n; i++ {
		p, err := os.StartProcess("/bin/cat", []string{"cat"}, &os.ProcAttr{Files: []*os.File{rd, nil, nil}})
		if err != nil {
			out = "fork: " + errnoName(errors.Unwrap(err))
			break
		}
		procs = append(procs, p)
	}
	wr.Close()
	for _, p := range procs {
		p.Wait()
	}
	return out
}
