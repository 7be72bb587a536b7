package sandbox

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"

	seccomp "github.com/elastic/go-seccomp-bpf"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// Features reports what the running kernel offers each layer.
type Features struct {
	// LandlockABI is the kernel's Landlock ABI version, 0 without Landlock.
	// File-system rules need 1, TCP bind/connect rules 4, scoping 6.
	LandlockABI int `json:"landlock_abi"`
	// Seccomp is true when seccomp filters can be installed.
	Seccomp bool `json:"seccomp"`
	// NetNS is true when network namespaces exist.
	NetNS bool `json:"netns"`
	// Cgroup is "v2" (unified hierarchy at /sys/fs/cgroup), "v1" (legacy
	// controllers) or "" (none mounted).
	Cgroup string `json:"cgroup"`
	// Controllers are the memory, cpu and pids controllers usable for
	// limits in that hierarchy.
	Controllers []string `json:"controllers"`
	// Missing names, in words, every layer or part the kernel lacks.
	Missing []string `json:"missing,omitempty"`
}

const cgroupRoot = "/sys/fs/cgroup"

// Probe reports which kernel features the sandbox can use here.
func Probe() Features {
	var f Features
	if v, err := llsys.LandlockGetABIVersion(); err == nil {
		f.LandlockABI = v
	}
	f.Seccomp = seccomp.Supported()
	if _, err := os.Stat("/proc/self/ns/net"); err == nil {
		f.NetNS = true
	}
	f.Cgroup, f.Controllers = cgroupControllers()
	switch {
	case f.LandlockABI == 0:
		f.Missing = append(f.Missing, "landlock (file-system and TCP rules)")
	default:
		for _, need := range []struct {
			abi  int
			what string
		}{
			{2, "landlock ABI >= 2 (refer: cross-directory renames and links stay denied)"},
			{3, "landlock ABI >= 3 (truncate rules: truncating readable files is not denied)"},
			{4, "landlock ABI >= 4 (TCP bind/connect rules)"},
			{5, "landlock ABI >= 5 (device ioctl rules)"},
			{6, "landlock ABI >= 6 (scoping of abstract UNIX sockets and signals)"},
		} {
			if f.LandlockABI < need.abi {
				f.Missing = append(f.Missing, need.what)
			}
		}
	}
	if !f.Seccomp {
		f.Missing = append(f.Missing, "seccomp filters")
	}
	if !f.NetNS {
		f.Missing = append(f.Missing, "network namespaces")
	}
	for _, c := range []string{"memory", "cpu", "pids"} {
		if !contains(f.Controllers, c) {
			f.Missing = append(f.Missing, "cgroup controller "+c)
		}
	}
	return f
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// cgroupControllers finds the hierarchy to use: the unified one when it is
// mounted at /sys/fs/cgroup itself, else the v1 controllers mounted under
// /sys/fs/cgroup/<controller>.
func cgroupControllers() (string, []string) {
	if b, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		var out []string
		for _, c := range strings.Fields(string(b)) {
			if c == "memory" || c == "cpu" || c == "pids" {
				out = append(out, c)
			}
		}
		return "v2", out
	}
	var out []string
	for _, c := range []string{"memory", "cpu", "pids"} {
		if mountedV1(c) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "", nil
	}
	return "v1", out
}

// mountedV1 reports whether controller c is mounted as a v1 hierarchy at
// /sys/fs/cgroup/c.
func mountedV1(c string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 64<<10)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || len(fields) < sep+4 || len(fields) < 5 {
			continue
		}
		if fields[sep+1] != "cgroup" || fields[4] != filepath.Join(cgroupRoot, c) {
			continue
		}
		for _, o := range strings.Split(fields[sep+3], ",") {
			if o == c {
				return true
			}
		}
	}
	return false
}
