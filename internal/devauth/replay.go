package devauth

import (
	"container/heap"
	"fmt"
	"sync"
	"time"
)

// ReplayGuard remembers the signatures of accepted non-GET requests for as
// long as they could still pass the clock-skew check, and refuses a second
// use. Each device has its own bounded window of at most perDevice
// signatures: when a device's window is full of unexpired entries, that
// device's new requests are refused with ErrReplayCacheFull (fail closed,
// rather than forget a signature that could still be replayed), and no
// other device is affected. Only requests whose signature verified are
// recorded, so a device's window can only be filled by its own key. A
// ReplayGuard is safe for concurrent use. It lives in memory: after a
// server restart a request from the last MaxSkew can be replayed once,
// which idempotent handlers (reports are stored once per id) must
// tolerate.
type ReplayGuard struct {
	mu        sync.Mutex
	perDevice int
	seen      map[string]struct{}
	count     map[string]int // device id -> unexpired entries
	exp       expiryHeap
}

// NewReplayGuard returns a guard holding at most perDevice signatures for
// each device (at least 1).
func NewReplayGuard(perDevice int) *ReplayGuard {
	if perDevice < 1 {
		perDevice = 1
	}
	return &ReplayGuard{perDevice: perDevice, seen: make(map[string]struct{}), count: make(map[string]int)}
}

// check records (deviceID, sig) for a request made at reqTime and fails with
// ErrReplay if it was already recorded, or ErrReplayCacheFull if the
// device's window is full.
func (g *ReplayGuard) check(deviceID string, sig []byte, reqTime, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.exp) > 0 && now.After(g.exp[0].until) {
		e := heap.Pop(&g.exp).(entry)
		delete(g.seen, e.key)
		if g.count[e.device]--; g.count[e.device] <= 0 {
			delete(g.count, e.device)
		}
	}
	key := deviceID + "\x00" + string(sig)
	if _, ok := g.seen[key]; ok {
		return fmt.Errorf("%w: device %q", ErrReplay, deviceID)
	}
	if g.count[deviceID] >= g.perDevice {
		return fmt.Errorf("%w: device %q sent %d signed requests within %s", ErrReplayCacheFull, deviceID, g.perDevice, 2*MaxSkew)
	}
	g.seen[key] = struct{}{}
	g.count[deviceID]++
	heap.Push(&g.exp, entry{key: key, device: deviceID, until: reqTime.Add(MaxSkew)})
	return nil
}

// Len returns the number of remembered signatures, over all devices.
func (g *ReplayGuard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}

type entry struct {
	key    string
	device string
	until  time.Time // last instant at which the request passes the skew check
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
