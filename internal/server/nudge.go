package server

// The nudge channel: a device long-polls
//
//	GET /v1/devices/{device}/nudge?after=N&wait=SECONDS   (signed device request)
//
// and the server answers 200 {"seq": M} as soon as the device's nudge
// sequence M differs from N, or when wait seconds (default 25, clamped to
// [0, 55]) pass, with the current M (then possibly == N). A nudge carries
// nothing the device must trust: on a change of M the agent only
// refreshes now (revocation list, then TUF check-in). Absent after counts
// as 0, so the first call answers at once with M.
//
// M is kept in memory only: M(device) = start + all + own(device), where
// start is the process's start time in microseconds (a restarted server
// answers with another M, which the agent takes as a nudge), all counts
// the nudges of the whole fleet (a new revocation list) and own the
// nudges of that device (a mitigation naming it, a fix deployed to it).
//
// Waking is one broadcast mechanism, a channel closed on nudge: one for
// the whole fleet, and one per device that has a waiter (made by the
// first waiter, closed and dropped by a nudge of that device, dropped
// with the last waiter). What a waiting device costs the nudger is one
// map entry with its channel (about 200 bytes, shared by a device's
// waiters) and one timer; the rest is the connection's cost in net/http
// (its goroutines, buffers and TLS state), measured in
// TestNudgeWakesOnlyTheNudgedOfManyWaiters. A device has at most
// maxNudgeWaiters requests waiting at once; the map keeps an entry for a
// device without waiters only while its own count is not zero, so it
// never holds more than the enrolled devices.

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ztota/ztota/internal/report"
)

// Bounds of the nudge long poll.
const (
	defaultNudgeWait = 25 * time.Second
	maxNudgeWait     = 55 * time.Second
	// maxNudgeWaiters bounds the long polls one device may hold open (an
	// agent holds one).
	maxNudgeWaiters = 4
	// maxNudgeParam bounds the digits of a query parameter.
	maxNudgeParam = 19
)

// NudgeAnswer is the answer of the nudge long poll.
type NudgeAnswer struct {
	Seq int64 `json:"seq"`
}

// nudger holds the nudge sequences and wakes their waiters.
type nudger struct {
	mu     sync.Mutex
	start  int64 // set on first use
	all    int64
	allCh  chan struct{} // closed on a nudge of all devices
	devs   map[string]*nudgeDev
	closed chan struct{} // closed when the server stops serving
	stop   bool
}

type nudgeDev struct {
	own     int64
	ch      chan struct{} // nil while nobody waits
	waiters int
}

// initLocked makes the zero nudger usable.
func (n *nudger) initLocked() {
	if n.devs == nil {
		n.start = time.Now().UnixMicro()
		n.allCh = make(chan struct{})
		n.devs = make(map[string]*nudgeDev)
		n.closed = make(chan struct{})
	}
}

func (n *nudger) seqLocked(dev string) int64 {
	m := n.start + n.all
	if d := n.devs[dev]; d != nil {
		m += d.own
	}
	return m
}

// Nudge tells the devices to refresh now: their waiting long polls
// answer at once with a new sequence, and a device not waiting sees it
// at its next poll. Without devices it does nothing; NudgeAll nudges
// every device.
func (s *Server) Nudge(devices ...string) {
	n := &s.nudges
	n.mu.Lock()
	defer n.mu.Unlock()
	n.initLocked()
	for _, dev := range devices {
		d := n.devs[dev]
		if d == nil {
			d = &nudgeDev{}
			n.devs[dev] = d
		}
		d.own++
		if d.ch != nil {
			close(d.ch)
			d.ch = make(chan struct{})
		}
	}
}

// NudgeAll nudges every device (a new revocation list).
func (s *Server) NudgeAll() {
	n := &s.nudges
	n.mu.Lock()
	defer n.mu.Unlock()
	n.initLocked()
	n.all++
	close(n.allCh)
	n.allCh = make(chan struct{})
}

// stopNudges answers every waiting long poll now and every later one at
// once (the server is shutting down).
func (s *Server) stopNudges() {
	n := &s.nudges
	n.mu.Lock()
	defer n.mu.Unlock()
	n.initLocked()
	if !n.stop {
		n.stop = true
		close(n.closed)
	}
}

// nudgeWaiters counts the waiting long polls (tests).
func (s *Server) nudgeWaiters() int {
	n := &s.nudges
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, d := range n.devs {
		c += d.waiters
	}
	return c
}

// errTooManyNudgeWaits refuses a device's long poll beyond maxNudgeWaiters.
var errTooManyNudgeWaits = errorf(http.StatusTooManyRequests, "at most %d nudge long polls per device at once", maxNudgeWaiters)

// waitNudge returns the device's sequence once it differs from after, or
// when wait passes, the request ends or the server stops.
func (s *Server) waitNudge(r *http.Request, dev string, after int64, wait time.Duration) (int64, error) {
	n := &s.nudges
	n.mu.Lock()
	n.initLocked()
	m := n.seqLocked(dev)
	if m != after || wait <= 0 || n.stop {
		n.mu.Unlock()
		return m, nil
	}
	d := n.devs[dev]
	if d == nil {
		d = &nudgeDev{}
		n.devs[dev] = d
	}
	if d.waiters >= maxNudgeWaiters {
		n.mu.Unlock()
		return 0, errTooManyNudgeWaits
	}
	d.waiters++
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	devCh, allCh, closed := d.ch, n.allCh, n.closed
	n.mu.Unlock()

	t := time.NewTimer(wait)
	select {
	case <-devCh:
	case <-allCh:
	case <-closed:
	case <-t.C:
	case <-r.Context().Done():
	}
	t.Stop()

	n.mu.Lock()
	defer n.mu.Unlock()
	d = n.devs[dev] // the same entry: it is not dropped while it has waiters
	d.waiters--
	if d.waiters == 0 {
		d.ch = nil
		if d.own == 0 {
			delete(n.devs, dev)
		}
	}
	return n.seqLocked(dev), nil
}

// nudgeParam reads a query parameter of at most maxNudgeParam decimal
// digits; ok is false when it is absent.
func nudgeParam(v []string, name string) (x int64, ok bool, err error) {
	if len(v) == 0 {
		return 0, false, nil
	}
	if len(v) != 1 || v[0] == "" || len(v[0]) > maxNudgeParam || strings.Trim(v[0], "0123456789") != "" {
		return 0, false, errorf(http.StatusBadRequest, "%s must be given once, as at most %d decimal digits", name, maxNudgeParam)
	}
	x, perr := strconv.ParseInt(v[0], 10, 64)
	if perr != nil {
		return 0, false, errorf(http.StatusBadRequest, "%s out of range", name)
	}
	return x, true, nil
}

// handleNudge: GET /v1/devices/{device}/nudge?after=N&wait=SECONDS (the
// device middleware has checked the signature and the path's device).
func (s *Server) handleNudge(w http.ResponseWriter, r *http.Request) {
	dev := r.Context().Value(deviceCtxKey{}).(string)
	q := r.URL.Query()
	for k := range q {
		if k != "after" && k != "wait" {
			s.fail(w, r, errorf(http.StatusBadRequest, "unknown query parameter %q (after, wait)", report.Clean(k, 64, false)))
			return
		}
	}
	after, _, err := nudgeParam(q["after"], "after")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	secs, given, err := nudgeParam(q["wait"], "wait")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	wait := defaultNudgeWait
	if given {
		wait = time.Duration(min(secs, int64(maxNudgeWait/time.Second))) * time.Second
	}
	// The long poll writes nothing while it waits: give the answer's
	// write its usual bound after the wait (an HTTP/2 stream is reset
	// when its write deadline passes, even idle).
	t := s.cfg.Timeouts.Timeouts
	t.Defaults()
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + t.WriteIdle))
	m, err := s.waitNudge(r, dev, after, wait)
	if err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(maxNudgeWait/time.Second)))
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, NudgeAnswer{Seq: m})
}
