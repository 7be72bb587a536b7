package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Deployment statuses.
const (
	DeployRunning   = "running"
	DeployHalted    = "halted"
	DeployCompleted = "completed"
)

// Device statuses within a deployment.
const (
	DevPending   = "pending"   // not yet in an open wave
	DevAssigned  = "assigned"  // director lists the target
	DevCommitted = "committed" // device reported a boot-confirmed commit
	DevFailed    = "failed"    // failed or rolled back
	DevCancelled = "cancelled" // deployment halted before the device got it
)

// Deployment is a release rolled out to devices in waves.
type Deployment struct {
	ID               string    `json:"id"`
	Target           string    `json:"target"`
	Waves            []float64 `json:"waves"` // cumulative percentages, last is 100
	FailureThreshold float64   `json:"failure_threshold"`
	Wave             int       `json:"wave"` // index of the open wave
	Status           string    `json:"status"`
	Reason           string    `json:"reason,omitempty"`
	Created          time.Time `json:"created"`
	Updated          time.Time `json:"updated"`
}

// DeploymentDevice is one device's place in a deployment.
type DeploymentDevice struct {
	DeviceID string `json:"device_id"`
	Wave     int    `json:"wave"`
	Status   string `json:"status"`
}

// CreateDeploymentTx stores a deployment and its devices (all pending).
func CreateDeploymentTx(ctx context.Context, tx *sql.Tx, d Deployment, devs []DeploymentDevice) error {
	w, _ := json.Marshal(d.Waves)
	now := unix(time.Now())
	if _, err := tx.ExecContext(ctx, `INSERT INTO deployments (id, target, waves, failure_threshold, wave, status, created, updated) VALUES (?,?,?,?,?,?,?,?)`,
		d.ID, d.Target, string(w), d.FailureThreshold, d.Wave, d.Status, now, now); err != nil {
		return err
	}
	for i, dd := range devs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO deployment_devices (deployment, device_id, wave, ord, status, updated) VALUES (?,?,?,?,?,?)`,
			d.ID, dd.DeviceID, dd.Wave, i, dd.Status, now); err != nil {
			return err
		}
	}
	return nil
}

const deploymentCols = `id, target, waves, failure_threshold, wave, status, reason, created, updated`

func scanDeployment(sc rowScanner) (Deployment, error) {
	var d Deployment
	var w string
	var c, u int64
	if err := sc.Scan(&d.ID, &d.Target, &w, &d.FailureThreshold, &d.Wave, &d.Status, &d.Reason, &c, &u); err != nil {
		return d, err
	}
	d.Created, d.Updated = time.Unix(c, 0).UTC(), time.Unix(u, 0).UTC()
	return d, json.Unmarshal([]byte(w), &d.Waves)
}

// DeploymentTx reads one deployment.
func DeploymentTx(ctx context.Context, q execer, id string) (Deployment, error) {
	d, err := scanDeployment(q.QueryRowContext(ctx, `SELECT `+deploymentCols+` FROM deployments WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("%w: deployment %s", ErrNotFound, id)
	}
	return d, err
}

// Deployment reads one deployment.
func (s *Store) Deployment(ctx context.Context, id string) (Deployment, error) {
	return DeploymentTx(ctx, s.db, id)
}

// Deployments lists deployments, newest first.
func (s *Store) Deployments(ctx context.Context) ([]Deployment, error) {
	return queryAll(ctx, s.db, scanDeployment, `SELECT `+deploymentCols+` FROM deployments ORDER BY created DESC, id`)
}

// UpdateDeploymentTx saves wave, status and reason.
func UpdateDeploymentTx(ctx context.Context, tx *sql.Tx, d Deployment) error {
	_, err := tx.ExecContext(ctx, `UPDATE deployments SET wave=?, status=?, reason=?, updated=? WHERE id=?`, d.Wave, d.Status, d.Reason, unix(time.Now()), d.ID)
	return err
}

// DeploymentDevicesTx lists a deployment's devices in rollout order.
func DeploymentDevicesTx(ctx context.Context, tx querier, id string) ([]DeploymentDevice, error) {
	return queryAll(ctx, tx, func(sc rowScanner) (DeploymentDevice, error) {
		var d DeploymentDevice
		err := sc.Scan(&d.DeviceID, &d.Wave, &d.Status)
		return d, err
	}, `SELECT device_id, wave, status FROM deployment_devices WHERE deployment=? ORDER BY ord`, id)
}

// DeploymentDevices lists a deployment's devices.
func (s *Store) DeploymentDevices(ctx context.Context, id string) ([]DeploymentDevice, error) {
	return DeploymentDevicesTx(ctx, s.db, id)
}

// SetDeploymentDeviceTx sets one device's status in a deployment.
func SetDeploymentDeviceTx(ctx context.Context, tx *sql.Tx, dep, dev, status string) error {
	now := unix(time.Now())
	_, err := tx.ExecContext(ctx, `UPDATE deployment_devices SET status=?, updated=?,
		assigned_at=CASE WHEN ?=? AND assigned_at=0 THEN ? ELSE assigned_at END WHERE deployment=? AND device_id=?`,
		status, now, status, DevAssigned, now, dep, dev)
	return err
}

// ActiveDeploymentsForDeviceTx returns running deployments in which the
// device is assigned the given target.
func ActiveDeploymentsForDeviceTx(ctx context.Context, tx *sql.Tx, dev, target string) ([]string, error) {
	return queryAll(ctx, tx, scanString, `SELECT d.id FROM deployments d JOIN deployment_devices dd ON dd.deployment=d.id
		WHERE dd.device_id=? AND d.target=? AND dd.status=? AND d.status=?`, dev, target, DevAssigned, DeployRunning)
}
