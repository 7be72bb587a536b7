package agent

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ztota/ztota/internal/report"
)

// boot starts module m from the slot the boot decision names. A slot on
// trial (boot-once) is health-checked, then committed, or rolled back and
// the previous slot started again.
func (a *Agent) boot(ctx context.Context, m *module) error {
	dec, err := m.slots.Boot(ctx)
	if err != nil {
		return fmt.Errorf("boot: %w", err)
	}
	st, err := m.slots.State(ctx)
	if err != nil {
		return err
	}
	if dec.RolledBack {
		from := st.Slots[dec.From]
		a.markRefused(m, from.SHA256, dec.Reason)
		a.mreport(ctx, m, report.StateRolledBack, from.Target, from.Version, 0, dec.Reason)
	}
	if !dec.Trial {
		return a.startActive(ctx, m)
	}
	meta := dec.Meta
	a.haltAt(StepBooted)
	a.mreport(ctx, m, report.StateHealthChecking, meta.Target, meta.Version, 0, fmt.Sprintf("boot %d of %d", dec.BootCount, st.MaxBoots))
	if err := m.slots.Verify(ctx, dec.Slot); err != nil {
		return a.rollback(ctx, m, meta.Target, meta.Version, meta.SHA256, "slot contents do not verify: "+err.Error())
	}
	env := a.moduleEnv(m, dec.Slot, meta.Version)
	conf, err := a.confineFor(m, meta.SHA256)
	if err != nil {
		return a.rollback(ctx, m, meta.Target, meta.Version, meta.SHA256, err.Error())
	}
	p, err := startModule(dec.Dir, *m.cfg, m.logPath(), env, conf)
	if err != nil {
		return a.rollback(ctx, m, meta.Target, meta.Version, meta.SHA256, err.Error())
	}
	if err := healthCheck(ctx, p, dec.Dir, m.cfg.Health, env, m.healthOut()); err != nil {
		p.stop(5 * time.Second)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return a.rollback(ctx, m, meta.Target, meta.Version, meta.SHA256, "health check failed: "+err.Error())
	}
	a.haltAt(StepHealthy)
	if err := m.slots.Commit(ctx); err != nil {
		p.stop(5 * time.Second)
		return fmt.Errorf("commit: %w", err)
	}
	// The committed slot's release counter is now the floor: the slot
	// state holding it was written atomically by Commit; state.json keeps
	// the maximum across later rollbacks and is saved next. A crash or a
	// failed save here cannot lower the floor (see floor), but a failed
	// save is still an error. A designated backup (lower counter) leaves
	// the floor where it is.
	a.mu.Lock()
	if ms := a.ms(m); meta.ReleaseCounter > ms.Floor {
		ms.Floor = meta.ReleaseCounter
	}
	err = saveState(a.statePath(), a.st)
	a.mu.Unlock()
	a.setProc(m, p, dec.Dir)
	m.stale = conf.stale
	m.activeBad = false
	a.mreport(ctx, m, report.StateCommitted, meta.Target, meta.Version, 0, "")
	a.recoverIfFixed(ctx, m, meta)
	if err != nil {
		return fmt.Errorf("committed, but saving the release counter floor failed: %w", err)
	}
	a.haltAt(StepCommitted)
	return nil
}

// markRefused adds a final verdict to m's persisted refused set.
func (a *Agent) markRefused(m *module, sha, why string) {
	a.mu.Lock()
	a.ms(m).Refused[sha] = refusal{Why: why, At: time.Now().UTC()}
	err := saveState(a.statePath(), a.st)
	a.mu.Unlock()
	if err != nil {
		a.log.Error("saving state", "err", err)
	}
}

func (a *Agent) rollback(ctx context.Context, m *module, target, version, sha, why string) error {
	a.markRefused(m, sha, why)
	if err := m.slots.Rollback(ctx, why); err != nil {
		return fmt.Errorf("rollback: %w", err)
	}
	a.mreport(ctx, m, report.StateRolledBack, target, version, 0, why)
	return a.startActive(ctx, m)
}

// startActive (re)starts module m from its committed slot, if there is one.
func (a *Agent) startActive(ctx context.Context, m *module) error {
	a.stopModule(m)
	st, err := m.slots.State(ctx)
	if err != nil {
		return err
	}
	if st.Active == "" {
		return nil
	}
	cur := st.Slots[st.Active]
	dir := m.slots.Dir(st.Active)
	a.recoverIfFixed(ctx, m, cur)
	conf, err := a.confineFor(m, cur.SHA256)
	if err != nil {
		return err
	}
	p, err := startModule(dir, *m.cfg, m.logPath(), a.moduleEnv(m, st.Active, cur.Version), conf)
	if err != nil {
		return err
	}
	a.setProc(m, p, dir)
	m.stale = conf.stale
	return nil
}

// defaultPath is the module's PATH when the agent has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// moduleEnv is the whole environment of the module and its health
// command: PATH (the agent's, or a default), the ZTOTA_* variables and
// module.env from the configuration, and nothing else of the agent's
// environment (which may hold secrets such as tokens).
func (a *Agent) moduleEnv(m *module, slotName, version string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = defaultPath
	}
	env := []string{"PATH=" + path, "ZTOTA_SLOT=" + slotName, "ZTOTA_VERSION=" + version, "ZTOTA_DEVICE=" + a.cfg.DeviceID}
	if !m.legacy {
		env = append(env, "ZTOTA_MODULE="+m.name())
	}
	return append(env, m.cfg.Env...)
}
