package store

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DeviceKey returns a device's enrolled key and when it was decommissioned
// (zero while active).
func (s *Store) DeviceKey(ctx context.Context, id string) (ed25519.PublicKey, time.Time, error) {
	var pk []byte
	var dc int64
	err := s.db.QueryRowContext(ctx, `SELECT public_key, decommissioned FROM devices WHERE id=?`, id).Scan(&pk, &dc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, fmt.Errorf("%w: device %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	if len(pk) != ed25519.PublicKeySize {
		return nil, time.Time{}, fmt.Errorf("device %s has a malformed key", id)
	}
	return ed25519.PublicKey(pk), optionalTime(dc), nil
}

// DecommissionDeviceTx marks a device decommissioned at now (a device
// already decommissioned keeps its first time) and cancels it in every
// running deployment it has not finished. It returns the device and the
// running deployments it was cancelled in.
func DecommissionDeviceTx(ctx context.Context, tx *sql.Tx, id string, now time.Time) (Device, []string, error) {
	if _, err := tx.ExecContext(ctx, `UPDATE devices SET decommissioned=? WHERE id=? AND decommissioned=0`, unix(now), id); err != nil {
		return Device{}, nil, err
	}
	d, err := DeviceTx(ctx, tx, id)
	if err != nil {
		return d, nil, err
	}
	deps, err := queryAll(ctx, tx, scanString, `SELECT dd.deployment FROM deployment_devices dd JOIN deployments d ON dd.deployment=d.id
		WHERE dd.device_id=? AND d.status=? AND dd.status IN (?, ?) ORDER BY dd.deployment`, id, DeployRunning, DevPending, DevAssigned)
	if err != nil {
		return d, nil, err
	}
	for _, dep := range deps {
		if err := SetDeploymentDeviceTx(ctx, tx, dep, id, DevCancelled); err != nil {
			return d, nil, err
		}
	}
	return d, deps, nil
}

// InterruptedDeploymentsTx returns the halted deployments of target in
// which the device had been assigned the release and was cancelled by the
// halt: a commit or failure the device reports afterwards is its true
// outcome there.
func InterruptedDeploymentsTx(ctx context.Context, tx *sql.Tx, dev, target string) ([]string, error) {
	return queryAll(ctx, tx, scanString, `SELECT d.id FROM deployments d JOIN deployment_devices dd ON dd.deployment=d.id
		WHERE dd.device_id=? AND d.target=? AND d.status=? AND dd.status=? AND dd.assigned_at<>0 ORDER BY d.id`,
		dev, target, DeployHalted, DevCancelled)
}

// AssignedInRunningTx reports whether a running deployment currently
// assigns the device a release (its director belongs to that deployment).
func AssignedInRunningTx(ctx context.Context, tx *sql.Tx, dev string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM deployment_devices dd JOIN deployments d ON dd.deployment=d.id
		WHERE dd.device_id=? AND dd.status=? AND d.status=?`, dev, DevAssigned, DeployRunning).Scan(&n)
	return n > 0, err
}
