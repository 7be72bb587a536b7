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
	d, err := store.DeviceTx(ctx, tx, dev)
	if err != nil {
		return err
	}
	if d.Installed != r.Target || d.Assigned == r.Target {
		return nil // an older commit arriving late, or nothing to change
	}
	if owned, err := store.AssignedInRunningTx(ctx, tx, dev); err != nil || owned {
		return err
	}
	rel, err := store.ReleaseTx(ctx, tx, r.Target)
	if errors.Is(err, store.ErrNotFound) {
		if d.Assigned == "" {
			return nil
		}
		return s.assignTx(ctx, tx, d, nil, "") // runs something never released here: list nothing
	}
	if err != nil {
		return err
	}
	s.log.Info("director follows the release the device committed", "device", dev, "target", r.Target, "was", d.Assigned)
	return s.assignTx(ctx, tx, d, &rel, "")
}
