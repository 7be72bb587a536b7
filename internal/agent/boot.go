package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ztota/ztota/internal/report"
)

// boot starts the module from the slot the boot decision names. A slot on
// trial (boot-once) is health-checked, then committed, or rolled back and
// the previous slot started again.
func (a *Agent) boot(ctx context.Context) error {
	dec, err := a.slots.Boot(ctx)
	if err != nil {
		return fmt.Errorf("boot: %w", err)
	}
	st, err := a.slots.State(ctx)
	if err != nil {
		return err
	}
	if dec.RolledBack {
		m := st.Slots[dec.From]
		a.markRefused(m.SHA256, dec.Reason)
		a.report(ctx, report.StateRolledBack, m.Target, m.Version, 0, dec.Reason)
	}
	if !dec.Trial {
		return a.startActive(ctx)
	}
	m := dec.Meta
	a.haltAt(StepBooted)
	a.report(ctx, report.StateHealthChecking, m.Target, m.Version, 0, fmt.Sprintf("boot %d of %d", dec.BootCount, st.MaxBoots))
	if err := a.slots.Verify(ctx, dec.Slot); err != nil {
		return a.rollback(ctx, m.Target, m.Version, m.SHA256, "slot contents do not verify: "+err.Error())
	}
	env := a.moduleEnv(dec.Slot, m.Version)
	conf, err := a.confineFor(m.SHA256)
	if err != nil {
		return a.rollback(ctx, m.Target, m.Version, m.SHA256, err.Error())
	}
	p, err := startModule(dec.Dir, a.cfg.Module, a.logPath(), env, conf)
	if err != nil {
		return a.rollback(ctx, m.Target, m.Version, m.SHA256, err.Error())
	}
	if err := healthCheck(ctx, p, dec.Dir, a.cfg.Module.Health, env, filepath.Join(a.cfg.DataDir, "health.out")); err != nil {
		p.stop(5 * time.Second)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return a.rollback(ctx, m.Target, m.Version, m.SHA256, "health check failed: "+err.Error())
	}
	a.haltAt(StepHealthy)
	if err := a.slots.Commit(ctx); err != nil {
		p.stop(5 * time.Second)
		return fmt.Errorf("commit: %w", err)
	}
	// The committed slot's release counter is now the floor: the slot
	// state holding it was written atomically by Commit; state.json keeps
	// the maximum across later rollbacks and is saved next. A crash or a
	// failed save here cannot lower the floor (see floor), but a failed
	// save is still an error.
	a.mu.Lock()
	if m.ReleaseCounter > a.st.Floor {
		a.st.Floor = m.ReleaseCounter
	}
	err = saveState(a.statePath(), a.st)
	a.mu.Unlock()
	a.setProc(p, dec.Dir)
	a.activeBad = false
	a.report(ctx, report.StateCommitted, m.Target, m.Version, 0, "")
	a.recoverIfFixed(ctx, m)
	if err != nil {
		return fmt.Errorf("committed, but saving the release counter floor failed: %w", err)
	}
	a.haltAt(StepCommitted)
	return nil
}

// markRefused adds a final verdict to the persisted refused set.
func (a *Agent) markRefused(sha, why string) {
	a.mu.Lock()
	a.st.Refused[sha] = refusal{Why: why, At: time.Now().UTC()}
	err := saveState(a.statePath(), a.st)
	a.mu.Unlock()
	if err != nil {
		a.log.Error("saving state", "err", err)
	}
}

func (a *Agent) rollback(ctx context.Context, target, version, sha, why string) error {
	a.markRefused(sha, why)
	if err := a.slots.Rollback(ctx, why); err != nil {
		return fmt.Errorf("rollback: %w", err)
	}
	a.report(ctx, report.StateRolledBack, target, version, 0, why)
	return a.startActive(ctx)
}

// startActive (re)starts the module from the committed slot, if there is one.
func (a *Agent) startActive(ctx context.Context) error {
	a.proc.stop(5 * time.Second)
	a.setProc(nil, "")
	st, err := a.slots.State(ctx)
	if err != nil {
		return err
	}
	if st.Active == "" {
		return nil
	}
	m := st.Slots[st.Active]
	dir := a.slots.Dir(st.Active)
	a.recoverIfFixed(ctx, m)
	conf, err := a.confineFor(m.SHA256)
	if err != nil {
		return err
	}
	p, err := startModule(dir, a.cfg.Module, a.logPath(), a.moduleEnv(st.Active, m.Version), conf)
	if err != nil {
		return err
	}
	a.setProc(p, dir)
	return nil
}

func (a *Agent) logPath() string { return filepath.Join(a.cfg.DataDir, "module.log") }

// defaultPath is the module's PATH when the agent has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// moduleEnv is the whole environment of the module and its health
// command: PATH (the agent's, or a default), the ZTOTA_* variables and
// module.env from the configuration, and nothing else of the agent's
// environment (which may hold secrets such as tokens).
func (a *Agent) moduleEnv(slotName, version string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = defaultPath
	}
	env := []string{"PATH=" + path, "ZTOTA_SLOT=" + slotName, "ZTOTA_VERSION=" + version, "ZTOTA_DEVICE=" + a.cfg.DeviceID}
	return append(env, a.cfg.Module.Env...)
}
