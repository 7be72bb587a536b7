package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lineLog collects a process's output as lines, bounded.
type lineLog struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
}

const maxLogLines = 20000

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		if len(l.lines) < maxLogLines {
			l.lines = append(l.lines, string(l.partial[:i]))
		}
		l.partial = l.partial[i+1:]
	}
	if len(l.partial) > 64<<10 {
		l.partial = l.partial[:0]
	}
	return len(p), nil
}

// find returns the submatches of the first line matching re.
func (l *lineLog) find(re *regexp.Regexp) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if m := re.FindStringSubmatch(s); m != nil {
			return m
		}
	}
	return nil
}

func (l *lineLog) tail(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) > n {
		return append([]string(nil), l.lines[len(l.lines)-n:]...)
	}
	return append([]string(nil), l.lines...)
}

// proc is a long-running ztota process (server or agent) in its own
// process group.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	log  *lineLog
	done chan struct{}
	err  error
}

// startProc starts ztota with args; it is killed when the test ends, and
// its last output is logged if the test failed.
func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, log: &lineLog{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- last output of %s (pid %d) ---\n%s", name, p.cmd.Process.Pid, strings.Join(p.log.tail(80), "\n"))
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitLine waits until a line of output matches re and returns its
// submatches; it fails the test if the process exits or d passes first.
func (p *proc) waitLine(re *regexp.Regexp, d time.Duration) []string {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		if m := p.log.find(re); m != nil {
			return m
		}
		if p.exited() {
			p.t.Fatalf("%s exited (%v) before printing a line matching %q", p.name, p.err, re)
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out after %s waiting for %s to print a line matching %q", d, p.name, re)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop asks the process to end (SIGTERM) and waits; past the grace it is
// killed and the test fails.
func (p *proc) stop(grace time.Duration) {
	p.t.Helper()
	if p.exited() {
		p.t.Fatalf("%s had already exited: %v", p.name, p.err)
	}
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
		p.t.Fatalf("%s did not stop within %s of SIGTERM", p.name, grace)
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) {
		p.t.Fatalf("%s: %v", p.name, p.err)
	}
	if p.err != nil {
		p.t.Fatalf("%s exited with %v after SIGTERM; want a clean exit", p.name, p.err)
	}
}

// kill SIGKILLs the process group and the process groups of its children
// (the supervised module runs in its own group), then reaps the process.
// It returns the child groups it killed.
func (p *proc) kill() []int {
	if p.exited() {
		return nil
	}
	kids := childGroups(p.cmd.Process.Pid)
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	for _, g := range kids {
		syscall.Kill(-g, syscall.SIGKILL)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s (pid %d) survived SIGKILL for 10s", p.name, p.cmd.Process.Pid)
	}
	return kids
}

// killAgentOnly SIGKILLs the process group of the agent but not its
// children's own groups, and returns those children (group leaders).
func (p *proc) killAgentOnly() []int {
	p.t.Helper()
	kids := childGroups(p.cmd.Process.Pid)
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s survived SIGKILL for 10s", p.name)
	}
	return kids
}

// childGroups lists the children of pid that lead their own process
// group, read from /proc.
func childGroups(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		_, ppid, pgrp, ok := procStat(n)
		if ok && ppid == pid && pgrp == n {
			out = append(out, n)
		}
	}
	return out
}

// procStat reads state, parent and process group of pid.
func procStat(pid int) (state byte, ppid, pgrp int, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return 0, 0, 0, false
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 3 {
		return 0, 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || len(f[0]) != 1 {
		return 0, 0, 0, false
	}
	return f[0][0], ppid, pgrp, true
}

// alive reports whether pid runs (a zombie counts as dead).
func alive(pid int) bool {
	st, _, _, ok := procStat(pid)
	return ok && st != 'Z' && st != 'X'
}
