package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bin is the ztota binary built once for the whole package ("" in -short
// mode, where every test skips).
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "ztota-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := 1
	if bin, err = build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the ztota binary:", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles cmd/ztota of the enclosing module into dir.
func build(dir string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module; run the tests from the repository")
	}
	path := filepath.Join(dir, "ztota")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", path, "./cmd/ztota")
	cmd.Dir = filepath.Dir(mod)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, stderr.String())
	}
	return path, nil
}

// needBinary skips the test in -short mode.
func needBinary(t *testing.T) {
	t.Helper()
	if bin == "" {
		t.Skip("end-to-end tests run real processes; skipped with -short")
	}
}

// baseEnv is the test's environment without variables that would change
// how ztota behaves.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ZTOTA_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// ztota runs a short-lived ztota command that must succeed and returns
// its standard output.
func ztota(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, code := ztotaExit(t, args...)
	if code != 0 {
		t.Fatalf("ztota %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// ztotaExit runs a ztota command that may fail and returns its output and
// exit status.
func ztotaExit(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = baseEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	default:
		t.Fatalf("ztota %s: %v", strings.Join(args, " "), err)
		return "", "", -1
	}
}
