package e2e

import (
	"reflect"

	"github.com/ztota/ztota/internal/agent"
)

// agentHasModules reports whether this tree's agent supervises several
// modules (agent.Config has "modules").
func agentHasModules() bool {
	_, ok := reflect.TypeOf(agent.Config{}).FieldByName("Modules")
	return ok
}

// agentSwitchesToBackup reports whether this tree's agent switches a
// revoked release to its designated backup (it arrives with the several
// modules agent).
func agentSwitchesToBackup() bool { return agentHasModules() }
