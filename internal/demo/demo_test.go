package demo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/examples/demomodules"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/sandbox"
)

// TestMain lets the test binary act as the sandbox helper, as the ztota
// binary does: a degraded module is started through it.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sandbox.HelperArg {
		sandbox.Main()
		return
	}
	os.Exit(m.Run())
}

// TestDemoRunsTheWholeStory runs what "go run ./cmd/ztota demo" runs and
// checks its outcome: an unhealthy sensor update is rolled back on every
// device; every device running the revoked app 1.0.0 is
// mitigated (on its backup where its release designates one, degraded
// otherwise), the sensor module runs on untouched, one repair request
// names GO-2026-5970, the certified fix is committed on every affected
// device and everything is back to normal.
func TestDemoRunsTheWholeStory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds four module programs and runs a fleet; skipped with -short")
	}
	var out bytes.Buffer
	res, err := RunResult(context.Background(), Options{Devices: 4, Out: &out, Timeout: 4 * time.Minute})
	t.Log("\n" + out.String())
	if errors.Is(err, demomodules.ErrProxy) {
		t.Skipf("SKIPPING: the demo's module programs need golang.org/x/text from the Go module proxy, which is unreachable: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Devices) != 4 {
		t.Fatalf("%d devices in the result, want 4", len(res.Devices))
	}
	var backup, degraded int
	for _, d := range res.Devices {
		switch d.Mitigation {
		case report.ModeBackup:
			backup++
			if !d.HasBackup {
				t.Errorf("%s went to a backup its release does not designate", d.ID)
			}
		case report.ModeDegraded:
			degraded++
			if d.HasBackup {
				t.Errorf("%s degraded although its release designates a backup", d.ID)
			}
		default:
			t.Errorf("%s was not mitigated (%q)", d.ID, d.Mitigation)
		}
		if !d.Recovered || d.Final != res.FixTarget || d.FinalMode != report.ModeNormal {
			t.Errorf("%s: recovered %t, runs %s (%s); want the fix %s in normal mode", d.ID, d.Recovered, d.Final, d.FinalMode, res.FixTarget)
		}
		if len(d.SensorPIDs) != 2 || d.SensorPIDs[0] == 0 || d.SensorPIDs[0] != d.SensorPIDs[1] {
			t.Errorf("%s: sensor pids %v; want one process running throughout", d.ID, d.SensorPIDs)
		}
	}
	if !canDegrade() {
		t.Logf("NOTE: not running as root, so every device got the release with a backup (the agent's degraded mode needs root)")
		if backup != 4 {
			t.Errorf("%d devices on backup, want 4", backup)
		}
	} else if backup != 2 || degraded != 2 {
		t.Errorf("%d devices on backup and %d degraded, want 2 and 2", backup, degraded)
	}
	if res.SensorRolledBack != 4 {
		t.Errorf("the unhealthy sensor rolled back on %d devices, want 4", res.SensorRolledBack)
	}
	if res.FixCommitted != 4 || !res.AllNormal {
		t.Errorf("fix committed on %d devices, all normal %t", res.FixCommitted, res.AllNormal)
	}
	if len(res.Repairs) != 1 || !slices.Equal(res.Repairs[0].Advisories, []string{"GO-2026-5970"}) || res.Repairs[0].Devices != 4 {
		t.Errorf("repair requests %+v; want one naming GO-2026-5970 for 4 devices", res.Repairs)
	}
	if res.MitigationsClosed != 4 || len(res.Repairs) == 1 && res.Repairs[0].State != "closed" {
		t.Errorf("%d mitigations closed, repair requests %+v; want all closed", res.MitigationsClosed, res.Repairs)
	}
	if !res.FixAutomatic || len(res.FixDeployments) != 1 {
		t.Errorf("fix deployed automatically %t, fix deployments on the mitigations %v; want one made by the server", res.FixAutomatic, res.FixDeployments)
	}
	if !slices.Equal(res.Webhooks, []string{"repair.opened", "repair.fix-deployed", "repair.closed"}) {
		t.Errorf("webhooks %v; want repair.opened, repair.fix-deployed, repair.closed, once each", res.Webhooks)
	}
	if res.Mitigations != 4 {
		t.Errorf("%d mitigations recorded, want 4", res.Mitigations)
	}
	if res.ToMitigated <= 0 || res.ToRecovered < res.ToMitigated {
		t.Errorf("times: to mitigated %s, to recovered %s", res.ToMitigated, res.ToRecovered)
	}
	for _, want := range []string{"rolled-back", "health check failed", "GO-2026-5970", "repair request #1", "last device mitigated", "last device recovered"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
