package bench_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/bench"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
)

// memorySizes shape one memory run.
type memorySizes struct {
	padding int64         // bundle padding installed by the agent process
	poll    time.Duration // agent poll interval
	idle    time.Duration // idle time before the idle reading
	settle  time.Duration // wait after the commit before the after-install reading
}

// memoryFigures are the readings of one run, in bytes.
type memoryFigures struct {
	idle, trivial, after bench.Memory
	peak                 int64 // largest VmRSS sampled during the install, or VmHWM
	artifact             int64
	samples              int
}

// measureMemory builds ztota and the trivial reference, runs a real
// "ztota agent" process against a testbed server, and reads its resident
// memory idle, during an install and after it.
func measureMemory(ctx context.Context, tb testing.TB, sz memorySizes) memoryFigures {
	tb.Helper()
	var mf memoryFigures
	bins := tb.TempDir()
	ztota := filepath.Join(bins, "ztota")
	fatalIf(tb, bench.GoBuild(ctx, ".", ztota, "github.com/ztota/ztota/cmd/ztota"))
	trivial, err := bench.BuildTrivial(ctx, bins)
	fatalIf(tb, err)

	bed := testbed.New(tb, testbed.Options{})
	art := filepath.Join(bed.Dir, "app-2.0.0.tar")
	_, err = bench.WriteScriptBundle(ctx, art, "2.0.0", sz.padding, 2)
	fatalIf(tb, err)

	const id = "bench-rss"
	cfg := bed.AgentConfig(id, hardwareID)
	cfg.PollInterval = agent.Duration(sz.poll)
	cfg.Module.Health.StayUp = agent.Duration(50 * time.Millisecond)
	cfgPath := filepath.Join(bed.Dir, "agent.json")
	data, err := json.MarshalIndent(cfg, "", "  ")
	fatalIf(tb, err)
	fatalIf(tb, os.WriteFile(cfgPath, data, 0o600))
	logPath := filepath.Join(bed.Dir, "agent.log")
	p, err := bench.Start(ctx, logPath, ztota, "agent", "--config", cfgPath)
	fatalIf(tb, err)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := p.Stop(context.Background(), 10*time.Second); err != nil {
				tb.Errorf("stopping the agent: %v", err)
			}
		}
	}
	defer stop()
	fail := func(format string, args ...any) {
		tb.Helper()
		log, _ := os.ReadFile(logPath)
		tb.Fatalf("%s\nagent log:\n%s", fmt.Sprintf(format, args...), tail(log, 4096))
	}
	waitDevice := func(d time.Duration, what string, cond func(store.Device) bool) {
		tb.Helper()
		deadline := time.Now().Add(d)
		for {
			if exited, err := p.Exited(); exited {
				fail("the agent exited (%v) while waiting for %s", err, what)
			}
			dev, err := bed.Server.Store().Device(ctx, id)
			if err == nil && cond(dev) {
				return
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				fail("%v", err)
			}
			if time.Now().After(deadline) {
				fail("timed out after %s waiting for %s", d, what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitDevice(time.Minute, "enrollment and a first check-in", func(d store.Device) bool { return !d.LastSeen.IsZero() })
	time.Sleep(sz.idle)
	idle, err := bench.ReadStatus(ctx, p.PID())
	fatalIf(tb, err)
	mf.idle = idle

	ref, err := bench.Start(ctx, filepath.Join(bed.Dir, "trivial.log"), trivial)
	fatalIf(tb, err)
	time.Sleep(300 * time.Millisecond)
	tm, err := bench.ReadStatus(ctx, ref.PID())
	fatalIf(tb, err)
	fatalIf(tb, ref.Stop(ctx, 5*time.Second))
	mf.trivial = tm

	rel := bed.Release(art, "2.0.0", 2, hardwareID)
	mf.artifact = rel.Length
	sampler := bench.StartSampler(ctx, p.PID(), 5*time.Millisecond)
	bed.Deploy(rel.Target, id)
	waitDevice(3*time.Minute, "the install to commit", func(d store.Device) bool { return d.Installed == rel.Target })
	peak, n, err := sampler.Stop()
	fatalIf(tb, err)
	end, err := bench.ReadStatus(ctx, p.PID())
	fatalIf(tb, err)
	mf.peak, mf.samples = max(peak, end.HWM), n
	time.Sleep(sz.settle)
	after, err := bench.ReadStatus(ctx, p.PID())
	fatalIf(tb, err)
	mf.after = after
	stop()
	return mf
}

func (mf memoryFigures) figures() []bench.Figure {
	ref, refName := bench.MB(mf.trivial.RSS), "trivial Go process RSS"
	size := fmt.Sprintf("%.0f MiB", float64(mf.artifact)/(1<<20))
	return []bench.Figure{
		{Name: "agent RSS, idle", Value: bench.MB(mf.idle.RSS), Unit: "MB", RefName: refName, RefValue: ref, ValueAtMost: 20},
		{Name: "  of which anonymous (heap, stacks)", Value: bench.MB(mf.idle.Anon), Unit: "MB", RefName: "trivial: anonymous", RefValue: bench.MB(mf.trivial.Anon)},
		{Name: "  of which file-backed (binary)", Value: bench.MB(mf.idle.File), Unit: "MB", RefName: "trivial: file-backed", RefValue: bench.MB(mf.trivial.File)},
		{Name: "agent peak RSS, " + size + " install", Value: bench.MB(mf.peak), Unit: "MB", RefName: refName, RefValue: ref},
		{Name: "agent RSS after the install", Value: bench.MB(mf.after.RSS), Unit: "MB", RefName: refName, RefValue: ref},
		{Name: "  of which anonymous (heap, stacks)", Value: bench.MB(mf.after.Anon), Unit: "MB", RefName: "trivial: anonymous", RefValue: bench.MB(mf.trivial.Anon)},
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// TestAgentProcessInstallsWhileItsMemoryIsRead is the smoke run of
// figure (c): a built ztota agent process enrolls, idles, installs a
// 1 MB bundle to commit, and every reading of its memory is plausible.
func TestAgentProcessInstallsWhileItsMemoryIsRead(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the ztota binary")
	}
	mf := measureMemory(testbed.Ctx(t), t, memorySizes{padding: 1 << 20, poll: 200 * time.Millisecond, idle: 300 * time.Millisecond, settle: 100 * time.Millisecond})
	if mf.idle.RSS <= 0 || mf.trivial.RSS <= 0 || mf.after.RSS <= 0 {
		t.Fatalf("readings missing: %+v", mf)
	}
	if mf.idle.HWM < mf.idle.RSS || mf.peak < mf.idle.RSS {
		t.Fatalf("peak below a reading: %+v", mf)
	}
	if mf.samples == 0 {
		t.Fatal("the sampler read nothing during the install")
	}
	if len(mf.figures()) != 6 {
		t.Fatal("want 6 memory figures")
	}
}
