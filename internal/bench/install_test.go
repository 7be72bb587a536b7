package bench_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/bench"
	"github.com/ztota/ztota/internal/fetch"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/slot"
	"github.com/ztota/ztota/internal/testbed"
)

// installBed is a released random-padded bundle on the real server, its
// bytes in memory for the raw reference, and slots to stage into.
type installBed struct {
	bed    *testbed.Bed
	rel    release.Result
	data   []byte
	url    string
	want   fetch.Want
	work   string // on the same file system as the agent's data
	slots  *slot.DirSlots
	client *http.Client
}

func newInstallBed(tb testing.TB, padding int64) *installBed {
	tb.Helper()
	ctx := testbed.Ctx(tb)
	bed := testbed.New(tb, testbed.Options{})
	art := filepath.Join(bed.Dir, "app-1.0.0.tar")
	_, err := bench.WriteScriptBundle(ctx, art, "1.0.0", padding, 1)
	fatalIf(tb, err)
	ib := &installBed{bed: bed, rel: bed.Release(art, "1.0.0", 1, hardwareID), work: filepath.Join(bed.Dir, "work")}
	ib.data, err = os.ReadFile(art)
	fatalIf(tb, err)
	sha, err := hex.DecodeString(ib.rel.SHA256)
	fatalIf(tb, err)
	ib.want = fetch.Want{Length: ib.rel.Length, SHA256: sha}
	dir, base := path.Split(ib.rel.Target)
	ib.url = bed.URL + "/image/targets/" + dir + ib.rel.SHA256 + "." + base
	fatalIf(tb, os.MkdirAll(ib.work, 0o700))
	ib.slots, err = slot.OpenDir(ctx, filepath.Join(ib.work, "slots"), 3)
	fatalIf(tb, err)
	ib.client = &http.Client{Transport: &http.Transport{DisableCompression: true}}
	return ib
}

// installTimes are the stages of one install of the manual path.
type installTimes struct {
	raw      time.Duration // reference: write + fsync of the same bytes
	download time.Duration // fetch.Download: download + hash + write + fsync
	verify   time.Duration // fetch.HashFile re-read
	stage    time.Duration // slot Stage: extract + hash + fsyncs
}

// round runs the reference and the manual install path once each and
// removes what they wrote except the staged slot.
func (ib *installBed) round(ctx context.Context, tb testing.TB, i int) installTimes {
	tb.Helper()
	var t installTimes
	rawPath := filepath.Join(ib.work, fmt.Sprintf("raw-%d", i))
	var err error
	t.raw, err = bench.WriteSync(ctx, rawPath, ib.data)
	fatalIf(tb, err)
	fi, err := os.Stat(rawPath)
	fatalIf(tb, err)
	if fi.Size() != int64(len(ib.data)) {
		tb.Fatalf("reference file holds %d bytes, want %d", fi.Size(), len(ib.data))
	}
	fatalIf(tb, os.Remove(rawPath))

	dl := filepath.Join(ib.work, fmt.Sprintf("download-%d", i))
	f, err := os.OpenFile(dl, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	fatalIf(tb, err)
	defer os.Remove(dl)
	defer f.Close()
	t0 := time.Now()
	res, err := fetch.Download(ctx, f, ib.want, fetch.Options{Client: ib.client, Mirrors: []string{ib.url}, MinRate: 1024})
	t1 := time.Now()
	fatalIf(tb, err)
	if res.Bytes != ib.want.Length || res.Transferred != ib.want.Length {
		tb.Fatalf("download: %+v, want %d bytes transferred", res, ib.want.Length)
	}
	fatalIf(tb, fetch.HashFile(ctx, f, ib.want))
	t2 := time.Now()
	x, err := ib.slots.Inactive(ctx)
	fatalIf(tb, err)
	meta := slot.Meta{Target: ib.rel.Target, Name: "app", Version: "1.0.0", ReleaseCounter: 1, SHA256: ib.rel.SHA256, Length: ib.rel.Length}
	fatalIf(tb, ib.slots.Stage(ctx, f, meta))
	t3 := time.Now()
	st, err := ib.slots.State(ctx)
	fatalIf(tb, err)
	if st.Slots[x].SHA256 != ib.rel.SHA256 {
		tb.Fatalf("slot %s holds %q after Stage, want %s", x, st.Slots[x].SHA256, ib.rel.SHA256)
	}
	fatalIf(tb, ib.slots.Verify(ctx, x))
	t.download, t.verify, t.stage = t1.Sub(t0), t2.Sub(t1), t3.Sub(t2)
	return t
}

// agentTimes are the stages of one agent Cycle that installs a release.
type agentTimes struct {
	toStaged time.Duration // check-in, TUF refresh, download, re-verify, stage
	cycle    time.Duration // ... and switch, restart, health check, commit
}

// agentInstall deploys the bed's release to a fresh agent and times the
// Cycle that installs it, checking it committed.
func (ib *installBed) agentInstall(ctx context.Context, tb testing.TB, id string) agentTimes {
	tb.Helper()
	cfg := ib.bed.AgentConfig(id, hardwareID)
	cfg.Module.Health.StayUp = agent.Duration(50 * time.Millisecond)
	a := ib.bed.Agent(cfg)
	var staged time.Time
	a.OnStep = func(step string) {
		if step == agent.StepStaged {
			staged = time.Now()
		}
	}
	ib.bed.Deploy(ib.rel.Target, id)
	start := time.Now()
	fatalIf(tb, a.Cycle(ctx))
	end := time.Now()
	st, err := a.SlotState(ctx)
	fatalIf(tb, err)
	if st.Active == "" || st.Pending != "" || st.Slots[st.Active].SHA256 != ib.rel.SHA256 {
		tb.Fatalf("agent slot state after the install cycle: %+v", st)
	}
	if staged.IsZero() {
		tb.Fatal("the agent never reached the staged step")
	}
	return agentTimes{toStaged: staged.Sub(start), cycle: end.Sub(start)}
}

func installFigures(n int64, ts []installTimes, at agentTimes) []bench.Figure {
	var raw, dl, dlv, all []time.Duration
	for _, t := range ts {
		raw = append(raw, t.raw)
		dl = append(dl, t.download)
		dlv = append(dlv, t.download+t.verify)
		all = append(all, t.download+t.verify+t.stage)
	}
	ref := bench.MBps(n, bench.Median(raw))
	refName := "raw write + fsync"
	size := fmt.Sprintf(" (%.0f MiB)", float64(n)/(1<<20))
	figs := []bench.Figure{
		{Name: "download+hash+write+fsync" + size, Value: bench.MBps(n, bench.Median(dl)), Unit: "MB/s", RefName: refName, RefValue: ref, RatioAtLeast: 0.8},
		{Name: "  + re-verify (HashFile)", Value: bench.MBps(n, bench.Median(dlv)), Unit: "MB/s", RefName: refName, RefValue: ref},
		{Name: "  + stage into slot", Value: bench.MBps(n, bench.Median(all)), Unit: "MB/s", RefName: refName, RefValue: ref},
	}
	if at.cycle > 0 {
		figs = append(figs,
			bench.Figure{Name: "agent Cycle to staged", Value: bench.MBps(n, at.toStaged), Unit: "MB/s", RefName: refName, RefValue: ref},
			bench.Figure{Name: "agent Cycle to committed", Value: bench.MBps(n, at.cycle), Unit: "MB/s", RefName: refName, RefValue: ref})
	}
	return figs
}

// TestInstallPathsCommitTheReleasedBytes is the smoke run of figure (b)
// at 1 MB: the reference writes every byte, the manual path downloads,
// re-verifies and stages a slot that verifies, and an agent Cycle
// commits the release.
func TestInstallPathsCommitTheReleasedBytes(t *testing.T) {
	ib := newInstallBed(t, 1<<20)
	ctx := testbed.Ctx(t)
	ts := []installTimes{ib.round(ctx, t, 0), ib.round(ctx, t, 1)}
	at := ib.agentInstall(ctx, t, "bench-install")
	figs := installFigures(ib.rel.Length, ts, at)
	if len(figs) != 5 {
		t.Fatalf("%d figures, want 5", len(figs))
	}
	for _, f := range figs {
		if f.Value <= 0 || f.RefValue <= 0 {
			t.Fatalf("figure %q has no value: %+v", f.Name, f)
		}
	}
}

// BenchmarkInstall times download + re-verify + stage of a 32 MiB bundle
// per iteration, with the raw write + fsync reference untimed, and
// reports MB/s of each and the ratios.
func BenchmarkInstall(b *testing.B) {
	ib := newInstallBed(b, 32<<20)
	ctx := testbed.Ctx(b)
	b.SetBytes(ib.rel.Length)
	var ts []installTimes
	b.ResetTimer()
	for i := range b.N {
		ts = append(ts, ib.round(ctx, b, i))
	}
	b.StopTimer()
	figs := installFigures(ib.rel.Length, ts, agentTimes{})
	b.ReportMetric(figs[0].RefValue, "raw-MB/s")
	b.ReportMetric(figs[0].Value, "download-MB/s")
	b.ReportMetric(figs[0].Ratio(), "download/raw")
	b.ReportMetric(figs[2].Value, "install-MB/s")
	b.ReportMetric(figs[2].Ratio(), "install/raw")
}
