package e2e

import (
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/testbed"
)

// TestDeployDuringRefreshIsNotMissed publishes a deployment at the worst
// instant: after the agent's refresh read the director metadata and before
// the agent records the director timestamp's ETag. The agent must still
// install the release.
//
// KNOWN BUG, so the test runs only with ZTOTA_E2E_KNOWN_BUGS=1: the agent
// (internal/agent/update.go, Cycle calling rememberETags after Refresh)
// takes the ETags it compares against with fresh HEAD requests after the
// refresh, so a change published during the refresh is recorded as seen
// and never fetched until some later change.
func TestDeployDuringRefreshIsNotMissed(t *testing.T) {
	needBinary(t)
	if os.Getenv("ZTOTA_E2E_KNOWN_BUGS") == "" {
		t.Skip("KNOWN BUG: the agent misses a deployment made during its refresh (internal/agent/update.go rememberETags); set ZTOTA_E2E_KNOWN_BUGS=1 to run")
	}
	var b *testbed.Bed
	var target atomic.Value // release to deploy from within the agent's HEAD request
	var deployed atomic.Bool
	front := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodHead && r.URL.Path == "/director/dev-1/timestamp.json" {
				if tg, ok := target.Load().(string); ok && deployed.CompareAndSwap(false, true) {
					if _, err := b.Admin.Deploy(r.Context(), server.DeployRequest{Release: tg, Devices: []string{"dev-1"}, FailureThreshold: 1}); err != nil {
						t.Errorf("deploying from within the agent's HEAD: %v", err)
					}
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	b = testbed.New(t, testbed.Options{Front: front})
	dev := newDevice(t, b, "dev-1")
	dev.enroll(t)
	r := b.Release(b.ScriptBundle("1.0.0", true, 4<<10), "1.0.0", 1, "board-a")
	target.Store(r.Target)
	a := dev.start(t, "")
	testbed.WaitFor(t, 10*time.Second, "the deployment during the refresh", deployed.Load)
	waitLast(t, b, dev.id, 10*time.Second, "committed (50 poll intervals after the deployment)", isReport("committed", r.Target))
	a.stop(10 * time.Second)
}
