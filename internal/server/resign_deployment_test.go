package server_test

import (
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tufrepo"
)

// TestResigningKeepsTheDirectorAssignment: when director targets are
// re-signed before they expire, the device keeps its assigned release and
// the deployment it belongs to.
func TestResigningKeepsTheDirectorAssignment(t *testing.T) {
	b := testbed.New(t, testbed.Options{Server: func(c *server.Config) { c.DirectorTargetTTL = 4 * time.Second }})
	b.Agent(b.AgentConfig("dev-1", "board-a")).Stop()
	r := b.Release(b.ScriptBundle("1.0.0", true, 64), "1.0.0", 1, "board-a")
	dep := b.Deploy(r.Target, "dev-1")
	ctx := testbed.Ctx(t)
	first, err := b.Server.Store().LatestMeta(ctx, "director/dev-1", tufrepo.Targets)
	if err != nil {
		t.Fatal(err)
	}
	testbed.WaitFor(t, 15*time.Second, "director targets re-signed", func() bool {
		m, err := b.Server.Store().LatestMeta(ctx, "director/dev-1", tufrepo.Targets)
		return err == nil && m.Version > first.Version
	})
	m, _ := b.Server.Store().LatestMeta(ctx, "director/dev-1", tufrepo.Targets)
	tg, err := tufrepo.Parse[metadata.TargetsType](m.Data)
	if err != nil {
		t.Fatal(err)
	}
	tf, ok := tg.Signed.Targets[r.Target]
	if !ok {
		t.Fatalf("re-signed director targets lost the assignment: %v", tg.Signed.Targets)
	}
	dm, err := tufrepo.ParseDirectorMeta(tf)
	if err != nil {
		t.Fatal(err)
	}
	if dm.Deployment != dep.ID || dm.DeviceID != "dev-1" {
		t.Fatalf("re-signed director target says deployment %q device %q, want %q dev-1", dm.Deployment, dm.DeviceID, dep.ID)
	}
}
