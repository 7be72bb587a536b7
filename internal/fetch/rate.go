package fetch

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// tooSlow reports whether got bytes over elapsed is below minRate bytes/s.
// minRate ≤ 1<<32 and elapsed is clamped, so the product cannot overflow.
func tooSlow(got int64, elapsed time.Duration, minRate int64) bool {
	ms := min(elapsed.Milliseconds(), 1<<30)
	return got < minRate*ms/1000
}

// rateGuard cancels an attempt whose transfer falls below the minimum rate
// over a window. It measures from the start of the attempt, so a mirror that
// withholds the response headers is caught as well.
type rateGuard struct {
	got  atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

// startRateGuard watches the attempt whose context cancel ends; call close
// when the attempt is over.
func startRateGuard(ctx context.Context, cancel context.CancelCauseFunc, minRate int64, window time.Duration) *rateGuard {
	g := &rateGuard{stop: make(chan struct{})}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		t := time.NewTicker(window)
		defer t.Stop()
		since, last := time.Now(), int64(0)
		for {
			select {
			case <-g.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				now, cur := time.Now(), g.got.Load()
				if elapsed := now.Sub(since); tooSlow(cur-last, elapsed, minRate) {
					cancel(fmt.Errorf("%w: %d bytes in %s, below the minimum of %d bytes/s; the mirror is trickling or stalled",
						ErrSlow, cur-last, elapsed.Round(time.Millisecond), minRate))
					return
				}
				since, last = now, cur
			}
		}
	}()
	return g
}

func (g *rateGuard) add(n int) { g.got.Add(int64(n)) }

func (g *rateGuard) close() {
	close(g.stop)
	g.wg.Wait()
}
