package e2e

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/mitm"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tufrepo"
)

// TestReplayedOtherDeviceDirectorMetadataDoesNotFreeze performs attack 1
// of issue 6 with real agent processes behind a man in the middle: device
// B gets a deployment, so its director versions go above device A's; the
// proxy records B's director responses and answers A's director requests
// with them, unchanged. A must refuse them before trusting anything (its
// trusted director metadata stays as it was, the agent keeps polling), and
// once the proxy is honest again A installs the release it is assigned —
// the very release B's replayed targets listed. On the old code A trusted
// B's versions, refused B's target for good, and then refused every
// honest director timestamp as a rollback ("new timestamp version N must
// be >= M"): frozen for ever.
func TestReplayedOtherDeviceDirectorMetadataDoesNotFreeze(t *testing.T) {
	needBinary(t)
	b := testbed.New(t, testbed.Options{})
	p := mitm.Start(t, b.URL)
	devs := map[string]*device{}
	for _, id := range []string{"dev-a", "dev-b"} {
		cfg := b.AgentConfig(id, "board-a")
		cfg.ServerURL = p.URL // every request of both agents crosses the proxy
		devs[id] = &device{id: id, cfg: cfg, path: writeConfig(t, b.Dir, cfg)}
	}
	da, db := devs["dev-a"], devs["dev-b"]
	tufDir := filepath.Join(da.cfg.DataDir, "tuf", "director")
	trusted := func() map[string][]byte {
		out := map[string][]byte{}
		for _, n := range []string{"root.json", "timestamp.json", "snapshot.json", "targets.json"} {
			data, err := os.ReadFile(filepath.Join(tufDir, n))
			if err != nil {
				t.Fatal(err)
			}
			out[n] = data
		}
		return out
	}

	// A enrolls and refreshes once, honestly: it trusts its own director.
	a := da.start(t, "")
	testbed.WaitFor(t, 30*time.Second, "dev-a's first refresh", func() bool {
		_, err := os.Stat(filepath.Join(tufDir, "targets.json"))
		return err == nil
	})
	a.stop(10 * time.Second)
	before := trusted()
	aTS, err := tufrepo.Parse[metadata.TimestampType](before["timestamp.json"])
	if err != nil {
		t.Fatal(err)
	}

	// B enrolls and installs v1; its director moves on.
	db.enroll(t)
	v1 := b.Release(b.ScriptBundle("1.0.0", true, 4<<10), "1.0.0", 1, "board-a")
	b.Deploy(v1.Target, db.id)
	bp := db.start(t, "")
	waitLast(t, b, db.id, 30*time.Second, "v1 committed", isReport("committed", v1.Target))
	bp.stop(10 * time.Second)

	// B's director responses, as recorded on the path.
	ex, ok := p.Last("/director/dev-b/timestamp.json")
	if !ok {
		t.Fatal("the proxy recorded no director timestamp sent to dev-b")
	}
	bTS, err := tufrepo.Parse[metadata.TimestampType](ex.RespBody)
	if err != nil {
		t.Fatal(err)
	}
	if bTS.Signed.Version <= aTS.Signed.Version {
		t.Fatalf("dev-b's director timestamp v%d is not above dev-a's v%d; the replay would prove nothing", bTS.Signed.Version, aTS.Signed.Version)
	}
	replay := map[string][]byte{"timestamp.json": ex.RespBody}
	snapName := strconv.FormatInt(bTS.Signed.Meta["snapshot.json"].Version, 10) + ".snapshot.json"
	if ex, ok = p.Last("/director/dev-b/" + snapName); !ok {
		t.Fatalf("the proxy recorded no %s sent to dev-b", snapName)
	}
	replay[snapName] = ex.RespBody
	bSnap, err := tufrepo.Parse[metadata.SnapshotType](ex.RespBody)
	if err != nil {
		t.Fatal(err)
	}
	targetsName := strconv.FormatInt(bSnap.Signed.Meta["targets.json"].Version, 10) + ".targets.json"
	if ex, ok = p.Last("/director/dev-b/" + targetsName); !ok {
		t.Fatalf("the proxy recorded no %s sent to dev-b", targetsName)
	}
	replay[targetsName] = ex.RespBody

	// The attack: A's director requests get B's responses.
	p.OnRequest(func(r *http.Request, _ []byte) ([]byte, *mitm.Answer) {
		name, ok := strings.CutPrefix(r.URL.Path, "/director/dev-a/")
		if !ok {
			return nil, nil
		}
		body, ok := replay[name]
		if !ok {
			return nil, nil
		}
		return nil, &mitm.Answer{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
	})
	a = da.start(t, "")
	refusedRE := regexp.MustCompile(`not issued for this device: it names device \\?"dev-b\\?"`)
	acceptedRE := regexp.MustCompile(`assigned to device dev-b|must be >=`)
	deadline := time.Now().Add(30 * time.Second)
	for a.log.find(refusedRE) == nil {
		if m := a.log.find(acceptedRE); m != nil {
			t.Fatalf("dev-a took dev-b's director metadata as its own: %q", m[0])
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for dev-a to refuse dev-b's director metadata")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A keeps polling under the replay (not wedged), and trusts nothing new.
	b.Deploy(v1.Target, da.id)
	served := func() int {
		n := 0
		for _, ex := range p.Log() {
			if ex.Path == "/director/dev-a/timestamp.json" && bytes.Equal(ex.RespBody, replay["timestamp.json"]) {
				n++
			}
		}
		return n
	}
	start := served()
	testbed.WaitFor(t, 30*time.Second, "dev-a to ask again under the replay", func() bool { return served() >= start+3 })
	for n, data := range trusted() {
		if !bytes.Equal(data, before[n]) {
			t.Fatalf("dev-a's trusted director %s changed under the replay", n)
		}
	}

	// The proxy turns honest: A installs its own assignment.
	p.OnRequest(nil)
	waitLast(t, b, da.id, 30*time.Second, "v1 committed after the replay stopped", isReport("committed", v1.Target))
	a.stop(10 * time.Second)
	checkSlots(t, da.cfg.DataDir, v1.SHA256)
	m, err := tufrepo.Parse[metadata.TimestampType](trusted()["timestamp.json"])
	if err != nil {
		t.Fatal(err)
	}
	if got := tufrepo.BoundDevice(m); got != "dev-a" {
		t.Fatalf("dev-a trusts a director timestamp bound to %q", got)
	}
	for _, r := range b.History(da.id) {
		if r.State == "refused" && r.Target == v1.Target {
			t.Fatalf("dev-a refused its release: %s", r.Detail)
		}
	}
}
