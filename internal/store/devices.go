package store

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Device is an enrolled device.
type Device struct {
	ID         string    `json:"id"`
	PublicKey  []byte    `json:"public_key"`
	HardwareID string    `json:"hardware_id"`
	Group      string    `json:"group"`
	Enrolled   time.Time `json:"enrolled"`
	LastSeen   time.Time `json:"last_seen"`
	State      string    `json:"state"`
	Installed  string    `json:"installed"`
	Assigned   string    `json:"assigned"`
	// Decommissioned is when the device was revoked; zero while active.
	Decommissioned time.Time `json:"decommissioned,omitempty"`
	// Modules are the device's modules (one release each), filled by the
	// server's device views; Installed and Assigned above are the newest
	// commit and assignment of any module, for old readers.
	Modules []DeviceModule `json:"modules"`
}

// HashToken returns the stored form of a secret token.
func HashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// DevicePublicKey returns a device's enrolled key.
func (s *Store) DevicePublicKey(ctx context.Context, id string) (ed25519.PublicKey, error) {
	pk, _, err := s.DeviceKey(ctx, id)
	return pk, err
}

const deviceCols = `id, public_key, hardware_id, grp, enrolled, last_seen, state, installed, assigned, decommissioned`

func scanDevice(sc rowScanner) (Device, error) {
	var d Device
	var en, ls, dc int64
	err := sc.Scan(&d.ID, &d.PublicKey, &d.HardwareID, &d.Group, &en, &ls, &d.State, &d.Installed, &d.Assigned, &dc)
	d.Enrolled, d.LastSeen, d.Decommissioned = time.Unix(en, 0).UTC(), optionalTime(ls), optionalTime(dc)
	return d, err
}

// Device returns one device.
func (s *Store) Device(ctx context.Context, id string) (Device, error) {
	return DeviceTx(ctx, s.db, id)
}

// DeviceTx is Device inside a caller's transaction. Code holding a
// transaction must read through it: a read on another connection while
// the write lock is held can starve the connection pool.
func DeviceTx(ctx context.Context, q execer, id string) (Device, error) {
	d, err := scanDevice(q.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("%w: device %s", ErrNotFound, id)
	}
	return d, err
}

// Devices lists devices, optionally of one group, ordered by id.
func (s *Store) Devices(ctx context.Context, group string) ([]Device, error) {
	return devices(ctx, s.db, group)
}

// DevicesTx lists every device inside a transaction.
func DevicesTx(ctx context.Context, tx *sql.Tx) ([]Device, error) { return devices(ctx, tx, "") }

func devices(ctx context.Context, q querier, group string) ([]Device, error) {
	query := `SELECT ` + deviceCols + ` FROM devices`
	args := []any{}
	if group != "" {
		query += ` WHERE grp=?`
		args = append(args, group)
	}
	return queryAll(ctx, q, scanDevice, query+` ORDER BY id`, args...)
}

// SetAssigned records the target the director assigns to a device.
func SetAssignedTx(ctx context.Context, tx execer, id, target string) error {
	_, err := tx.ExecContext(ctx, `UPDATE devices SET assigned=? WHERE id=?`, target, id)
	return err
}

// AddAPIToken stores an API token with a scope.
func (s *Store) AddAPIToken(ctx context.Context, tok, scope, name string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO api_tokens (hash, scope, name, created) VALUES (?,?,?,?)`, HashToken(tok), scope, name, unix(time.Now()))
	return err
}

// TokenScope returns the scope of an API token.
func (s *Store) TokenScope(ctx context.Context, tok string) (string, error) {
	return s.CheckAPIToken(ctx, tok, time.Now()) // expired and revoked tokens have no scope
}
