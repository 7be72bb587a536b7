package agent

// Degraded mode (issue 8, device mitigation without a backup): when the
// certifier's signed revocation list, verified and newest, revokes the
// artifact the module runs (runningRevoked, called only from
// CheckRevocations), the agent stops the module and restarts it under its
// degraded profile, enforced by the kernel through the sandbox helper. The
// mode is persisted in state.json (atomic), so that a restarted agent
// starts the revoked artifact degraded again; a committed release with
// another digest (the fix) runs under the normal profile and clears it.
// Each transition is reported once: "degraded" then "recovered".

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/sandbox"
	"github.com/ztota/ztota/internal/slot"
)

// probe reports the kernel's sandbox features (a test replaces it).
var probe = sandbox.Probe

// defaultDegradedID is the uid and gid of the default degraded profile
// (nobody:nogroup).
const defaultDegradedID = 65534

// moduleDataDir is the module's data directory, the only tree its
// default degraded profile may write.
func (a *Agent) moduleDataDir() string { return filepath.Join(a.cfg.DataDir, "module-data") }

// Mode returns the module's mode (ModeNormal or ModeDegraded), the
// advisories that caused a degraded one and since when.
func (a *Agent) Mode() (mode string, advisories []string, since time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if m := a.st.Mitigation; m != nil {
		return m.Mode, append([]string(nil), m.Advisories...), m.Since
	}
	return ModeNormal, nil, time.Time{}
}

// degradedProfile is module.degraded or the default degraded profile. It
// prepares what the unprivileged module needs: the data directory,
// owned by the profile's uid/gid, and search (not read) permission on the
// agent's directories down to the slots.
func (a *Agent) degradedProfile() (*sandbox.Profile, error) {
	var p sandbox.Profile
	data := a.moduleDataDir()
	if a.cfg.Module.Degraded != nil {
		p = *a.cfg.Module.Degraded
	} else {
		uid, gid := uint32(defaultDegradedID), uint32(defaultDegradedID)
		if u := a.cfg.Module.DegradedUser; u != nil {
			uid, gid = u.UID, u.GID
		}
		p = sandbox.Degraded(uid, gid, data, sandbox.Limits{})
	}
	if err := a.prepareUnprivileged(p.UID, p.GID); err != nil {
		return nil, err
	}
	p.Env = append([]string{"ZTOTA_MODE=" + ModeDegraded, "ZTOTA_DATA_DIR=" + data}, p.Env...)
	return &p, nil
}

// prepareUnprivileged creates the module's data directory owned by
// uid:gid and lets that uid traverse the data and slots directories
// (mode 0711: it can reach the slot and its data, not list anything).
func (a *Agent) prepareUnprivileged(uid, gid uint32) error {
	data := a.moduleDataDir()
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	if err := os.Chown(data, int(uid), int(gid)); err != nil {
		return fmt.Errorf("module data directory: %w", err)
	}
	for _, d := range []string{a.cfg.DataDir, filepath.Join(a.cfg.DataDir, "slots")} {
		if err := os.Chmod(d, 0o711); err != nil {
			return err
		}
	}
	return nil
}

// confineFor is how the module running the artifact sha is started: under
// the degraded profile when the persisted mode says that artifact is
// revoked, else under module.profile (nil: unconfined).
func (a *Agent) confineFor(sha string) (confine, error) {
	a.mu.Lock()
	m := a.st.Mitigation
	a.mu.Unlock()
	if m != nil && m.SHA256 == sha {
		p, err := a.degradedProfile()
		if err != nil {
			return confine{}, fmt.Errorf("degraded profile: %w", err)
		}
		return confine{profile: p, helper: a.cfg.SandboxHelper}, nil
	}
	if p := a.cfg.Module.Profile; p != nil {
		cp := *p
		if err := a.prepareUnprivileged(cp.UID, cp.GID); err != nil {
			return confine{}, fmt.Errorf("profile: %w", err)
		}
		cp.Env = append([]string{"ZTOTA_MODE=" + ModeNormal, "ZTOTA_DATA_DIR=" + a.moduleDataDir()}, cp.Env...)
		return confine{profile: &cp, helper: a.cfg.SandboxHelper}, nil
	}
	return confine{}, nil
}

// degradedFor reports whether the persisted mode degrades artifact sha.
func (a *Agent) degradedFor(sha string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.Mitigation != nil && a.st.Mitigation.SHA256 == sha
}

// setMitigation persists the mode (nil: normal).
func (a *Agent) setMitigation(m *mitigation) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.st.Mitigation
	a.st.Mitigation = m
	if err := saveState(a.statePath(), a.st); err != nil {
		a.st.Mitigation = old
		return err
	}
	return nil
}

// degrade restarts the running artifact cur under the degraded profile,
// after recording the mode, and reports it once. If the confined start
// fails the module stays stopped (a revoked artifact never runs
// unconfined again), "failed" is reported, and the next restart of the
// module or the agent tries the degraded profile again.
func (a *Agent) degrade(ctx context.Context, cur slot.Meta, l *attest.RevocationList, r *attest.Revocation) {
	if a.degradedFor(cur.SHA256) {
		return // already degraded (a restarted agent, a newer list)
	}
	if err := a.setMitigation(&mitigation{Mode: ModeDegraded, SHA256: cur.SHA256, Advisories: append([]string(nil), r.Advisories...),
		List: l.Version, Since: time.Now().UTC()}); err != nil {
		a.log.Error("saving the degraded mode", "err", err)
		a.report(ctx, report.StateFailed, "", cur.Version, 0, "revoked, but the degraded mode could not be saved: "+err.Error())
		return
	}
	if err := a.startActive(ctx); err != nil {
		a.log.Error("restarting the module degraded", "err", err)
		a.report(ctx, report.StateFailed, "", cur.Version, 0, "revoked, but the module could not be restarted degraded: "+err.Error())
		return
	}
	detail := fmt.Sprintf("degraded: %s: the running %s (sha256 %s), revoked by revocation list version %d, runs under its degraded profile",
		strings.Join(r.Advisories, " "), cur.Target, cur.SHA256, l.Version)
	if missing := probe().Missing; len(missing) > 0 {
		detail += "; the kernel lacks: " + strings.Join(missing, "; ")
	}
	a.log.Warn("module degraded", "target", cur.Target, "advisories", r.Advisories)
	a.report(ctx, report.StateDegraded, "", cur.Version, 0, detail)
}

// recoverIfFixed clears a degraded mode once the committed artifact is
// another one than the revoked one, and reports it once.
func (a *Agent) recoverIfFixed(ctx context.Context, cur slot.Meta) {
	a.mu.Lock()
	m := a.st.Mitigation
	a.mu.Unlock()
	if m == nil || m.SHA256 == cur.SHA256 {
		return
	}
	if err := a.setMitigation(nil); err != nil {
		a.log.Error("saving the normal mode", "err", err)
		return
	}
	a.log.Info("module recovered", "target", cur.Target)
	a.report(ctx, report.StateRecovered, cur.Target, cur.Version, 0,
		fmt.Sprintf("recovered: %s (sha256 %s) runs under its normal profile; it was degraded since %s for %s",
			cur.Target, cur.SHA256, m.Since.Format(time.RFC3339), strings.Join(m.Advisories, " ")))
}
