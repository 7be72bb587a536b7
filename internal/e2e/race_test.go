package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
// (The agent once recorded ETags with HEAD requests after its refresh and
// so took such a change as already seen; it now keeps the ETags of the
// check-in that started the refresh.)
func TestDeployDuringRefreshIsNotMissed(t *testing.T) {
	needBinary(t)
	var b *testbed.Bed
	var target atomic.Value // release to deploy during the agent's refresh request
	var deployed atomic.Bool
	front := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/director/dev-1/") && strings.HasSuffix(r.URL.Path, ".snapshot.json") {
				if tg, ok := target.Load().(string); ok && deployed.CompareAndSwap(false, true) {
					if _, err := b.Admin.Deploy(r.Context(), server.DeployRequest{Release: tg, Devices: []string{"dev-1"}, FailureThreshold: 1}); err != nil {
						t.Errorf("deploying during the agent's refresh: %v", err)
					}
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	b = testbed.New(t, testbed.Options{Front: front})
	dev := newDevice(t, b, "dev-1")
	dev.enroll(t)
	// The enrolling run may already have refreshed; start from no trusted
	// metadata but the pinned roots, so that this run fetches the director
	// snapshot (the moment the deployment is made) after its timestamp.
	if err := os.RemoveAll(filepath.Join(dev.cfg.DataDir, "tuf")); err != nil {
		t.Fatal(err)
	}
	r := b.Release(b.ScriptBundle("1.0.0", true, 4<<10), "1.0.0", 1, "board-a")
	target.Store(r.Target)
	a := dev.start(t, "")
	testbed.WaitFor(t, 10*time.Second, "the deployment during the refresh", deployed.Load)
	waitLast(t, b, dev.id, 10*time.Second, "committed (50 poll intervals after the deployment)", isReport("committed", r.Target))
	a.stop(10 * time.Second)
}
