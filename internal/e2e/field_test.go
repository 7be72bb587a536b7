package e2e

import (
	"testing"
	"time"
)

// TestSIGTERMMidDownloadThenRestartInstalls performs a SIGTERM of a real
// agent process in the middle of a download (an operator or init stops the
// service). The agent neither refuses the release nor reports a failure;
// it keeps the partial download, and the restarted agent resumes it and
// installs the release (before, the cancellation was taken as a final
// verdict: the release was refused for good and redeploying it did
// nothing).
func TestSIGTERMMidDownloadThenRestartInstalls(t *testing.T) {
	m := startMidDownload(t)
	arts, b, dev, r, a := m.arts, m.b, m.dev, m.r, m.a
	a.stop(10 * time.Second)
	m.held(t, "stopped")
	for _, rep := range b.History(dev.id) {
		if rep.State == "refused" || rep.State == "failed" {
			t.Fatalf("SIGTERM was reported as %s: %q", rep.State, rep.Detail)
		}
	}

	arts.throttle.Store(false)
	a = dev.start(t, "")
	waitLast(t, b, dev.id, 30*time.Second, "committed", isReport("committed", r.Target))
	a.stop(10 * time.Second)
	checkSlots(t, dev.cfg.DataDir, r.SHA256)
	wantInstalled(t, b, dev.id, r.Target)
	reqs := arts.requests(r.SHA256)
	if len(reqs) < 2 || reqs[len(reqs)-1].rng == "" {
		t.Fatalf("artifact requests %+v; want the restarted agent to resume with a Range request", reqs)
	}
}
