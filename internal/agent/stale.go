package agent

// Stale revocation list policy (config revocations_stale): when the
// device cannot get a fresh (unexpired, verifying) list for longer than
// grace past the last list's expiry it reports "list-stale" once; with
// the "degrade" policy every module restarts degraded (mode degraded, no
// advisories, detail "revocation list stale") until a fresh list
// verifies, then returns to normal ("recovered") unless the fresh list
// revokes it. The stale state is persisted (state.json stale_since), so a
// restarted agent starts its modules degraded until a fresh list.

import (
	"context"
	"fmt"
	"time"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/report"
)

// applyStalePolicy applies the stale policy once the newest list l is
// stale for longer than the grace.
func (a *Agent) applyStalePolicy(ctx context.Context, l *attest.RevocationList, now time.Time) {
	if l == nil {
		return // never had a list: nothing was installed under one
	}
	pol := a.cfg.stalePolicy()
	if !now.After(l.Expires.Add(time.Duration(pol.Grace))) {
		return
	}
	since := l.Expires.UTC()
	if !a.listStaleReported {
		a.listStaleReported = true
		a.report(ctx, report.StateListStale, "", "", 0, fmt.Sprintf("revocation list stale: no fresh revocation list since %s (version %d expired; grace %s); policy: %s",
			since.Format(time.RFC3339), l.Version, time.Duration(pol.Grace), pol.Policy))
	}
	if pol.Policy != StaleDegrade {
		return
	}
	a.mu.Lock()
	var err error
	if a.st.StaleSince == nil {
		a.st.StaleSince = &since
		err = saveState(a.statePath(), a.st)
	}
	a.mu.Unlock()
	if err != nil {
		a.log.Error("saving the stale mode", "err", err)
	}
	for _, m := range a.mods {
		if m.stale {
			continue // already running degraded for the stale list
		}
		if st, err := m.slots.State(ctx); err != nil || st.Active == "" {
			continue // nothing runs yet: started degraded when it starts
		}
		if err := a.startActive(ctx, m); err != nil {
			a.mreport(ctx, m, report.StateFailed, "", "", 0, "revocation list stale, but the module could not be restarted degraded: "+err.Error())
			continue
		}
		a.log.Warn("module degraded: revocation list stale", "module", m.name())
		a.mreport(ctx, m, report.StateDegraded, "", "", 0, fmt.Sprintf("revocation list stale since %s; policy: degrade", since.Format(time.RFC3339)))
	}
}

// clearStale ends the stale mode (a fresh list verified) and says whether
// it was on.
func (a *Agent) clearStale() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st.StaleSince == nil {
		return false
	}
	old := a.st.StaleSince
	a.st.StaleSince = nil
	if err := saveState(a.statePath(), a.st); err != nil {
		a.st.StaleSince = old
		a.log.Error("saving the end of the stale mode", "err", err)
		return false
	}
	return true
}

// freshAgain restarts, with their own mode, the modules still running
// degraded for the stale list (those the fresh list revokes were handled
// by checkRunning), and reports "recovered" for those back to normal.
func (a *Agent) freshAgain(ctx context.Context) {
	for _, m := range a.mods {
		if !m.stale {
			continue
		}
		if err := a.startActive(ctx, m); err != nil {
			a.mreport(ctx, m, report.StateFailed, "", "", 0, "a fresh revocation list verified, but the module could not be restarted: "+err.Error())
			continue
		}
		if mode, _ := a.modeOf(m); mode == ModeNormal {
			a.mreport(ctx, m, report.StateRecovered, "", "", 0, "recovered: a fresh revocation list verified; the module runs under its normal profile")
		}
	}
}
