package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/testbed"
)

// TestSIGTERMMidDownloadThenRestartInstalls performs a SIGTERM of a real
// agent process in the middle of a download (an operator or init stops the
// service). The agent neither refuses the release nor reports a failure;
// it keeps the partial download, and the restarted agent resumes it and
// installs the release (before, the cancellation was taken as a final
// verdict: the release was refused for good and redeploying it did
// nothing).
func TestSIGTERMMidDownloadThenRestartInstalls(t *testing.T) {
	needBinary(t)
	var arts artifactLog
	arts.throttle.Store(true)
	b := testbed.New(t, testbed.Options{Front: arts.front})
	dev := newDevice(t, b, "dev-1")
	dev.enroll(t)
	r := b.Release(b.ScriptBundle("1.0.0", true, 3<<20), "1.0.0", 1, "board-a")
	b.Deploy(r.Target, dev.id)
	a := dev.start(t, "")

	partial := filepath.Join(dev.cfg.DataDir, "download", r.SHA256)
	testbed.WaitFor(t, 30*time.Second, "part of the artifact on disk", func() bool {
		fi, err := os.Stat(partial)
		return err == nil && fi.Size() >= 64<<10
	})
	a.stop(10 * time.Second)
	fi, err := os.Stat(partial)
	if err != nil {
		t.Fatalf("the partial download is gone after SIGTERM: %v", err)
	}
	if fi.Size() <= 0 || fi.Size() >= r.Length {
		t.Fatalf("the agent held %d of %d bytes when stopped; want a partial download", fi.Size(), r.Length)
	}
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
