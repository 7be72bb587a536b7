package store

// What follows a mitigation: the fix the server rolls out for a repair
// request, the closing of mitigations and repair requests, and the
// outbox of signed repair webhooks. Kept in tables of their own beside
// mitigations and repairs, so databases made before keep working.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const autofixTables = `
CREATE TABLE IF NOT EXISTS repair_fix (
	repair INTEGER PRIMARY KEY, release TEXT NOT NULL DEFAULT '', deployment TEXT NOT NULL DEFAULT '',
	deployed INTEGER NOT NULL DEFAULT 0, closed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS mitigation_fix (
	mitigation INTEGER PRIMARY KEY, deployment TEXT NOT NULL DEFAULT '',
	closed INTEGER NOT NULL DEFAULT 0, closed_by TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS webhook_outbox (
	seq INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL, repair INTEGER NOT NULL, body BLOB NOT NULL,
	created INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
	delivered INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS webhook_outbox_pending ON webhook_outbox (delivered, seq);
`

// TimelineEntry is one report of a mitigated device about its mitigation.
type TimelineEntry struct {
	State  string    `json:"state"`
	Target string    `json:"target,omitempty"`
	Time   time.Time `json:"time"`     // the device's clock
	Seen   time.Time `json:"received"` // the server's clock
}

// MitigationStates are the report states that make up a mitigation's
// timeline.
var MitigationStates = []string{"revocation-seen", "switching-to-backup", "on-backup", "degraded", "recovered", "list-stale"}

// maxTimeline bounds a mitigation's timeline.
const maxTimeline = 50

// TimelineTx lists what dev reported about a mitigation since since
// (received on the server's clock): the mitigation states and the
// commits, oldest first, at most maxTimeline.
func TimelineTx(ctx context.Context, q querier, dev string, since time.Time) ([]TimelineEntry, error) {
	return queryAll(ctx, q, func(sc rowScanner) (TimelineEntry, error) {
		var e TimelineEntry
		var t, rc int64
		err := sc.Scan(&e.State, &e.Target, &t, &rc)
		e.Time, e.Seen = time.UnixMilli(t).UTC(), time.UnixMilli(rc).UTC()
		return e, err
	}, `SELECT state, target, time, received FROM reports WHERE device_id=? AND received >= ?
		AND state IN ('revocation-seen','switching-to-backup','on-backup','degraded','recovered','list-stale','committed')
		ORDER BY seq LIMIT ?`, dev, since.UTC().UnixMilli(), maxTimeline)
}

// OpenRepairIDsTx lists the open repair requests, oldest first.
func OpenRepairIDsTx(ctx context.Context, q querier) ([]int64, error) {
	return queryAll(ctx, q, func(sc rowScanner) (int64, error) {
		var id int64
		return id, sc.Scan(&id)
	}, `SELECT id FROM repairs WHERE state=? ORDER BY id`, RepairOpen)
}

// HasRepairTx reports whether the certifier ever revoked (or failed) the
// artifact sha: a repair request was filed for it.
func HasRepairTx(ctx context.Context, q execer, sha string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM repairs WHERE artifact=?`, sha).Scan(&n)
	return n > 0, err
}

// ErrActed is an attempt to record a fix for a mitigation that is no
// longer open or already has one.
var ErrActed = errors.New("mitigation already closed or given a fix")

// SetFixTx records that deployment dep gives release the devices of the
// open mitigations ids of repair: each must be open and without a fix
// (else ErrActed, so the caller's transaction rolls back). The repair
// request keeps its first fix release and deployment.
func SetFixTx(ctx context.Context, tx *sql.Tx, repair int64, ids []int64, release, dep string, now time.Time) error {
	for _, id := range ids {
		var state, fix string
		err := tx.QueryRowContext(ctx, `SELECT m.state, COALESCE(f.deployment, '') FROM mitigations m
			LEFT JOIN mitigation_fix f ON f.mitigation = m.id WHERE m.id=?`, id).Scan(&state, &fix)
		if err != nil {
			return err
		}
		if state != MitigationOpen || fix != "" {
			return fmt.Errorf("%w: mitigation %d (%s, fix %q)", ErrActed, id, state, fix)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO mitigation_fix (mitigation, deployment) VALUES (?,?)
			ON CONFLICT (mitigation) DO UPDATE SET deployment=excluded.deployment`, id, dep); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO repair_fix (repair, release, deployment, deployed) VALUES (?,?,?,?)
		ON CONFLICT (repair) DO UPDATE SET release=excluded.release, deployment=excluded.deployment, deployed=excluded.deployed
		WHERE repair_fix.deployment = ''`, repair, release, dep, unix(now))
	return err
}

// CloseMitigationTx closes an open mitigation with state (closed or
// abandoned), naming the release that closed it; it reports whether it
// was open.
func CloseMitigationTx(ctx context.Context, tx *sql.Tx, id int64, state, by string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE mitigations SET state=? WHERE id=? AND state=?`, state, id, MitigationOpen)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO mitigation_fix (mitigation, closed, closed_by) VALUES (?,?,?)
		ON CONFLICT (mitigation) DO UPDATE SET closed=excluded.closed, closed_by=excluded.closed_by`, id, unix(now), by)
	return err == nil, err
}

// CloseRepairIfDoneTx closes an open repair request that has mitigations
// and none of them open; it reports whether it closed it.
func CloseRepairIfDoneTx(ctx context.Context, tx *sql.Tx, id int64, now time.Time) (bool, error) {
	var open, all int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(state = 'open'), 0), COUNT(*) FROM mitigations WHERE repair=?`, id).Scan(&open, &all); err != nil {
		return false, err
	}
	if open > 0 || all == 0 {
		return false, nil
	}
	res, err := tx.ExecContext(ctx, `UPDATE repairs SET state=?, updated=? WHERE id=? AND state=?`, RepairClosed, unix(now), id, RepairOpen)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO repair_fix (repair, closed) VALUES (?,?)
		ON CONFLICT (repair) DO UPDATE SET closed=excluded.closed`, id, unix(now))
	return err == nil, err
}

// OutboxEntry is one webhook waiting for delivery, or delivered.
type OutboxEntry struct {
	Seq       int64
	Event     string
	Repair    int64
	Body      []byte
	Created   time.Time
	Attempts  int
	LastError string
	Delivered time.Time
}

// AddOutboxTx queues a webhook; body is called with the entry's sequence
// number (which the signed body carries) and returns the body.
func AddOutboxTx(ctx context.Context, tx *sql.Tx, event string, repair int64, now time.Time, body func(seq int64) ([]byte, error)) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO webhook_outbox (event, repair, body, created) VALUES (?,?,?,?)`, event, repair, []byte{}, unix(now))
	if err != nil {
		return 0, err
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	b, err := body(seq)
	if err != nil {
		return 0, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE webhook_outbox SET body=? WHERE seq=?`, b, seq)
	return seq, err
}

const outboxCols = `seq, event, repair, body, created, attempts, last_error, delivered`

func scanOutbox(sc rowScanner) (OutboxEntry, error) {
	var e OutboxEntry
	var c, d int64
	err := sc.Scan(&e.Seq, &e.Event, &e.Repair, &e.Body, &c, &e.Attempts, &e.LastError, &d)
	e.Created, e.Delivered = time.Unix(c, 0).UTC(), optionalTime(d)
	return e, err
}

// NextOutbox returns the oldest undelivered webhook (ErrNotFound: none).
func (s *Store) NextOutbox(ctx context.Context) (OutboxEntry, error) {
	e, err := scanOutbox(s.db.QueryRowContext(ctx, `SELECT `+outboxCols+` FROM webhook_outbox WHERE delivered=0 ORDER BY seq LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return e, ErrNotFound
	}
	return e, err
}

// Outbox lists the webhooks, oldest first.
func (s *Store) Outbox(ctx context.Context) ([]OutboxEntry, error) {
	return queryAll(ctx, s.db, scanOutbox, `SELECT `+outboxCols+` FROM webhook_outbox ORDER BY seq`)
}

// keepDelivered is how many delivered webhooks the outbox keeps.
const keepDelivered = 1000

// OutboxDelivered marks a webhook delivered and forgets delivered ones
// older than the newest keepDelivered.
func (s *Store) OutboxDelivered(ctx context.Context, seq int64, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE webhook_outbox SET delivered=?, attempts=attempts+1, last_error='' WHERE seq=?`, max(unix(now), 1), seq); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `DELETE FROM webhook_outbox WHERE delivered != 0 AND seq <= ?`, seq-keepDelivered)
	return err
}

// OutboxFailed records a failed delivery attempt.
func (s *Store) OutboxFailed(ctx context.Context, seq int64, msg string) error {
	if len(msg) > 512 {
		msg = msg[:512]
	}
	_, err := s.db.ExecContext(ctx, `UPDATE webhook_outbox SET attempts=attempts+1, last_error=? WHERE seq=?`, msg, seq)
	return err
}
