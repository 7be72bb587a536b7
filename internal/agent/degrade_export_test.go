package agent

import "github.com/ztota/ztota/internal/sandbox"

// SetProbe replaces the kernel feature probe whose missing parts the
// degraded report names; the returned func restores it.
func SetProbe(f func() sandbox.Features) func() {
	old := probe
	probe = f
	return func() { probe = old }
}
