package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// BuildTimeout bounds one go build.
const BuildTimeout = 5 * time.Minute

// trivialProgram is the memory reference: a Go program that waits for a
// signal and does nothing else.
const trivialProgram = `package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, os.Interrupt)
	<-c
}
`

// GoBuild runs "go build -o out pkg" in dir, with the go command found
// on PATH.
func GoBuild(ctx context.Context, dir, out, pkg string) error {
	ctx, cancel := context.WithTimeout(ctx, BuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bench: go build %s: %w: %s (is the go command on PATH?)", pkg, err, msg)
	}
	return nil
}

// BuildTrivial writes the trivial reference program into dir (its own
// module) and builds it; it returns the binary's path.
func BuildTrivial(ctx context.Context, dir string) (string, error) {
	src := filepath.Join(dir, "trivial")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module trivial\n\ngo 1.22\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(trivialProgram), 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "trivial.bin")
	return out, GoBuild(ctx, src, out, ".")
}

// Process is a started child whose memory is measured.
type Process struct {
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs name with args, its output appended to logPath.
func Start(ctx context.Context, logPath, name string, args ...string) (*Process, error) {
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting %s: %w", name, err)
	}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// PID is the child's process id.
func (p *Process) PID() int { return p.Cmd.Process.Pid }

// Exited reports whether the child has ended, with its wait error.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM, waits up to grace, then kills. It returns the
// wait error unless the process ended by our signal or exited cleanly.
func (p *Process) Stop(ctx context.Context, grace time.Duration) error {
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("bench: %s did not stop within %s of SIGTERM; killed", p.Cmd.Path, grace)
	case <-ctx.Done():
		p.Cmd.Process.Kill()
		<-p.done
		return ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) && !ee.Exited() {
		return nil // ended by the signal
	}
	return p.err
}
