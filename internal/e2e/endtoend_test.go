package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/store"
)

// fullInstall is what a device reports for a release that installs.
var fullInstall = []string{"downloading", "verifying", "installing", "restarting", "health-checking", "committed"}

// failedTrial is what a device reports for a release whose module fails
// its health check.
var failedTrial = []string{"downloading", "verifying", "installing", "restarting", "health-checking", "rolled-back"}

// TestEndToEndRealProcesses runs the whole story with nothing in process:
// keys, a server, two agents and the operator commands are all the ztota
// binary. A healthy v1 commits on both devices; an unhealthy v2 rolls back
// on both, which keep running v1.
func TestEndToEndRealProcesses(t *testing.T) {
	s := startStack(t, false)
	keysDir, api := s.keys, s.api

	devs := []string{"dev-1", "dev-2"}
	var agents []*proc
	for _, id := range devs {
		agents = append(agents, s.startAgent(t, s.agentConfig(t, id, s.url)))
	}

	// Both agents enroll (they start with no state, so the list shows them
	// with an empty state and nothing installed).
	waitDevices(t, api, devs, 30*time.Second, "", "")

	bundles := t.TempDir()
	v1 := releaseCLI(t, api, keysDir, scriptBundle(t, bundles, "1.0.0", true, 8<<10), "1.0.0", 1)
	ztota(t, append([]string{"deploy", v1.target, "--devices", strings.Join(devs, ","), "--failure-threshold", "1"}, api...)...)
	waitDevices(t, api, devs, 60*time.Second, "committed", v1.target)

	v2 := releaseCLI(t, api, keysDir, scriptBundle(t, bundles, "2.0.0", false, 8<<10), "2.0.0", 2)
	ztota(t, append([]string{"deploy", v2.target, "--devices", strings.Join(devs, ","), "--failure-threshold", "1"}, api...)...)
	waitDevices(t, api, devs, 60*time.Second, "rolled-back", v1.target)

	for _, id := range devs {
		var h []store.Report
		if err := json.Unmarshal([]byte(ztota(t, append([]string{"devices", "history", id, "--json"}, api...)...)), &h); err != nil {
			t.Fatalf("ztota devices history %s --json: %v", id, err)
		}
		checkHistory(t, id, h)
		wantStates(t, id, v1.target, statesOf(h, v1.target), fullInstall)
		wantStates(t, id, v2.target, statesOf(h, v2.target), failedTrial)
		for _, r := range h {
			if r.State == "rolled-back" && !strings.Contains(r.Detail, "health") {
				t.Errorf("%s: rolled-back report says %q; want the failed health check named", id, r.Detail)
			}
		}
	}
	for i, a := range agents {
		a.stop(10 * time.Second)
		checkSlots(t, filepath.Join(s.dir, devs[i]), v1.sha256)
	}
	s.srv.stop(10 * time.Second)
}

// writeConfig writes an agent configuration file and returns its path.
func writeConfig(t *testing.T, dir string, cfg *agent.Config) string {
	t.Helper()
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, cfg.DeviceID+".json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type released struct{ target, sha256 string }

var releasedLine = regexp.MustCompile(`released (\S+) \(sha256 ([0-9a-f]{64}),`)

// releaseCLI signs and uploads an artifact with "ztota release".
func releaseCLI(t *testing.T, api []string, keysDir, artifact, version string, counter int) released {
	t.Helper()
	out := ztota(t, append([]string{"release", artifact, "--name", "app", "--version", version,
		"--counter", strconv.Itoa(counter), "--hardware", "board-a", "--module", "app", "--keys", keysDir}, api...)...)
	m := releasedLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ztota release printed %q; want \"released TARGET (sha256 HEX, ...\"", out)
	}
	return released{m[1], m[2]}
}

// deviceRow is a line of "ztota devices list".
type deviceRow struct{ state, installed string }

// devicesList parses the table of "ztota devices list" by the column
// positions of its header.
func devicesList(t *testing.T, api []string) map[string]deviceRow {
	t.Helper()
	lines := strings.Split(strings.TrimRight(ztota(t, append([]string{"devices", "list"}, api...)...), "\n"), "\n")
	head := lines[0]
	col := func(name string) int {
		i := strings.Index(head, name)
		if i < 0 {
			t.Fatalf("ztota devices list: no %s column in %q", name, head)
		}
		return i
	}
	cState, cInst, cAssigned := col("STATE"), col("INSTALLED"), col("ASSIGNED")
	cell := func(s string, from, to int) string {
		if from >= len(s) {
			return ""
		}
		return strings.TrimSpace(s[from:min(to, len(s))])
	}
	out := map[string]deviceRow{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		out[f[0]] = deviceRow{state: cell(l, cState, cInst), installed: cell(l, cInst, cAssigned)}
	}
	return out
}

// waitDevices polls "ztota devices list" until every device shows state
// and installed.
func waitDevices(t *testing.T, api, devs []string, d time.Duration, state, installed string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		rows := devicesList(t, api)
		done := true
		for _, id := range devs {
			if r := rows[id]; r.state != state || r.installed != installed {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %v to be %s with %s installed; ztota devices list shows %+v", d, devs, state, installed, rows)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
