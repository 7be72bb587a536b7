package cli

import (
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
)

// TestTokenAndDeviceRevocationCommands runs 'ztota token create --ttl',
// 'token list', 'token revoke' and 'devices revoke' against a real server:
// the list never prints a secret, a revoked token is refused by the next
// command with a message that says so, and a revoked device is shown as
// decommissioned.
func TestTokenAndDeviceRevocationCommands(t *testing.T) {
	b := testbed.New(t, testbed.Options{})
	admin := []string{"--server", b.URL, "--insecure-http", "--token", b.Admin.Token}
	code, out := run(t, append([]string{"token", "create", "--scope", "viewer", "--name", "ci", "--ttl", "48h"}, admin...)...)
	if code != 0 {
		t.Fatalf("token create: %d %s", code, out)
	}
	secret := strings.Fields(out)[0]
	id := store.TokenID(secret)
	if !strings.Contains(out, "token "+id+" (viewer) expires ") {
		t.Fatalf("token create output %q", out)
	}
	code, out = run(t, append([]string{"token", "list"}, admin...)...)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "ci") || !strings.Contains(out, "never") {
		t.Fatalf("token list: %d %s", code, out)
	}
	if strings.Contains(out, secret) || strings.Contains(out, b.Admin.Token) {
		t.Fatalf("token list prints a secret:\n%s", out)
	}
	if code, out := run(t, "devices", "list", "--server", b.URL, "--insecure-http", "--token", secret); code != 0 {
		t.Fatalf("viewer token before revocation: %d %s", code, out)
	}
	if code, out := run(t, append([]string{"token", "revoke", id}, admin...)...); code != 0 || !strings.Contains(out, "revoked at") {
		t.Fatalf("token revoke: %d %s", code, out)
	}
	if code, out := run(t, "devices", "list", "--server", b.URL, "--insecure-http", "--token", secret); code == 0 || !strings.Contains(out, "401") || !strings.Contains(out, "revoked") {
		t.Fatalf("revoked token: %d %s", code, out)
	}

	ag, err := agent.New(testbed.Ctx(t), b.AgentConfig("dev-1", "hw1"), b.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer ag.Close()
	if err := ag.Enroll(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if code, out := run(t, append([]string{"devices", "revoke", "dev-1"}, admin...)...); code != 0 || !strings.Contains(out, "device dev-1 decommissioned at") {
		t.Fatalf("devices revoke: %d %s", code, out)
	}
	if code, out := run(t, append([]string{"devices", "list"}, admin...)...); code != 0 || !strings.Contains(out, "decommissioned") {
		t.Fatalf("devices list after the revocation: %d %s", code, out)
	}
	if code, out := run(t, append([]string{"devices", "revoke", "dev-9"}, admin...)...); code == 0 || !strings.Contains(out, "404") {
		t.Fatalf("revoking an unknown device: %d %s", code, out)
	}
}
