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
	"slices"
	"strings"
	"time"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/sandbox"
	"github.com/ztota/ztota/internal/slot"
	"github.com/ztota/ztota/internal/tufrepo"
)

// probe reports the kernel's sandbox features (a test replaces it).
var probe = sandbox.Probe

// defaultDegradedID is the uid and gid of the default degraded profile
// (nobody:nogroup).
const defaultDegradedID = 65534

// Mode returns the (first) module's mode (ModeNormal, ModeBackup or
// ModeDegraded), the advisories that caused it and since when.
func (a *Agent) Mode() (mode string, advisories []string, since time.Time) { return a.ModuleMode("") }

// ModuleMode returns the mode of the module name, the advisories that
// caused it and since when ("" for an unknown module).
func (a *Agent) ModuleMode(name string) (mode string, advisories []string, since time.Time) {
	m := a.module(name)
	if m == nil {
		return "", nil, time.Time{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st.StaleSince != nil {
		return ModeDegraded, nil, *a.st.StaleSince
	}
	if mit := a.ms(m).Mitigation; mit != nil {
		return mit.Mode, append([]string(nil), mit.Advisories...), mit.Since
	}
	return ModeNormal, nil, time.Time{}
}

// modeOf is m's mode and the advisories a report carries with it.
func (a *Agent) modeOf(m *module) (string, []string) {
	mode, adv, _ := a.ModuleMode(m.name())
	if mode == ModeNormal {
		adv = nil
	}
	return mode, adv
}

// signedProfiles are the integrator-signed profiles of m's release sha
// (nil: none).
func (a *Agent) signedProfiles(m *module, sha string) *tufrepo.Profiles {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ms(m).Profiles[sha]
}

// setProfiles records the signed profiles of c, staged in m's slots, and
// forgets those of artifacts no longer in a slot.
func (a *Agent) setProfiles(m *module, c Candidate) {
	keep := map[string]bool{c.SHA256: true}
	if st, err := m.slots.State(context.Background()); err == nil {
		for _, meta := range st.Slots {
			keep[meta.SHA256] = true
		}
	}
	a.mu.Lock()
	ms := a.ms(m)
	if ms.Profiles == nil {
		ms.Profiles = map[string]*tufrepo.Profiles{}
	}
	for k := range ms.Profiles {
		if !keep[k] {
			delete(ms.Profiles, k)
		}
	}
	if c.Image.Profiles != nil {
		ms.Profiles[c.SHA256] = c.Image.Profiles
	} else {
		delete(ms.Profiles, c.SHA256)
	}
	if len(ms.Profiles) == 0 {
		ms.Profiles = nil
	}
	err := saveState(a.statePath(), a.st)
	a.mu.Unlock()
	if err != nil {
		a.log.Error("saving state", "err", err)
	}
}

// withData makes the module's data directory writable under p and sets
// the ZTOTA_* variables of mode.
func withData(p sandbox.Profile, data, mode string) *sandbox.Profile {
	if !slices.Contains(p.Writable, data) {
		p.Writable = append(append([]string(nil), p.Writable...), data)
	}
	p.Env = append([]string{"ZTOTA_MODE=" + mode, "ZTOTA_DATA_DIR=" + data}, p.Env...)
	return &p
}

// degradedProfile is the degraded profile of m running sha: the release's
// signed one, else the configured one, else the default. It prepares what
// the unprivileged module needs: the data directory, owned by the
// profile's uid/gid, and search (not read) permission on the agent's
// directories down to the slots.
func (a *Agent) degradedProfile(m *module, sha string) (*sandbox.Profile, error) {
	var p sandbox.Profile
	data := m.dataDir()
	if sp := a.signedProfiles(m, sha); sp != nil && sp.Degraded != nil {
		p = *sp.Degraded
	} else if m.cfg.Degraded != nil {
		p = *m.cfg.Degraded
	} else {
		uid, gid := uint32(defaultDegradedID), uint32(defaultDegradedID)
		if u := m.cfg.DegradedUser; u != nil {
			uid, gid = u.UID, u.GID
		}
		p = sandbox.Degraded(uid, gid, data, a.defaultDegradedLimits(m))
	}
	if err := a.prepareUnprivileged(m, p.UID, p.GID); err != nil {
		return nil, err
	}
	return withData(p, data, ModeDegraded), nil
}

// Default limits of the default degraded profile.
const (
	DegradedMemoryBytes = 256 << 20
	DegradedCPUMillis   = 500 // half a core
	DegradedPids        = 128
)

// defaultDegradedLimits are the cgroup limits of the default degraded
// profile: DegradedMemoryBytes, DegradedCPUMillis and DegradedPids in the
// cgroup "ztota-<device>-<module>-degraded" below the agent's own, where
// the kernel offers the v1 memory, cpu and pids controllers. On a v2
// hierarchy the agent's own cgroup holds the agent itself and cannot
// delegate controllers to a child (the no-internal-process rule), so
// there, as where a controller is missing, the profile has no limits and
// the degraded report names what the kernel lacks; a configured or signed
// degraded profile may still set them (for an agent run in a delegated
// cgroup of its own).
func (a *Agent) defaultDegradedLimits(m *module) sandbox.Limits {
	f := probe()
	if f.Cgroup != "v1" {
		return sandbox.Limits{}
	}
	have := map[string]bool{}
	for _, c := range f.Controllers {
		have[c] = true
	}
	if !have["memory"] || !have["cpu"] || !have["pids"] {
		return sandbox.Limits{}
	}
	return sandbox.Limits{Cgroup: "ztota-" + a.cfg.DeviceID + "-" + m.cfg.Name + "-degraded",
		MemoryBytes: DegradedMemoryBytes, CPUMillis: DegradedCPUMillis, Pids: DegradedPids}
}

// prepareUnprivileged creates m's data directory owned by uid:gid and lets
// that uid traverse the directories from the agent's data directory down
// to m's slots (mode 0711: it can reach the slot and its data, not list
// anything).
func (a *Agent) prepareUnprivileged(m *module, uid, gid uint32) error {
	data := m.dataDir()
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	if err := os.Chown(data, int(uid), int(gid)); err != nil {
		return fmt.Errorf("module data directory: %w", err)
	}
	dirs := []string{a.cfg.DataDir, m.slotsDir()}
	if !m.legacy {
		dirs = append(dirs, filepath.Dir(m.dir), m.dir)
	}
	for _, d := range dirs {
		if err := os.Chmod(d, 0o711); err != nil {
			return err
		}
	}
	return nil
}

// confineFor is how m running the artifact sha is started: under the
// degraded profile when the persisted mode says that artifact is revoked
// (or the stale list policy degrades every module), else under the normal
// profile (the release's signed one, else module.profile; nil:
// unconfined).
func (a *Agent) confineFor(m *module, sha string) (confine, error) {
	a.mu.Lock()
	mit := a.ms(m).Mitigation
	stale := a.st.StaleSince != nil
	a.mu.Unlock()
	if stale || (mit != nil && mit.SHA256 == sha) {
		p, err := a.degradedProfile(m, sha)
		if err != nil {
			return confine{}, fmt.Errorf("degraded profile: %w", err)
		}
		return confine{profile: p, helper: a.cfg.SandboxHelper, stale: stale}, nil
	}
	var p *sandbox.Profile
	if sp := a.signedProfiles(m, sha); sp != nil && sp.Normal != nil {
		p = sp.Normal
	} else {
		p = m.cfg.Profile
	}
	if p != nil {
		if err := a.prepareUnprivileged(m, p.UID, p.GID); err != nil {
			return confine{}, fmt.Errorf("profile: %w", err)
		}
		return confine{profile: withData(*p, m.dataDir(), ModeNormal), helper: a.cfg.SandboxHelper}, nil
	}
	return confine{}, nil
}

// degradedFor reports whether the persisted mode degrades m's artifact sha.
func (a *Agent) degradedFor(m *module, sha string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	mit := a.ms(m).Mitigation
	return mit != nil && mit.Mode == ModeDegraded && mit.SHA256 == sha
}

// mitigationOf is a copy of m's persisted mitigation (nil: normal).
func (a *Agent) mitigationOf(m *module) *mitigation {
	a.mu.Lock()
	defer a.mu.Unlock()
	if mit := a.ms(m).Mitigation; mit != nil {
		c := *mit
		c.Advisories = append([]string(nil), mit.Advisories...)
		return &c
	}
	return nil
}

// setMitigation persists m's mode (nil: normal).
func (a *Agent) setMitigation(m *module, mit *mitigation) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	ms := a.ms(m)
	old := ms.Mitigation
	ms.Mitigation = mit
	if err := saveState(a.statePath(), a.st); err != nil {
		ms.Mitigation = old
		return err
	}
	return nil
}

// degrade restarts m's running artifact cur under the degraded profile,
// after recording the mode, and reports it once; why, if set, says why no
// backup was used. If the confined start fails the module stays stopped
// (a revoked artifact never runs unconfined again), "failed" is reported,
// and the next restart of the module or the agent tries the degraded
// profile again.
func (a *Agent) degrade(ctx context.Context, m *module, cur slot.Meta, l *attest.RevocationList, r *attest.Revocation, why string) {
	if a.degradedFor(m, cur.SHA256) {
		return // already degraded (a restarted agent, a newer list)
	}
	if err := a.setMitigation(m, &mitigation{Mode: ModeDegraded, SHA256: cur.SHA256, Advisories: append([]string(nil), r.Advisories...),
		List: l.Version, Since: time.Now().UTC()}); err != nil {
		a.log.Error("saving the degraded mode", "err", err)
		a.mreport(ctx, m, report.StateFailed, "", cur.Version, 0, "revoked, but the degraded mode could not be saved: "+err.Error())
		return
	}
	if err := a.startActive(ctx, m); err != nil {
		a.log.Error("restarting the module degraded", "module", m.name(), "err", err)
		a.mreport(ctx, m, report.StateFailed, "", cur.Version, 0, "revoked, but the module could not be restarted degraded: "+err.Error())
		return
	}
	detail := fmt.Sprintf("degraded: %s: the running %s (sha256 %s), revoked by revocation list version %d, runs under its degraded profile",
		strings.Join(r.Advisories, " "), cur.Target, cur.SHA256, l.Version)
	if why != "" {
		detail += "; " + why
	}
	if missing := probe().Missing; len(missing) > 0 {
		detail += "; the kernel lacks: " + strings.Join(missing, "; ")
	}
	a.log.Warn("module degraded", "module", m.name(), "target", cur.Target, "advisories", r.Advisories)
	a.mreport(ctx, m, report.StateDegraded, "", cur.Version, 0, detail)
}

// recoverIfFixed clears m's mitigation once the committed artifact is
// neither the revoked one nor the backup, and reports it once.
func (a *Agent) recoverIfFixed(ctx context.Context, m *module, cur slot.Meta) {
	mit := a.mitigationOf(m)
	if mit == nil || mit.SHA256 == cur.SHA256 || (mit.Mode == ModeBackup && mit.Backup == cur.SHA256) {
		return
	}
	if err := a.setMitigation(m, nil); err != nil {
		a.log.Error("saving the normal mode", "err", err)
		return
	}
	a.log.Info("module recovered", "module", m.name(), "target", cur.Target)
	was := "degraded"
	if mit.Mode == ModeBackup {
		was = "on its backup"
	}
	a.mreport(ctx, m, report.StateRecovered, cur.Target, cur.Version, 0,
		fmt.Sprintf("recovered: %s (sha256 %s) runs under its normal profile; it was %s since %s for %s",
			cur.Target, cur.SHA256, was, mit.Since.Format(time.RFC3339), strings.Join(mit.Advisories, " ")))
}
