package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
)

// ErrNotAbsolute is returned by Command for a helper or module path that
// is not absolute: the agent never looks either up in a search path.
var ErrNotAbsolute = errors.New("sandbox: path is not absolute")

// Command returns the command that runs argv confined by p: self (the
// device binary, which calls Main under HelperArg) is started as the
// helper, in a fresh network namespace when p denies the network or keeps
// it to loopback, in its
// own process group, killed if the agent dies. dir, when set, overrides
// p.Dir. The helper starts with the agent's privileges (it needs them to
// join the cgroup and bring loopback up) and drops them before exec; the
// module itself never runs with them. After the command has exited the
// caller removes the cgroup with RemoveCgroup(p.Limits).
func Command(ctx context.Context, self string, p Profile, dir string, argv []string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, errors.New("sandbox: no module command")
	}
	if dir != "" {
		p.Dir = dir
	}
	if p.Dir == "" {
		return nil, fmt.Errorf("%w: no working directory", ErrInvalidProfile)
	}
	if !filepath.IsAbs(self) {
		return nil, fmt.Errorf("%w: helper %q", ErrNotAbsolute, self)
	}
	bin := argv[0]
	if !filepath.IsAbs(bin) {
		return nil, fmt.Errorf("%w: module %q", ErrNotAbsolute, bin)
	}
	js, err := p.Marshal()
	if err != nil {
		return nil, err
	}
	args := append([]string{HelperArg, string(js), "--"}, argv...)
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Dir = p.Dir
	cmd.Env = []string{}
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if p.freshNetNS() {
		attr.Cloneflags = syscall.CLONE_NEWNET
	}
	cmd.SysProcAttr = attr
	return cmd, nil
}
