package agent_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/sandbox"
)

// TestDegradedProfileInConfigIsValidated performs a configuration whose
// degraded profile would run the module as root, and one whose degraded
// user is root: both are refused at load, the first with
// sandbox.ErrInvalidProfile.
func TestDegradedProfileInConfigIsValidated(t *testing.T) {
	base := func() *agent.Config {
		return &agent.Config{DeviceID: "d", HardwareID: "h", ServerURL: "https://s", DataDir: "/tmp/x",
			ImageRoot: "/i", DirectorRoot: "/d", Module: agent.Module{Name: "m", Command: []string{"bin/m"}}}
	}
	c := base()
	c.Module.Degraded = &sandbox.Profile{UID: 0, GID: 0}
	if err := c.Validate(); !errors.Is(err, sandbox.ErrInvalidProfile) {
		t.Fatalf("root degraded profile: %v, want %v", err, sandbox.ErrInvalidProfile)
	}
	c = base()
	c.Module.DegradedUser = &agent.User{UID: 0, GID: 0}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "module.degraded_user") {
		t.Fatalf("root degraded_user: %v, want a module.degraded_user refusal", err)
	}
	c = base()
	if err := c.Validate(); err != nil || c.SandboxHelper == "" {
		t.Fatalf("defaults: %v, helper %q", err, c.SandboxHelper)
	}
}
