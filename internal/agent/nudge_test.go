package agent_test

// The nudge channel. The testbed server may not serve it (it is built in
// parallel on the server side): the front answers
// /v1/devices/{device}/nudge itself, as the contract says (200
// {"seq": M} once M != after, or after the wait).

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/testbed"
)

// nudger plays the server's nudge endpoint for one device.
type nudger struct {
	seq      atomic.Int64
	requests atomic.Int64
	status   int // answer this status instead (404: an older server)
}

func (n *nudger) hook(id string) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v1/devices/"+id+"/nudge" {
			return false
		}
		n.requests.Add(1)
		if n.status != 0 {
			http.Error(w, "no such endpoint", n.status)
			return true
		}
		after, err := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		if err != nil || r.URL.Query().Get("wait") == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return true
		}
		deadline := time.Now().Add(2 * time.Second)
		for n.seq.Load() == after && time.Now().Before(deadline) {
			select {
			case <-r.Context().Done():
				return true
			case <-time.After(20 * time.Millisecond):
			}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"seq": %d}`, n.seq.Load())
		return true
	}
}

// runAgent runs a new agent's loop until the test ends.
func runAgent(t *testing.T, cfg *agent.Config, b *testbed.Bed) *agent.Agent {
	t.Helper()
	a, err := agent.New(testbed.Ctx(t), cfg, b.Log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; a.Close() })
	testbed.WaitFor(t, 10*time.Second, "enrollment", func() bool {
		_, err := b.Server.Store().Device(testbed.Ctx(t), cfg.DeviceID)
		return err == nil
	})
	return a
}

// TestNudgeMakesTheAgentActAtOnce performs a deployment and then a
// revocation of the running artifact on a device that polls and fetches
// the list only hourly: each nudge makes it check in (installing the
// deployment) and fetch the new list (mitigating the revoked module) at
// once.
func TestNudgeMakesTheAgentActAtOnce(t *testing.T) {
	const id = "dev-nudge-1"
	cb := newCertBed(t)
	n := &nudger{}
	n.seq.Store(time.Now().UnixMilli())
	cb.f.setHook(n.hook(id))
	cfg := degradeConfig(t, cb, id)
	cfg.PollInterval = agent.Duration(time.Hour)
	cfg.RevocationsInterval = agent.Duration(time.Hour)
	cfg.FullRefresh = agent.Duration(time.Hour)
	cb.push(t, 1)
	r := cb.certified(t, "1.0.0", 1)
	runAgent(t, cfg, cb.b)
	testbed.WaitFor(t, 10*time.Second, "the first nudge poll", func() bool { return n.requests.Load() > 0 })
	cb.b.Deploy(r.Target, id)
	n.seq.Add(1)
	testbed.WaitFor(t, 30*time.Second, "the deployment committed after a nudge", func() bool { return hasState(cb.b, id, "committed") })
	cb.push(t, 2, revocation(r.SHA256, "GO-2026-0060"))
	n.seq.Add(1)
	testbed.WaitFor(t, 30*time.Second, "the revocation acted on after a nudge", func() bool {
		return countSaying(cb.b, id, "degraded", "GO-2026-0060") == 1
	})
}

// TestNudgeWithoutEndpointDoesNotSpin performs a server without the nudge
// endpoint (404): the agent asks once and then only after a long pause,
// not in a loop; a failing endpoint (500) is asked with back-off; with
// nudge disabled it never asks.
func TestNudgeWithoutEndpointDoesNotSpin(t *testing.T) {
	b, f := bed(t, testbed.Options{})
	n := &nudger{status: http.StatusNotFound}
	f.setHook(n.hook("dev-nudge-2"))
	cfg := b.AgentConfig("dev-nudge-2", "board-a")
	runAgent(t, cfg, b)
	testbed.WaitFor(t, 10*time.Second, "the first nudge poll", func() bool { return n.requests.Load() > 0 })
	time.Sleep(1500 * time.Millisecond)
	if got := n.requests.Load(); got != 1 {
		t.Fatalf("%d nudge requests to a server without the endpoint within 1.5 s, want 1", got)
	}

	// A failing endpoint (500): exponential back-off, not a loop.
	n5 := &nudger{status: http.StatusInternalServerError}
	b5, f5 := bed(t, testbed.Options{})
	f5.setHook(n5.hook("dev-nudge-5"))
	runAgent(t, b5.AgentConfig("dev-nudge-5", "board-a"), b5)
	testbed.WaitFor(t, 10*time.Second, "the first nudge poll", func() bool { return n5.requests.Load() > 0 })
	time.Sleep(1500 * time.Millisecond)
	if got := n5.requests.Load(); got > 3 {
		t.Fatalf("%d nudge requests to a failing endpoint within 1.5 s, want at most 3 (back-off)", got)
	}

	n3 := &nudger{}
	b3, f3 := bed(t, testbed.Options{})
	f3.setHook(n3.hook("dev-nudge-3"))
	cfg3 := b3.AgentConfig("dev-nudge-3", "board-a")
	off := false
	cfg3.Nudge = &off
	runAgent(t, cfg3, b3)
	time.Sleep(500 * time.Millisecond)
	if got := n3.requests.Load(); got != 0 {
		t.Fatalf("%d nudge requests with nudge disabled", got)
	}
}
