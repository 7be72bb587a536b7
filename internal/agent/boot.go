package agent

import (
	"context"
	"fmt"
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
	p, err := startModule(dec.Dir, a.cfg.Module, a.logPath(), a.moduleEnv(dec.Slot, m.Version))
	if err != nil {
		return a.rollback(ctx, m.Target, m.Version, m.SHA256, err.Error())
	}
	if err := healthCheck(ctx, p, dec.Dir, a.cfg.Module.Health); err != nil {
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
	a.mu.Lock()
	if m.ReleaseCounter > a.st.Floor {
		a.st.Floor = m.ReleaseCounter
	}
	err = saveState(a.statePath(), a.st)
	a.mu.Unlock()
	if err != nil {
		a.log.Error("saving state", "err", err)
	}
	a.setProc(p, dec.Dir)
	a.activeBad = false
	a.report(ctx, report.StateCommitted, m.Target, m.Version, 0, "")
	a.haltAt(StepCommitted)
	return nil
}

func (a *Agent) markRefused(sha, why string) {
	a.mu.Lock()
	a.st.Refused[sha] = why
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
	p, err := startModule(dir, a.cfg.Module, a.logPath(), a.moduleEnv(st.Active, m.Version))
	if err != nil {
		return err
	}
	a.setProc(p, dir)
	return nil
}

func (a *Agent) logPath() string { return filepath.Join(a.cfg.DataDir, "module.log") }

func (a *Agent) moduleEnv(slotName, version string) []string {
	return []string{"ZTOTA_SLOT=" + slotName, "ZTOTA_VERSION=" + version, "ZTOTA_DEVICE=" + a.cfg.DeviceID}
}
