package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// addedTables are the tables added after the first schema, created at
// Open by migrate (idempotent statements, oldest first).
var addedTables = []string{mitigationTables, autofixTables}

// mitigationTables hold what the server does when the certifier revokes
// an artifact: the certifier feed's cursor, one mitigation per affected
// device, one repair request per artifact.
const mitigationTables = `
CREATE TABLE IF NOT EXISTS feed_cursor (
	source TEXT PRIMARY KEY, seq INTEGER NOT NULL, updated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS repairs (
	id INTEGER PRIMARY KEY AUTOINCREMENT, artifact TEXT NOT NULL, releases TEXT NOT NULL,
	advisories TEXT NOT NULL, devices INTEGER NOT NULL, reason TEXT NOT NULL,
	event_seq INTEGER NOT NULL, opened INTEGER NOT NULL, updated INTEGER NOT NULL,
	state TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS repairs_open ON repairs (artifact) WHERE state = 'open';
CREATE TABLE IF NOT EXISTS mitigations (
	id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, artifact TEXT NOT NULL,
	target TEXT NOT NULL, advisories TEXT NOT NULL, repair INTEGER NOT NULL,
	event_seq INTEGER NOT NULL, opened INTEGER NOT NULL, state TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS mitigations_open ON mitigations (device_id, artifact) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS mitigations_state ON mitigations (state, id);
`

// States of mitigations and repair requests.
const (
	MitigationOpen = "open"
	RepairOpen     = "open"
	// MitigationClosed: the device reported running the fix.
	MitigationClosed = "closed"
	// MitigationAbandoned: the device was decommissioned while mitigated.
	MitigationAbandoned = "abandoned"
	// RepairClosed: no mitigation of the repair request is open any more.
	RepairClosed = "closed"
)

// FeedCertd is the feed_cursor source of the certifier's event feed.
const FeedCertd = "certd"

// Mitigation is what the server recorded for one device running a
// revoked (or failing) artifact.
type Mitigation struct {
	ID         int64     `json:"id"`
	DeviceID   string    `json:"device"`
	Artifact   string    `json:"artifact"` // hex sha256
	Target     string    `json:"target"`   // the release the device runs
	Advisories []string  `json:"advisories"`
	Repair     int64     `json:"repair"`    // the repair request's id
	EventSeq   int64     `json:"event_seq"` // the certifier event that opened it
	Opened     time.Time `json:"opened"`
	State      string    `json:"state"`
	// FixDeployment is the deployment the server created to give the
	// device the fix ("" when none yet).
	FixDeployment string `json:"fix_deployment,omitempty"`
	// Closed is when the mitigation closed, and ClosedBy the release the
	// device reported running then (closed) or "" (abandoned).
	Closed   time.Time `json:"closed,omitzero"`
	ClosedBy string    `json:"closed_by,omitempty"`
	// Timeline is what the device reported about the mitigation since it
	// was opened (filled by the server's views).
	Timeline []TimelineEntry `json:"timeline,omitempty"`
}

// Repair is a repair request to the integrator: an artifact the certifier
// revoked (or found failing), its releases and the affected devices.
type Repair struct {
	ID         int64     `json:"id"`
	Artifact   string    `json:"artifact"`
	Releases   []string  `json:"releases"`
	Advisories []string  `json:"advisories"`
	Devices    int       `json:"devices"` // affected device count
	Reason     string    `json:"reason"`
	EventSeq   int64     `json:"event_seq"`
	Opened     time.Time `json:"opened"`
	Updated    time.Time `json:"updated"`
	State      string    `json:"state"`
	// FixRelease and Deployment are the release the server rolled out as
	// the fix and its first deployment ("" when none yet).
	FixRelease string    `json:"fix_release,omitempty"`
	Deployment string    `json:"deployment,omitempty"`
	FixTime    time.Time `json:"fix_time,omitzero"`
	Closed     time.Time `json:"closed,omitzero"`
	// Open and ClosedCount count its mitigations by state (closed or
	// abandoned count as closed).
	Open        int `json:"open"`
	ClosedCount int `json:"closed_count"`
}

// FeedCursorTx returns the last event sequence number acted on from
// source (0: none yet).
func FeedCursorTx(ctx context.Context, q execer, source string) (int64, error) {
	var seq int64
	err := q.QueryRowContext(ctx, `SELECT seq FROM feed_cursor WHERE source=?`, source).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return seq, err
}

// FeedCursor is FeedCursorTx outside a transaction.
func (s *Store) FeedCursor(ctx context.Context, source string) (int64, error) {
	return FeedCursorTx(ctx, s.db, source)
}

// ErrCursorBehind is an attempt to move a feed cursor backwards or to
// act on an event at or below it.
var ErrCursorBehind = errors.New("event at or below the feed cursor")

// AdvanceFeedCursorTx moves source's cursor to seq, which must be above
// it; in the same transaction as what the event caused, it makes acting
// on an event at most once.
func AdvanceFeedCursorTx(ctx context.Context, tx *sql.Tx, source string, seq int64, now time.Time) error {
	cur, err := FeedCursorTx(ctx, tx, source)
	if err != nil {
		return err
	}
	if seq <= cur {
		return fmt.Errorf("%w: event %d, cursor %d", ErrCursorBehind, seq, cur)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO feed_cursor (source, seq, updated) VALUES (?,?,?)
		ON CONFLICT (source) DO UPDATE SET seq=excluded.seq, updated=excluded.updated`, source, seq, unix(now))
	return err
}

// AffectedDevice is a module of a device whose installed release has
// some artifact.
type AffectedDevice struct {
	DeviceID string
	Module   string
	Target   string
}

// DevicesRunningTx lists the modules of active devices whose installed
// (last committed) release's artifact has sha256 sha, by device id and
// module.
func DevicesRunningTx(ctx context.Context, tx querier, sha string) ([]AffectedDevice, error) {
	return queryAll(ctx, tx, func(sc rowScanner) (AffectedDevice, error) {
		var a AffectedDevice
		return a, sc.Scan(&a.DeviceID, &a.Module, &a.Target)
	}, `SELECT m.device_id, m.module, m.installed FROM device_modules m JOIN devices d ON d.id = m.device_id
		JOIN releases r ON r.target = m.installed
		WHERE r.sha256 = ? AND d.decommissioned = 0 ORDER BY m.device_id, m.module`, sha)
}

// ReleasesOfTx lists the release targets whose artifact has sha256 sha.
func ReleasesOfTx(ctx context.Context, tx querier, sha string) ([]string, error) {
	return queryAll(ctx, tx, scanString, `SELECT target FROM releases WHERE sha256 = ? ORDER BY target`, sha)
}

// RunningDeploymentsOfTx lists the running deployments of releases whose
// artifact has sha256 sha.
func RunningDeploymentsOfTx(ctx context.Context, tx querier, sha string) ([]string, error) {
	return queryAll(ctx, tx, scanString, `SELECT id FROM deployments WHERE status = ? AND target IN
		(SELECT target FROM releases WHERE sha256 = ?) ORDER BY id`, DeployRunning, sha)
}

// OpenRepairTx opens a repair request for r.Artifact, or, when one is
// already open for it, merges r's advisories, releases and device count
// into it. It returns the request's id and whether it is new.
func OpenRepairTx(ctx context.Context, tx *sql.Tx, r Repair, now time.Time) (int64, bool, error) {
	var id int64
	var rels, adv string
	var devs int
	err := tx.QueryRowContext(ctx, `SELECT id, releases, advisories, devices FROM repairs WHERE artifact=? AND state=?`,
		r.Artifact, RepairOpen).Scan(&id, &rels, &adv, &devs)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		res, err := tx.ExecContext(ctx, `INSERT INTO repairs (artifact, releases, advisories, devices, reason, event_seq, opened, updated, state)
			VALUES (?,?,?,?,?,?,?,?,?)`, r.Artifact, jsonList(r.Releases), jsonList(r.Advisories), r.Devices, r.Reason,
			r.EventSeq, unix(now), unix(now), RepairOpen)
		if err != nil {
			return 0, false, err
		}
		id, err = res.LastInsertId()
		return id, true, err
	case err != nil:
		return 0, false, err
	}
	var oldRels, oldAdv []string
	if err := json.Unmarshal([]byte(rels), &oldRels); err != nil {
		return 0, false, err
	}
	if err := json.Unmarshal([]byte(adv), &oldAdv); err != nil {
		return 0, false, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE repairs SET releases=?, advisories=?, devices=?, updated=? WHERE id=?`,
		jsonList(union(oldRels, r.Releases)), jsonList(union(oldAdv, r.Advisories)), max(devs, r.Devices), unix(now), id)
	return id, false, err
}

// OpenMitigationTx records an open mitigation unless one is already open
// for the same device and artifact; it reports whether it added one.
func OpenMitigationTx(ctx context.Context, tx *sql.Tx, m Mitigation, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO mitigations (device_id, artifact, target, advisories, repair, event_seq, opened, state)
		VALUES (?,?,?,?,?,?,?,?)`, m.DeviceID, m.Artifact, m.Target, jsonList(m.Advisories), m.Repair, m.EventSeq, unix(now), MitigationOpen)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

const mitigationCols = `m.id, m.device_id, m.artifact, m.target, m.advisories, m.repair, m.event_seq, m.opened, m.state,
	COALESCE(f.deployment, ''), COALESCE(f.closed, 0), COALESCE(f.closed_by, '')`

// mitigationFrom is the FROM clause that goes with mitigationCols.
const mitigationFrom = ` FROM mitigations m LEFT JOIN mitigation_fix f ON f.mitigation = m.id `

func scanMitigation(sc rowScanner) (Mitigation, error) {
	var m Mitigation
	var adv string
	var opened, closed int64
	if err := sc.Scan(&m.ID, &m.DeviceID, &m.Artifact, &m.Target, &adv, &m.Repair, &m.EventSeq, &opened, &m.State,
		&m.FixDeployment, &closed, &m.ClosedBy); err != nil {
		return m, err
	}
	m.Opened, m.Closed = time.Unix(opened, 0).UTC(), optionalTime(closed)
	return m, json.Unmarshal([]byte(adv), &m.Advisories)
}

// MitigationFilter selects mitigations; empty fields match everything.
type MitigationFilter struct {
	State, Device, Artifact string
	Repair                  int64
}

// Mitigations lists mitigations in the order they were opened.
func (s *Store) Mitigations(ctx context.Context, f MitigationFilter) ([]Mitigation, error) {
	return MitigationsTx(ctx, s.db, f)
}

// MitigationsTx is Mitigations inside a caller's transaction.
func MitigationsTx(ctx context.Context, q querier, f MitigationFilter) ([]Mitigation, error) {
	return queryAll(ctx, q, scanMitigation, `SELECT `+mitigationCols+mitigationFrom+`
		WHERE (?1 = '' OR m.state = ?1) AND (?2 = '' OR m.device_id = ?2) AND (?3 = '' OR m.artifact = ?3) AND (?4 = 0 OR m.repair = ?4)
		ORDER BY m.id`, f.State, f.Device, f.Artifact, f.Repair)
}

const repairCols = `r.id, r.artifact, r.releases, r.advisories, r.devices, r.reason, r.event_seq, r.opened, r.updated, r.state,
	COALESCE(f.release, ''), COALESCE(f.deployment, ''), COALESCE(f.deployed, 0), COALESCE(f.closed, 0),
	(SELECT COUNT(*) FROM mitigations m WHERE m.repair = r.id AND m.state = 'open'),
	(SELECT COUNT(*) FROM mitigations m WHERE m.repair = r.id AND m.state != 'open')`

// repairFrom is the FROM clause that goes with repairCols.
const repairFrom = ` FROM repairs r LEFT JOIN repair_fix f ON f.repair = r.id `

func scanRepair(sc rowScanner) (Repair, error) {
	var r Repair
	var rels, adv string
	var opened, updated, fixed, closed int64
	if err := sc.Scan(&r.ID, &r.Artifact, &rels, &adv, &r.Devices, &r.Reason, &r.EventSeq, &opened, &updated, &r.State,
		&r.FixRelease, &r.Deployment, &fixed, &closed, &r.Open, &r.ClosedCount); err != nil {
		return r, err
	}
	r.Opened, r.Updated = time.Unix(opened, 0).UTC(), time.Unix(updated, 0).UTC()
	r.FixTime, r.Closed = optionalTime(fixed), optionalTime(closed)
	if err := json.Unmarshal([]byte(rels), &r.Releases); err != nil {
		return r, err
	}
	return r, json.Unmarshal([]byte(adv), &r.Advisories)
}

// Repairs lists repair requests, newest first.
func (s *Store) Repairs(ctx context.Context) ([]Repair, error) {
	return queryAll(ctx, s.db, scanRepair, `SELECT `+repairCols+repairFrom+` ORDER BY r.id DESC`)
}

// Repair returns one repair request.
func (s *Store) Repair(ctx context.Context, id int64) (Repair, error) {
	return RepairTx(ctx, s.db, id)
}

// RepairTx is Repair inside a caller's transaction.
func RepairTx(ctx context.Context, q execer, id int64) (Repair, error) {
	r, err := scanRepair(q.QueryRowContext(ctx, `SELECT `+repairCols+repairFrom+` WHERE r.id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%w: repair request %d", ErrNotFound, id)
	}
	return r, err
}

func jsonList(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// union returns the sorted union of a and b without duplicates.
func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}
