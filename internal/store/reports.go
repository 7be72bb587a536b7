package store

import (
	"context"
	"database/sql"
	"time"
)

// Report is one stored status report.
type Report struct {
	ID       string    `json:"id"`
	DeviceID string    `json:"device_id"`
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	State    string    `json:"state"`
	Target   string    `json:"target,omitempty"`
	Version  string    `json:"version,omitempty"`
	Progress int       `json:"progress,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	Payload  []byte    `json:"payload"`
	Sig      []byte    `json:"sig"`
	Received time.Time `json:"received"` // the server's clock; always set
	// TimeFlag says why Time (the device's clock) is not believed: "" when
	// it is within the accepted window, else TimeFuture or TimeBeforeEnrollment.
	TimeFlag string `json:"time_flag,omitempty"`
	// Module, Mode and Advisories are the report's fields of the same
	// names: the module it is about, the module's mode after it and the
	// advisory ids (comma-separated) that put it there.
	Module     string `json:"module,omitempty"`
	Mode       string `json:"mode,omitempty"`
	Advisories string `json:"advisories,omitempty"`
}

// Time flags of a report whose device time is outside the accepted window.
const (
	TimeFuture           = "future"
	TimeBeforeEnrollment = "before-enrollment"
)

// MaxReportsPerDevice is how many reports the server keeps per device:
// past it the oldest go, so that one device (a bug, or a stolen key
// posting its full replay window of 64-report batches) cannot fill the
// server's disk for every device. Deployments count each report as it
// arrives; only the history shown is shortened.
const MaxReportsPerDevice = 10000

// AddReportsTx appends reports; a report whose id is already stored is
// skipped (idempotent). It returns the reports that were new. A device's
// reports beyond MaxReportsPerDevice are deleted, oldest first.
func AddReportsTx(ctx context.Context, tx *sql.Tx, rs []Report, now time.Time) ([]Report, error) {
	added, err := addReportsTx(ctx, tx, rs, now)
	if err != nil {
		return nil, err
	}
	pruned := map[string]bool{}
	for _, r := range added {
		if pruned[r.DeviceID] {
			continue
		}
		pruned[r.DeviceID] = true
		if err := pruneReportsTx(ctx, tx, r.DeviceID, MaxReportsPerDevice); err != nil {
			return nil, err
		}
	}
	return added, nil
}

// pruneReportsTx keeps the newest keep reports of a device.
func pruneReportsTx(ctx context.Context, tx *sql.Tx, device string, keep int) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM reports WHERE device_id=?`, device).Scan(&n); err != nil {
		return err
	}
	if n <= keep {
		return nil
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM reports WHERE device_id=? AND id IN (SELECT id FROM reports WHERE device_id=? ORDER BY seq DESC, time DESC LIMIT -1 OFFSET ?)`, device, device, keep)
	return err
}

func addReportsTx(ctx context.Context, tx *sql.Tx, rs []Report, now time.Time) ([]Report, error) {
	var added []Report
	for _, r := range rs {
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO reports (id, device_id, seq, time, state, target, version, progress, detail, payload, sig, received, time_flag, module, mode, advisories) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			r.ID, r.DeviceID, r.Seq, r.Time.UTC().UnixMilli(), r.State, r.Target, r.Version, r.Progress, r.Detail, r.Payload, r.Sig, now.UTC().UnixMilli(), r.TimeFlag, r.Module, r.Mode, r.Advisories)
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			r.Received = time.UnixMilli(now.UTC().UnixMilli()).UTC()
			added = append(added, r)
		}
	}
	return added, nil
}

// UpdateDeviceStatusTx sets a device's last-seen time, state and, for a
// committed report, its installed target.
func UpdateDeviceStatusTx(ctx context.Context, tx *sql.Tx, id string, r Report, now time.Time) error {
	if r.State == "committed" {
		_, err := tx.ExecContext(ctx, `UPDATE devices SET last_seen=?, state=?, installed=? WHERE id=? AND last_seq<=?`, unix(now), r.State, r.Target, id, r.Seq)
		if err != nil {
			return err
		}
	} else {
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET last_seen=?, state=? WHERE id=? AND last_seq<=?`, unix(now), r.State, id, r.Seq); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `UPDATE devices SET last_seq=MAX(last_seq, ?) WHERE id=?`, r.Seq, id)
	return err
}

// TouchDevice records that a device was seen.
func (s *Store) TouchDevice(ctx context.Context, id string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE devices SET last_seen=? WHERE id=?`, unix(now), id)
	return err
}

// History returns a device's newest reports (at most limit, 10,000 when
// limit is 0 or larger) in order of sequence number.
func (s *Store) History(ctx context.Context, id string, limit int) ([]Report, error) {
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	return queryAll(ctx, s.db, func(sc rowScanner) (Report, error) {
		var r Report
		var t, rc int64
		err := sc.Scan(&r.ID, &r.DeviceID, &r.Seq, &t, &r.State, &r.Target, &r.Version, &r.Progress, &r.Detail, &r.Payload, &r.Sig, &rc, &r.TimeFlag, &r.Module, &r.Mode, &r.Advisories)
		r.Time = time.UnixMilli(t).UTC()
		r.Received = time.UnixMilli(rc).UTC()
		return r, err
	}, `SELECT * FROM (SELECT id, device_id, seq, time, state, target, version, progress, detail, payload, sig, received, time_flag, module, mode, advisories FROM reports WHERE device_id=? ORDER BY seq DESC, time DESC LIMIT ?) ORDER BY seq, time`, id, limit)
}
