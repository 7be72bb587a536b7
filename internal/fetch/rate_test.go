package fetch

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestTooSlow(t *testing.T) {
	cases := []struct {
		got     int64
		elapsed time.Duration
		rate    int64
		want    bool
	}{
		{999, time.Second, 1000, true},
		{1000, time.Second, 1000, false},
		{199, 200 * time.Millisecond, 1000, true},
		{0, 5 * time.Millisecond, 100, false}, // under a byte owed
		{0, time.Duration(1<<62 - 1), 1 << 32, true},
	}
	for _, c := range cases {
		if got := tooSlow(c.got, c.elapsed, c.rate); got != c.want {
			t.Errorf("tooSlow(%d, %s, %d) = %v", c.got, c.elapsed, c.rate, got)
		}
	}
}

func TestRateGuardCancelsAStalledAttemptAndSparesAFastOne(t *testing.T) {
	ctx, cancel := context.WithCancelCause(t.Context())
	g := startRateGuard(ctx, cancel, 1000, 20*time.Millisecond)
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("stalled attempt not cancelled")
	}
	g.close()
	if !errors.Is(context.Cause(ctx), ErrSlow) {
		t.Fatalf("cause = %v", context.Cause(ctx))
	}

	ctx2, cancel2 := context.WithCancelCause(t.Context())
	g2 := startRateGuard(ctx2, cancel2, 1000, 20*time.Millisecond)
	for range 10 {
		g2.add(1000)
		time.Sleep(10 * time.Millisecond)
	}
	g2.close()
	if ctx2.Err() != nil {
		t.Fatalf("fast attempt cancelled: %v", context.Cause(ctx2))
	}
}

func TestBackoffIsExponentialAndCapped(t *testing.T) {
	base := 100 * time.Millisecond
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 3200}
	for i, w := range want {
		if got := backoffFor(base, i+1); got != w*time.Millisecond {
			t.Errorf("round %d: %s, want %s", i+1, got, w*time.Millisecond)
		}
	}
	if got := backoffFor(MaxBackoff, 1000); got != MaxBackoff {
		t.Errorf("capped backoff %s", got)
	}
}

func TestPickSkipsDroppedMirrorsAndNotesWrapping(t *testing.T) {
	dropped := []bool{false, true, false}
	cases := []struct {
		from, idx int
		wrapped   bool
	}{{0, 0, false}, {1, 2, false}, {3, 0, true}, {2, 2, false}}
	for _, c := range cases {
		i, w, ok := pick(c.from, dropped)
		if !ok || i != c.idx || w != c.wrapped {
			t.Errorf("pick(%d) = %d, %v, %v", c.from, i, w, ok)
		}
	}
	if _, _, ok := pick(0, []bool{true, true}); ok {
		t.Error("picked a dropped mirror")
	}
}
