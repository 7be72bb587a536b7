package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A device runs one release per module. device_modules keeps, per device
// and module, the release the device last committed (installed), the one
// the director lists (assigned) with the deployment that assigned it, the
// module's mode after the device's mitigation reports (normal, backup,
// degraded) with the advisories why and since when, and the last report
// about the module.
//
// devices.installed and devices.assigned stay written for old readers:
// the target of the device's newest commit, and the most recently
// assigned target of any module.
const deviceModulesTable = `
CREATE TABLE IF NOT EXISTS device_modules (
	device_id TEXT NOT NULL, module TEXT NOT NULL,
	installed TEXT NOT NULL DEFAULT '', assigned TEXT NOT NULL DEFAULT '',
	deployment TEXT NOT NULL DEFAULT '', mode TEXT NOT NULL DEFAULT 'normal',
	advisories TEXT NOT NULL DEFAULT '', mode_since INTEGER NOT NULL DEFAULT 0,
	mode_since_device INTEGER NOT NULL DEFAULT 0, last_state TEXT NOT NULL DEFAULT '',
	last_report INTEGER NOT NULL DEFAULT 0, last_seq INTEGER NOT NULL DEFAULT 0,
	updated INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (device_id, module));
CREATE INDEX IF NOT EXISTS device_modules_installed ON device_modules (installed);
`

// Modes of a device's module (the report package's modes).
const (
	ModeNormal   = "normal"
	ModeBackup   = "backup"
	ModeDegraded = "degraded"
)

// DeviceModule is one module of a device.
type DeviceModule struct {
	Module string `json:"module"`
	// Release is the target the device last committed for the module and
	// Version its version ("" when it is not a release of this server).
	Release string `json:"release"`
	Version string `json:"version,omitempty"`
	// Assigned is the target the director lists for the module, and
	// Deployment the deployment that assigned it.
	Assigned   string `json:"assigned"`
	Deployment string `json:"deployment,omitempty"`
	// Mode is normal, backup or degraded; Why the advisory ids the device
	// named; Since when the server received the report that set them
	// (the authority) and SinceDevice the device's own time of it.
	Mode        string    `json:"mode"`
	Why         []string  `json:"why"`
	Since       time.Time `json:"since,omitzero"`
	SinceDevice time.Time `json:"since_device,omitzero"`
	// LastState is the state of the newest report about the module and
	// LastReport when the server received it.
	LastState  string    `json:"last_state,omitempty"`
	LastReport time.Time `json:"last_report,omitzero"`
}

// migrateDeviceModules creates device_modules once: a database made
// before it gets the table filled from devices.installed/assigned, each
// by its release's module (an installed target that is no release here,
// a factory image say, has no module and is left out).
func migrateDeviceModules(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='device_modules'`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, deviceModulesTable); err != nil {
		return fmt.Errorf("migrating the database: device_modules: %w", err)
	}
	type old struct {
		id, installed, assigned, state string
		lastSeen, seq                  int64
	}
	devs, err := queryAll(ctx, tx, func(sc rowScanner) (old, error) {
		var o old
		return o, sc.Scan(&o.id, &o.installed, &o.assigned, &o.state, &o.lastSeen, &o.seq)
	}, `SELECT id, installed, assigned, state, last_seen, last_seq FROM devices WHERE installed<>'' OR assigned<>''`)
	if err != nil {
		return err
	}
	moduleOf := func(target string) string {
		var m string
		if target == "" || tx.QueryRowContext(ctx, `SELECT module FROM releases WHERE target=?`, target).Scan(&m) != nil {
			return ""
		}
		return m
	}
	now := time.Now().UnixMilli()
	for _, d := range devs {
		mi, ma := moduleOf(d.installed), moduleOf(d.assigned)
		put := func(module, installed, assigned string) error {
			dep := ""
			if assigned != "" {
				// The deployment the director names for the assigned
				// target, kept when it is re-signed.
				tx.QueryRowContext(ctx, `SELECT dd.deployment FROM deployment_devices dd JOIN deployments dp ON dp.id=dd.deployment
					WHERE dd.device_id=? AND dp.target=? AND dd.assigned_at<>0 ORDER BY dd.assigned_at DESC LIMIT 1`, d.id, assigned).Scan(&dep)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO device_modules (device_id, module, installed, assigned, deployment, last_state, last_report, last_seq, updated)
				VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (device_id, module) DO UPDATE SET
				installed=CASE WHEN excluded.installed<>'' THEN excluded.installed ELSE installed END,
				assigned=CASE WHEN excluded.assigned<>'' THEN excluded.assigned ELSE assigned END,
				deployment=CASE WHEN excluded.assigned<>'' THEN excluded.deployment ELSE deployment END`,
				d.id, module, installed, assigned, dep, d.state, d.lastSeen*1000, d.seq, now)
			return err
		}
		if mi != "" {
			if err := put(mi, d.installed, ""); err != nil {
				return err
			}
		}
		if ma != "" {
			if err := put(ma, "", d.assigned); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

const deviceModuleCols = `m.module, m.installed, COALESCE(r.version, ''), m.assigned, m.deployment, m.mode, m.advisories,
	m.mode_since, m.mode_since_device, m.last_state, m.last_report`

const deviceModuleFrom = ` FROM device_modules m LEFT JOIN releases r ON r.target = m.installed`

func scanDeviceModule(sc rowScanner) (DeviceModule, error) {
	var m DeviceModule
	var adv string
	var since, sinceDev, last int64
	if err := sc.Scan(&m.Module, &m.Release, &m.Version, &m.Assigned, &m.Deployment, &m.Mode, &adv, &since, &sinceDev, &m.LastState, &last); err != nil {
		return m, err
	}
	m.Why = splitAdvisories(adv)
	m.Since, m.SinceDevice, m.LastReport = optionalMilli(since), optionalMilli(sinceDev), optionalMilli(last)
	return m, nil
}

func optionalMilli(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// splitAdvisories splits a report's comma-separated advisory ids.
func splitAdvisories(s string) []string {
	out := []string{}
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// DeviceModulesTx lists a device's modules by name.
func DeviceModulesTx(ctx context.Context, q querier, dev string) ([]DeviceModule, error) {
	return queryAll(ctx, q, scanDeviceModule, `SELECT `+deviceModuleCols+deviceModuleFrom+` WHERE m.device_id=? ORDER BY m.module`, dev)
}

// DeviceModules lists a device's modules by name.
func (s *Store) DeviceModules(ctx context.Context, dev string) ([]DeviceModule, error) {
	return DeviceModulesTx(ctx, s.db, dev)
}

// AllDeviceModules returns the modules of every device, by device id.
func (s *Store) AllDeviceModules(ctx context.Context) (map[string][]DeviceModule, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT m.device_id, `+deviceModuleCols+deviceModuleFrom+` ORDER BY m.device_id, m.module`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]DeviceModule{}
	for rows.Next() {
		var dev string
		m, err := scanDeviceModule(scanPrefix{rows, &dev})
		if err != nil {
			return nil, err
		}
		out[dev] = append(out[dev], m)
	}
	return out, rows.Err()
}

// scanPrefix scans a leading column into first and the rest with Scan.
type scanPrefix struct {
	sc    rowScanner
	first *string
}

func (p scanPrefix) Scan(dest ...any) error { return p.sc.Scan(append([]any{p.first}, dest...)...) }

// DeviceModuleTx returns one module of a device, ErrNotFound when the
// device has no release of it.
func DeviceModuleTx(ctx context.Context, q execer, dev, module string) (DeviceModule, error) {
	m, err := scanDeviceModule(q.QueryRowContext(ctx, `SELECT `+deviceModuleCols+deviceModuleFrom+` WHERE m.device_id=? AND m.module=?`, dev, module))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("%w: device %s has no module %s", ErrNotFound, dev, module)
	}
	return m, err
}

// SetModuleAssignedTx records the target the director lists for one
// module of a device ("" for none) and the deployment that assigned it,
// leaving the device's other modules as they are. devices.assigned (for
// old readers) becomes the target, or, when the module is cleared,
// another module's assigned target.
func SetModuleAssignedTx(ctx context.Context, tx execer, dev, module, target, deployment string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO device_modules (device_id, module, assigned, deployment, updated) VALUES (?,?,?,?,?)
		ON CONFLICT (device_id, module) DO UPDATE SET assigned=excluded.assigned, deployment=excluded.deployment, updated=excluded.updated`,
		dev, module, target, deployment, time.Now().UnixMilli()); err != nil {
		return err
	}
	return syncAssignedTx(ctx, tx, dev, target)
}

// ClearAssignedTx makes the director list nothing for any module of dev.
func ClearAssignedTx(ctx context.Context, tx execer, dev string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE device_modules SET assigned='', deployment='', updated=? WHERE device_id=? AND assigned<>''`,
		time.Now().UnixMilli(), dev); err != nil {
		return err
	}
	return SetAssignedTx(ctx, tx, dev, "")
}

func syncAssignedTx(ctx context.Context, tx execer, dev, target string) error {
	if target == "" {
		var other string
		err := tx.QueryRowContext(ctx, `SELECT assigned FROM device_modules WHERE device_id=? AND assigned<>'' ORDER BY updated DESC, module LIMIT 1`, dev).Scan(&other)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		target = other
	}
	return SetAssignedTx(ctx, tx, dev, target)
}

// AssignedTargetsTx lists, by module, the targets the director lists
// for a device, with the deployment of each.
func AssignedTargetsTx(ctx context.Context, q querier, dev string) ([]DeviceModule, error) {
	ms, err := DeviceModulesTx(ctx, q, dev)
	if err != nil {
		return nil, err
	}
	out := ms[:0]
	for _, m := range ms {
		if m.Assigned != "" {
			out = append(out, m)
		}
	}
	return out, nil
}

// ModeOf returns the mode a report sets on its module: its mode field
// when present, else the mode its state implies ("" when it implies none).
func ModeOf(r Report) string {
	if r.Mode != "" {
		return r.Mode
	}
	switch r.State {
	case "degraded":
		return ModeDegraded
	case "on-backup":
		return ModeBackup
	case "recovered":
		return ModeNormal
	}
	return ""
}

// UpdateModuleStatusTx applies a device's report about one module: the
// newest report's state and time, on "committed" and "on-backup" (the
// backup runs) the installed release (creating the module's row), and the mode, advisories and since from
// the mitigation states (or any report that carries a mode). A report
// older (by sequence number) than the module's newest changes nothing.
// received is the server's receive time, the authority for "since".
func UpdateModuleStatusTx(ctx context.Context, tx *sql.Tx, dev, module string, r Report, received time.Time) error {
	ms := received.UTC().UnixMilli()
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO device_modules (device_id, module, updated) VALUES (?,?,?)`, dev, module, ms); err != nil {
		return err
	}
	var lastSeq int64
	var mode, adv string
	if err := tx.QueryRowContext(ctx, `SELECT last_seq, mode, advisories FROM device_modules WHERE device_id=? AND module=?`, dev, module).Scan(&lastSeq, &mode, &adv); err != nil {
		return err
	}
	if int64(r.Seq) < lastSeq {
		return nil // an older report arriving late
	}
	if _, err := tx.ExecContext(ctx, `UPDATE device_modules SET last_state=?, last_report=?, last_seq=?, updated=? WHERE device_id=? AND module=?`,
		r.State, ms, r.Seq, ms, dev, module); err != nil {
		return err
	}
	// A commit installs its target; so does "on-backup" (the backup
	// committed and runs), whose target is the backup release.
	if (r.State == "committed" || r.State == "on-backup") && r.Target != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE device_modules SET installed=? WHERE device_id=? AND module=?`, r.Target, dev, module); err != nil {
			return err
		}
	}
	newMode, newAdv := mode, adv
	if m := ModeOf(r); m != "" {
		newMode = m
	}
	if r.Advisories != "" {
		newAdv = strings.Join(splitAdvisories(r.Advisories), ",")
	} else if ModeOf(r) == ModeNormal {
		newAdv = "" // back to normal: no reason left
	}
	if newMode == mode && newAdv == adv {
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE device_modules SET mode=?, advisories=?, mode_since=?, mode_since_device=? WHERE device_id=? AND module=?`,
		newMode, newAdv, ms, r.Time.UTC().UnixMilli(), dev, module)
	return err
}

// TouchDeviceTx records that a device was seen by a report that changes
// nothing else (its state is not the device's): the last-seen time and
// the newest sequence number.
func TouchDeviceTx(ctx context.Context, tx *sql.Tx, id string, r Report, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE devices SET last_seen=?, last_seq=MAX(last_seq, ?) WHERE id=?`, unix(now), r.Seq, id)
	return err
}

// BusyModuleDevicesTx returns, for each of the given devices that still
// waits for or runs through a running deployment of a release of module,
// that deployment's id. A device may be in one running deployment per
// module.
func BusyModuleDevicesTx(ctx context.Context, tx *sql.Tx, devices []string, module string) (map[string]string, error) {
	busy := map[string]string{}
	rows, err := tx.QueryContext(ctx, `SELECT dd.device_id, d.id FROM deployment_devices dd JOIN deployments d ON dd.deployment=d.id
		JOIN releases r ON r.target=d.target
		WHERE d.status=? AND dd.status IN (?, ?) AND r.module=?`, DeployRunning, DevPending, DevAssigned, module)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	want := make(map[string]bool, len(devices))
	for _, d := range devices {
		want[d] = true
	}
	for rows.Next() {
		var dev, dep string
		if err := rows.Scan(&dev, &dep); err != nil {
			return nil, err
		}
		if want[dev] {
			busy[dev] = dep
		}
	}
	return busy, rows.Err()
}

// AssignedInRunningModuleTx reports whether a running deployment of a
// release of module currently assigns the device that release.
func AssignedInRunningModuleTx(ctx context.Context, tx *sql.Tx, dev, module string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM deployment_devices dd JOIN deployments d ON dd.deployment=d.id
		JOIN releases r ON r.target=d.target
		WHERE dd.device_id=? AND dd.status=? AND d.status=? AND r.module=?`, dev, DevAssigned, DeployRunning, module).Scan(&n)
	return n > 0, err
}
