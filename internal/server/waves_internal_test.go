package server

import (
	"math"
	"testing"
)

func TestWaveOfSplitsDevicesByCumulativePercent(t *testing.T) {
	waves := []float64{1, 10, 100}
	want := map[int][]int{ // n -> devices per wave
		1:    {1, 0, 0},
		3:    {1, 0, 2},
		10:   {1, 0, 9},
		1000: {10, 90, 900},
	}
	for n, sizes := range want {
		got := make([]int, len(waves))
		prev := 0
		for i := 0; i < n; i++ {
			w := waveOf(i, n, waves)
			if w < prev {
				t.Fatalf("n=%d: device %d in wave %d after a device in wave %d", n, i, w, prev)
			}
			prev = w
			got[w]++
		}
		for w := range waves {
			if got[w] != sizes[w] {
				t.Errorf("n=%d: wave sizes %v, want %v", n, got, sizes)
				break
			}
		}
		// The devices of waves 0..w never exceed w's share (rounded up).
		cum := 0
		for w, pct := range waves {
			cum += got[w]
			if limit := int(math.Ceil(float64(n) * pct / 100)); cum > limit {
				t.Errorf("n=%d: %d devices by wave %d, above %v%% (%d)", n, cum, w, pct, limit)
			}
		}
	}
}

func TestWaveOfSingleWaveTakesEveryone(t *testing.T) {
	for _, n := range []int{1, 3, 10, 1000} {
		for i := 0; i < n; i++ {
			if w := waveOf(i, n, []float64{100}); w != 0 {
				t.Fatalf("n=%d device %d in wave %d", n, i, w)
			}
		}
	}
}

func TestDeployRequestValidateRefusesBadWaves(t *testing.T) {
	for _, waves := range [][]float64{{50, 10, 100}, {50, 50, 100}, {10, 50}, {math.NaN(), 100}, {math.Inf(1)}, {-1, 100}, {0, 100}, {100, 100}} {
		r := DeployRequest{Release: "app@1", Devices: []string{"d"}, Waves: waves}
		if err := r.Validate(); err == nil {
			t.Errorf("waves %v accepted", waves)
		}
	}
	for _, th := range []float64{math.NaN(), -0.1, 1.5, math.Inf(1)} {
		r := DeployRequest{Release: "app@1", Devices: []string{"d"}, FailureThreshold: th}
		if err := r.Validate(); err == nil {
			t.Errorf("threshold %v accepted", th)
		}
	}
	r := DeployRequest{Release: "app@1", Devices: []string{"d"}}
	if err := r.Validate(); err != nil || len(r.Waves) != 1 || r.Waves[0] != 100 || r.FailureThreshold != 0.1 {
		t.Errorf("defaults: %v %+v", err, r)
	}
}
