package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/sandbox"
)

// confine is how a module is confined: a profile, nil for none, and the
// sandbox helper executable.
type confine struct {
	profile *sandbox.Profile
	helper  string
	stale   bool // degraded by the stale list policy
}

// process is a running module.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startModule starts the module from a slot directory, in its own process
// group, with output appended to logPath and exactly the environment env
// (see moduleEnv). With a profile (conf set) the module is started through
// the sandbox helper conf.helper, which confines itself by the profile and
// execs the module; the profile's cgroup is removed once it exited.
func startModule(dir string, m Module, logPath string, env []string, conf ...confine) (*process, error) {
	if len(m.Command) == 0 {
		return nil, errors.New("module has no command")
	}
	bin := m.Command[0]
	if !filepath.IsLocal(bin) {
		return nil, fmt.Errorf("module command %q must be a path inside the slot", bin)
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	var limits *sandbox.Limits
	if len(conf) > 0 && conf[0].profile != nil {
		p := *conf[0].profile
		p.Env = append(append([]string(nil), env...), p.Env...)
		argv := append([]string{filepath.Join(dir, bin)}, m.Command[1:]...)
		if err := searchable(filepath.Dir(argv[0]), p.UID, p.GID); err != nil {
			logf.Close()
			return nil, fmt.Errorf("starting module %s confined: %w", bin, err)
		}
		cmd, err = sandbox.Command(context.Background(), conf[0].helper, p, dir, argv)
		if err != nil {
			logf.Close()
			return nil, fmt.Errorf("starting module %s confined: %w", bin, err)
		}
		limits = &p.Limits
	} else {
		cmd = exec.Command(filepath.Join(dir, bin), m.Command[1:]...)
		cmd.Dir = dir
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting module %s: %w", bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		if limits != nil {
			sandbox.RemoveCgroup(*limits)
		}
		close(p.done)
	}()
	return p, nil
}

// exited is closed when the process ends.
func (p *process) exited() <-chan struct{} { return p.done }

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *process) stop(grace time.Duration) {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// healthCheck waits StayUp with the process alive, then runs the health
// command (if any) in dir with the environment env. It returns why the
// module is not healthy. The command runs in its own process group, which
// is killed when the command ends or its timeout passes, so that nothing
// it started outlives it.
func healthCheck(ctx context.Context, p *process, dir string, h Health, env []string, outPath string) error {
	select {
	case <-p.exited():
		return fmt.Errorf("module exited during the health check (%v)", p.err)
	case <-time.After(time.Duration(h.StayUp)):
	case <-ctx.Done():
		return ctx.Err()
	}
	if len(h.Command) > 0 {
		if err := runHealthCommand(ctx, dir, h, env, outPath); err != nil {
			return err
		}
	}
	select {
	case <-p.exited():
		return fmt.Errorf("module exited during the health check (%v)", p.err)
	default:
	}
	return nil
}

// maxHealthOutput bounds what is kept of a health command's output.
const maxHealthOutput = 64 << 10

func runHealthCommand(ctx context.Context, dir string, h Health, env []string, outPath string) error {
	cctx, cancel := context.WithTimeout(ctx, time.Duration(h.Timeout))
	defer cancel()
	bin := h.Command[0]
	if filepath.IsLocal(bin) && strings.Contains(bin, "/") {
		bin = filepath.Join(dir, bin)
	}
	// Output goes to a file, not a pipe: a background child holding a
	// pipe open would keep Wait waiting.
	out, err := os.OpenFile(outPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("health command: %w", err)
	}
	defer out.Close()
	cmd := exec.CommandContext(cctx, bin, h.Command[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Start()
	if err == nil {
		err = cmd.Wait()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever it left behind
	}
	if err != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("timed out after %s (%v)", time.Duration(h.Timeout), err)
		}
		buf := make([]byte, maxHealthOutput)
		n, _ := out.ReadAt(buf, 0)
		msg := report.Clean(strings.TrimSpace(string(buf[:n])), 1024, true)
		return fmt.Errorf("health command failed: %v: %s", err, msg)
	}
	return nil
}

// ErrNotSearchable: a directory on the way to the module's command cannot
// be searched by the uid/gid of its profile, so the confined module could
// not be executed.
var ErrNotSearchable = errors.New("not searchable by the module's uid/gid")

// searchable checks that uid/gid may search every directory from / down to
// dir (the execute bit of owner, group or others, as it applies), so that
// a confined start fails with a clear reason instead of an exec error in
// the helper (exit 126) that would repeat on every restart.
func searchable(dir string, uid, gid uint32) error {
	for d := dir; ; d = filepath.Dir(d) {
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		bit := uint32(0o001)
		switch {
		case st.Uid == uid:
			bit = 0o100
		case st.Gid == gid:
			bit = 0o010
		}
		if st.Mode&bit == 0 {
			return fmt.Errorf("directory %s (mode %o, owner %d:%d) is %w %d:%d", d, st.Mode&0o777, st.Uid, st.Gid, ErrNotSearchable, uid, gid)
		}
		if d == "/" || d == "." {
			return nil
		}
	}
}
