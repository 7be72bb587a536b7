package devauth

import (
	"container/heap"
	"fmt"
	"sync"
	"time"
)

// ReplayGuard remembers the signatures of accepted non-GET requests for as
// long as they could still pass the clock-skew check, and refuses a second
// use. It holds at most max entries; when it is full of unexpired entries
// it refuses new requests with ErrReplayCacheFull rather than forgetting a
// signature that could still be replayed (fail closed). A ReplayGuard is
// safe for concurrent use. It lives in memory: after a server restart a
// request from the last MaxSkew can be replayed once, which idempotent
// handlers (reports are stored once per id) must tolerate.
type ReplayGuard struct {
	mu   sync.Mutex
	max  int
	seen map[string]struct{}
	exp  expiryHeap
}

// NewReplayGuard returns a guard holding at most max signatures (at least 1).
func NewReplayGuard(max int) *ReplayGuard {
	if max < 1 {
		max = 1
	}
	return &ReplayGuard{max: max, seen: make(map[string]struct{})}
}

// check records (deviceID, sig) for a request made at reqTime and fails with
// ErrReplay if it was already recorded.
func (g *ReplayGuard) check(deviceID string, sig []byte, reqTime, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.exp) > 0 && now.After(g.exp[0].until) {
		e := heap.Pop(&g.exp).(entry)
		delete(g.seen, e.key)
	}
	key := deviceID + "\x00" + string(sig)
	if _, ok := g.seen[key]; ok {
		return fmt.Errorf("%w: device %q", ErrReplay, deviceID)
	}
	if len(g.seen) >= g.max {
		return ErrReplayCacheFull
	}
	g.seen[key] = struct{}{}
	heap.Push(&g.exp, entry{key: key, until: reqTime.Add(MaxSkew)})
	return nil
}

// Len returns the number of remembered signatures.
func (g *ReplayGuard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}

type entry struct {
	key   string
	until time.Time // last instant at which the request passes the skew check
}

// expiryHeap is a min-heap of entries by expiry.
type expiryHeap []entry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
