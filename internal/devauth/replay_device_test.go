package devauth

import (
	"errors"
	"testing"
	"time"
)

// TestOneDeviceFillingItsWindowDoesNotStopOthers performs field failure 8
// at the guard: one device fills its replay window; it alone is refused
// (ErrReplayCacheFull) until its entries expire, and other devices' new
// requests still pass, while replays are still refused for everyone.
func TestOneDeviceFillingItsWindowDoesNotStopOthers(t *testing.T) {
	g := NewReplayGuard(3)
	sig := func(b byte) []byte { return []byte{b} }
	for i := byte(0); i < 3; i++ {
		if err := g.check("noisy", sig(i), t0, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.check("noisy", sig(9), t0, t0); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("noisy device past its window: %v", err)
	}
	for _, dev := range []string{"dev-1", "dev-2"} {
		for i := byte(0); i < 3; i++ {
			if err := g.check(dev, sig(i), t0, t0); err != nil {
				t.Fatalf("%s while another device is full: %v", dev, err)
			}
		}
		if err := g.check(dev, sig(0), t0, t0); !errors.Is(err, ErrReplay) {
			t.Fatalf("%s replay: %v", dev, err)
		}
	}
	later := t0.Add(MaxSkew + time.Second)
	if err := g.check("noisy", sig(9), later, later); err != nil {
		t.Fatalf("noisy device after its window expired: %v", err)
	}
	if g.Len() != 1 {
		t.Fatalf("%d entries kept, want 1", g.Len())
	}
}
