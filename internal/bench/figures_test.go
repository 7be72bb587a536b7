package bench_test

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/bench"
	"github.com/ztota/ztota/internal/testbed"
)

// Full-size settings of TestFigures.
const (
	figCheckinWorkers = 16
	figCheckinRounds  = 3
	figCheckinTime    = 3 * time.Second
	figInstallPadding = 200 << 20
	figInstallRounds  = 3
)

// TestFigures runs all three measurements at full size and prints the
// table; it runs only with -figures or ZTOTA_FIGURES=1 (see
// docs/BENCHMARKS.md). It asserts nothing about timings.
func TestFigures(t *testing.T) {
	if !figuresOn() {
		t.Skip("run with -figures or ZTOTA_FIGURES=1 (takes a few minutes)")
	}
	ctx := testbed.Ctx(t)
	var figs []bench.Figure

	cb := newCheckinBed(t)
	realRate, bareRate := cb.measure(ctx, t, bench.Load{Workers: figCheckinWorkers, Duration: figCheckinTime}, figCheckinRounds)
	figs = append(figs, checkinFigure(realRate, bareRate, figCheckinWorkers))

	ib := newInstallBed(t, figInstallPadding)
	var ts []installTimes
	for i := range figInstallRounds {
		ts = append(ts, ib.round(ctx, t, i))
	}
	at := ib.agentInstall(ctx, t, "bench-agent")
	ts = append(ts, ib.round(ctx, t, figInstallRounds))
	figs = append(figs, installFigures(ib.rel.Length, ts, at)...)

	mf := measureMemory(ctx, t, memorySizes{padding: figInstallPadding, poll: time.Second, idle: 3 * time.Second, settle: 3 * time.Second})
	figs = append(figs, mf.figures()...)

	fmt.Printf("\nztota figures (%s/%s, %d CPUs, %s); every reference measured in the same run\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fatalIf(t, bench.WriteTable(os.Stdout, figs))
	fmt.Println()
	for _, f := range figs {
		if met, ok := f.Met(); ok && !met {
			t.Logf("goal not met (not a failure; see docs/BENCHMARKS.md): %s", f.Name)
		}
	}
}
