package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, &out, &errb)
	return code, out.String() + errb.String()
}

func TestErrorsTellTheUserWhatToDo(t *testing.T) {
	t.Setenv("ZTOTA_TOKEN", "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"release", "x.tar", "--name", "app"}, "ZTOTA_TOKEN"},
		{[]string{"keys", "init"}, "--out DIR is required"},
		{[]string{"deploy", "app@1", "--token", "t", "--waves", "ten"}, "--waves"},
		{[]string{"no-such-command"}, "unknown command"},
		{[]string{"agent", "--config", "/nonexistent/agent.json"}, "no such file"},
		{[]string{"server"}, "data directory is required"},
		{[]string{"keys", "rotate", "--keys", "/nonexistent", "--repo", "image"}, "no such file"},
		{[]string{"tuf-client", "--metadata-dir"}, ""},
	} {
		code, out := run(t, c.args...)
		if code == 0 {
			t.Errorf("ztota %s: exit 0, want a failure", strings.Join(c.args, " "))
			continue
		}
		if !strings.Contains(out, c.want) {
			t.Errorf("ztota %s: output %q does not mention %q", strings.Join(c.args, " "), out, c.want)
		}
	}
}

func TestKeysInitThenRotate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if code, out := run(t, "keys", "init", "--out", dir, "--alg", "ecdsa-p256", "--root-keys", "2", "--root-threshold", "2"); code != 0 {
		t.Fatalf("keys init: %d %s", code, out)
	}
	if code, out := run(t, "keys", "init", "--out", dir); code == 0 || !strings.Contains(out, "already holds") {
		t.Fatalf("second keys init: %d %s", code, out)
	}
	if code, out := run(t, "keys", "rotate", "--keys", dir, "--repo", "director"); code != 0 {
		t.Fatalf("keys rotate: %d %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "offline", "director-root-current.json")); err != nil {
		t.Fatal(err)
	}
}

// TestClientsRefusePlainHTTPUnlessAllowed performs an operator pointing
// the CLI at a plain http:// server by mistake: the API token would cross
// the network readable. The command refuses before sending anything and
// says how to allow it; with --insecure-http it goes on (and fails only
// because nothing listens there).
func TestClientsRefusePlainHTTPUnlessAllowed(t *testing.T) {
	t.Setenv("ZTOTA_INSECURE_HTTP", "")
	for _, args := range [][]string{
		{"devices", "list", "--server", "http://127.0.0.1:1", "--token", "secret"},
		{"cert", "list", "--certd", "http://127.0.0.1:1"},
	} {
		code, out := run(t, args...)
		if code == 0 || !strings.Contains(out, "plain http") || !strings.Contains(out, "--insecure-http") {
			t.Errorf("ztota %s: %d %q; want a refusal naming --insecure-http", strings.Join(args, " "), code, out)
		}
		code, out = run(t, append(args, "--insecure-http")...)
		if code == 0 || strings.Contains(out, "plain http") {
			t.Errorf("ztota %s --insecure-http: %d %q; want it to try the connection", strings.Join(args, " "), code, out)
		}
	}
}
