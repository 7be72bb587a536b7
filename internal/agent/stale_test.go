package agent_test

// The stale revocation list policy (config revocations_stale): a server
// (or path) that stops serving the list once the device's newest list is
// about to expire.

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/testbed"
)

// staleSetup installs a certified release under policy, then records a
// list that expires in two seconds and withholds every later list; it
// returns once the grace past the expiry has passed.
func staleSetup(t *testing.T, id, policy string) (*certBed, *agent.Agent, release.Result, *agent.Config) {
	t.Helper()
	cb := newCertBed(t)
	cfg := degradeConfig(t, cb, id)
	cfg.RevocationsStale = &agent.StalePolicy{Policy: policy, Grace: agent.Duration(200 * time.Millisecond)}
	a := cb.b.Agent(cfg)
	cb.push(t, 1)
	r := cb.certified(t, "1.0.0", 1)
	cb.b.Deploy(r.Target, id)
	testbed.CycleInstalls(t, a, r.SHA256, "installing the certified release")
	expires := time.Now().Add(2 * time.Second).UTC()
	short, err := attest.SignRevocations(attest.RevocationList{Version: 2, Issued: cb.fx.Now, Expires: expires}, cb.fx.Online.Revoke)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cb.b.Admin.PushRevocations(testbed.Ctx(t), short); err != nil {
		t.Fatal(err)
	}
	if err := a.CheckRevocations(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	cb.f.setHook(func(w http.ResponseWriter, req *http.Request) bool {
		if req.URL.Path == listPath(id) {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	testbed.WaitFor(t, 10*time.Second, "the short list to expire past the grace", func() bool {
		return time.Now().After(expires.Add(300 * time.Millisecond))
	})
	for i := 0; i < 3; i++ {
		if err := a.CheckRevocations(testbed.Ctx(t)); !errors.Is(err, agent.ErrStaleRevocations) {
			t.Fatalf("check %d: %v, want %v", i, err, agent.ErrStaleRevocations)
		}
	}
	reportSaying(t, cb.b, a, id, "list-stale", "policy: "+policy)
	if n := countSaying(cb.b, id, "list-stale", ""); n != 1 {
		t.Fatalf("list-stale reported %d times, want once", n)
	}
	return cb, a, r, cfg
}

// TestStaleListPolicyKeepKeepsRunning performs the stale list under the
// default policy "keep": reported once, the module keeps running as it
// was.
func TestStaleListPolicyKeepKeepsRunning(t *testing.T) {
	const id = "dev-stale-1"
	cb, a, r, _ := staleSetup(t, id, agent.StaleKeep)
	if mode, _, _ := a.Mode(); mode != agent.ModeNormal {
		t.Fatalf("mode %q, want normal", mode)
	}
	if got := testbed.Installed(t, a); got != r.SHA256 || procUID(t, a.ModulePID()) != "0" {
		t.Fatal("the module does not keep running as it was")
	}
	if n := countSaying(cb.b, id, "degraded", ""); n != 0 {
		t.Fatalf("%d degraded reports under the keep policy", n)
	}
}

// TestStaleListPolicyDegradeDegradesUntilAFreshList performs the stale
// list under the policy "degrade": the module restarts degraded (mode
// degraded, no advisories, "revocation list stale"), also after an agent
// restart, and once a fresh list verifies it runs normally again,
// reporting recovered.
func TestStaleListPolicyDegradeDegradesUntilAFreshList(t *testing.T) {
	const id = "dev-stale-2"
	cb, a, _, cfg := staleSetup(t, id, agent.StaleDegrade)
	if mode, adv, _ := a.Mode(); mode != agent.ModeDegraded || len(adv) != 0 {
		t.Fatalf("mode %q advisories %v, want degraded without advisories", mode, adv)
	}
	waitUID(t, a, "", "65534")
	reportSaying(t, cb.b, a, id, "degraded", "revocation list stale")
	for _, r := range statesIn(cb.b, id, "degraded") {
		if mod, mode, adv := payload(t, r); mod != "app" || mode != "degraded" || adv != "" {
			t.Fatalf("degraded report: module %q mode %q advisories %q", mod, mode, adv)
		}
	}

	// A restarted agent starts the module degraded while the list stays
	// stale.
	a.Close()
	a = cb.b.Agent(cfg)
	waitUID(t, a, "", "65534")
	if mode, _, _ := a.Mode(); mode != agent.ModeDegraded {
		t.Fatalf("after a restart: mode %q, want degraded", mode)
	}

	cb.f.clear()
	cb.push(t, 3)
	if err := a.CheckRevocations(testbed.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if mode, _, _ := a.Mode(); mode != agent.ModeNormal {
		t.Fatalf("mode %q after a fresh list, want normal", mode)
	}
	waitUID(t, a, "", "0")
	reportSaying(t, cb.b, a, id, "recovered", "fresh revocation list")
}
