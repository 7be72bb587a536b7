package server

import (
	"context"
	"database/sql"
	"errors"

	"github.com/ztota/ztota/internal/store"
)

// lateOutcomeTx accounts for a device that finishes a release after its
// deployment halted (it was mid-install when the halt came):
//
//   - in every halted deployment of that release in which the device had
//     been assigned it and was cancelled by the halt, the device's true
//     outcome (committed or failed) replaces "cancelled";
//   - on a commit that is the device's newest (its installed target), a
//     director that lists anything else is pointed at what the device now
//     runs, unless a running deployment assigns the device a release: the halt pointed
//     it back at the release it ran before, which the agent would refuse
//     as a rollback.
func (s *Server) lateOutcomeTx(ctx context.Context, tx *sql.Tx, dev string, r store.Report, status string) error {
	deps, err := store.InterruptedDeploymentsTx(ctx, tx, dev, r.Target)
	if err != nil {
		return err
	}
	for _, id := range deps {
		if err := store.SetDeploymentDeviceTx(ctx, tx, id, dev, status); err != nil {
			return err
		}
		s.log.Info("device finished a release after its deployment halted", "deployment", id, "device", dev, "status", status)
	}
	if status != store.DevCommitted {
		return nil
	}
	module := r.Module
	rel, err := store.ReleaseTx(ctx, tx, r.Target)
	known := err == nil
	switch {
	case known:
		module = rel.Module
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	if module == "" {
		return nil // no module known: nothing the director lists can follow it
	}
	m, err := store.DeviceModuleTx(ctx, tx, dev, module)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if m.Release != r.Target || m.Assigned == r.Target {
		return nil // an older commit arriving late, or nothing to change
	}
	if owned, err := store.AssignedInRunningModuleTx(ctx, tx, dev, module); err != nil || owned {
		return err
	}
	d, err := store.DeviceTx(ctx, tx, dev)
	if err != nil {
		return err
	}
	if !known {
		if m.Assigned == "" {
			return nil
		}
		return s.assignModuleTx(ctx, tx, d, module, nil, "") // runs something never released here: list nothing
	}
	s.log.Info("director follows the release the device committed", "device", dev, "module", module, "target", r.Target, "was", m.Assigned)
	return s.assignModuleTx(ctx, tx, d, module, &rel, "")
}
