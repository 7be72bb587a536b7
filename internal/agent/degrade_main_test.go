package agent_test

import (
	"os"
	"testing"

	"github.com/ztota/ztota/internal/sandbox"
)

// TestMain lets the test binary act as the sandbox helper: the agent's
// default sandbox_helper is os.Executable(), which is this binary here.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sandbox.HelperArg {
		sandbox.Main()
	}
	os.Exit(m.Run())
}
