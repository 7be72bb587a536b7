package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupDirs returns, per controller to use, the directory of the
// profile's cgroup: below the calling process's own cgroup in that
// hierarchy. The agent and the helper it starts compute the same paths.
func cgroupDirs(name string) (map[string]string, error) {
	version, ctrls := cgroupControllers()
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	dirs := map[string]string{}
	switch version {
	case "v2":
		base, ok := own[""]
		if !ok {
			return nil, errors.New("sandbox: no cgroup v2 entry in /proc/self/cgroup")
		}
		d := filepath.Join(cgroupRoot, base, name)
		for _, c := range ctrls {
			dirs[c] = d
		}
	case "v1":
		for _, c := range ctrls {
			base, ok := own[c]
			if !ok {
				continue
			}
			dirs[c] = filepath.Join(cgroupRoot, c, base, name)
		}
	}
	return dirs, nil
}

// ownCgroups maps each controller (and "" for the unified hierarchy) to
// this process's cgroup path.
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, s.Err()
}

// setupCgroup creates the profile's cgroup, writes its limits and moves
// the calling process into it. Every requested limit must be applied.
func setupCgroup(l Limits) error {
	if l.Cgroup == "" {
		return nil
	}
	version, _ := cgroupControllers()
	dirs, err := cgroupDirs(l.Cgroup)
	if err != nil {
		return err
	}
	need := map[string]bool{"memory": l.MemoryBytes > 0, "cpu": l.CPUMillis > 0, "pids": l.Pids > 0}
	for c, n := range need {
		if n && dirs[c] == "" {
			return fmt.Errorf("sandbox: %s limit requested but no %s cgroup controller is usable", c, c)
		}
	}
	if version == "v2" {
		return setupV2(dirs, l)
	}
	pid := strconv.Itoa(os.Getpid())
	for c, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("sandbox: cgroup: %w", err)
		}
		var files [][2]string
		switch c {
		case "memory":
			if l.MemoryBytes > 0 {
				files = append(files, [2]string{"memory.limit_in_bytes", strconv.FormatInt(l.MemoryBytes, 10)})
			}
		case "cpu":
			if l.CPUMillis > 0 {
				files = append(files, [2]string{"cpu.cfs_period_us", "100000"},
					[2]string{"cpu.cfs_quota_us", strconv.FormatInt(l.CPUMillis*100, 10)})
			}
		case "pids":
			if l.Pids > 0 {
				files = append(files, [2]string{"pids.max", strconv.FormatInt(l.Pids, 10)})
			}
		}
		files = append(files, [2]string{"cgroup.procs", pid})
		for _, fv := range files {
			if err := os.WriteFile(filepath.Join(d, fv[0]), []byte(fv[1]), 0); err != nil {
				return fmt.Errorf("sandbox: cgroup %s: %w", c, err)
			}
		}
	}
	return nil
}

func setupV2(dirs map[string]string, l Limits) error {
	var d string
	for _, x := range dirs {
		d = x
	}
	if d == "" {
		return nil
	}
	parent := filepath.Dir(d)
	var enable []string
	for c := range dirs {
		enable = append(enable, "+"+c)
	}
	if err := os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte(strings.Join(enable, " ")), 0); err != nil {
		return fmt.Errorf("sandbox: cgroup v2: enabling %v in %s: %w", enable, parent, err)
	}
	if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("sandbox: cgroup: %w", err)
	}
	files := [][2]string{}
	if l.MemoryBytes > 0 {
		files = append(files, [2]string{"memory.max", strconv.FormatInt(l.MemoryBytes, 10)})
	}
	if l.CPUMillis > 0 {
		files = append(files, [2]string{"cpu.max", strconv.FormatInt(l.CPUMillis*100, 10) + " 100000"})
	}
	if l.Pids > 0 {
		files = append(files, [2]string{"pids.max", strconv.FormatInt(l.Pids, 10)})
	}
	files = append(files, [2]string{"cgroup.procs", strconv.Itoa(os.Getpid())})
	for _, fv := range files {
		if err := os.WriteFile(filepath.Join(d, fv[0]), []byte(fv[1]), 0); err != nil {
			return fmt.Errorf("sandbox: cgroup v2 %s: %w", fv[0], err)
		}
	}
	return nil
}

// RemoveCgroup removes the (empty) cgroup a profile's module ran in; the
// agent calls it after the module has exited.
func RemoveCgroup(l Limits) error {
	if l.Cgroup == "" {
		return nil
	}
	dirs, err := cgroupDirs(l.Cgroup)
	if err != nil {
		return err
	}
	var errs []error
	seen := map[string]bool{}
	for _, d := range dirs {
		if seen[d] {
			continue
		}
		seen[d] = true
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
