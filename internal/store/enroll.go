package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrTokenUsed is an enrollment token already used by another device or
// for another key. Errors carrying it also match ErrConflict.
var ErrTokenUsed = errors.New("enrollment token already used by another device or for another key")

// EnrollToken is a one-time enrollment token as the server keeps it. ID is
// HashToken(token), the non-secret name a device sends; Secret is the
// token itself, the key of the enrollment proof (HMAC), so a reader of the
// database can enroll with an unused token before it expires: tokens are
// one-time and short-lived for that reason.
type EnrollToken struct {
	ID      string
	Group   string
	Secret  []byte
	Expires time.Time
	Used    bool
	Device  string // the device that used it ("" before)
}

// AddEnrollToken stores a one-time enrollment token for group.
func (s *Store) AddEnrollToken(ctx context.Context, tok, group string, expires time.Time) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO enroll_tokens (hash, grp, expires) VALUES (?,?,?)`, HashToken(tok), group, unix(expires)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO enroll_secrets (hash, secret) VALUES (?,?)`, HashToken(tok), []byte(tok))
		return err
	})
}

// EnrollTokenByID returns the token named id (ErrNotFound if there is
// none, or it was made before tokens kept their secret).
func (s *Store) EnrollTokenByID(ctx context.Context, id string) (EnrollToken, error) {
	return enrollToken(ctx, s.db, id)
}

func enrollToken(ctx context.Context, q execer, id string) (EnrollToken, error) {
	t := EnrollToken{ID: id}
	var exp, used int64
	err := q.QueryRowContext(ctx, `SELECT t.grp, t.expires, t.used, s.secret, s.device FROM enroll_tokens t JOIN enroll_secrets s ON s.hash = t.hash WHERE t.hash=?`, id).
		Scan(&t.Group, &exp, &used, &t.Secret, &t.Device)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("%w: enrollment token unknown", ErrNotFound)
	}
	if err != nil {
		return t, err
	}
	t.Expires = time.Unix(exp, 0).UTC()
	t.Used = used != 0
	return t, nil
}

// EnrollTx consumes the enrollment token named tokenID for device d (whose
// ID, HardwareID and PublicKey are set) inside the caller's transaction.
// The caller has checked the enrollment proof made with the token.
//
// Enrollment is idempotent: when the token was already used by this very
// device id with the same hardware id and public key (the device did not
// get the first answer and asks again), EnrollTx returns the device as
// enrolled and again = true, even past the token's expiry, and changes
// nothing. A token used for anything else is ErrTokenUsed (and
// ErrConflict); an unknown or expired token is ErrNotFound; a device id
// already enrolled with another token is ErrDuplicate.
func EnrollTx(ctx context.Context, tx *sql.Tx, tokenID string, d Device, now time.Time) (dev Device, again bool, err error) {
	t, err := enrollToken(ctx, tx, tokenID)
	if err != nil {
		return d, false, err
	}
	if t.Used {
		if t.Device != d.ID {
			return d, false, fmt.Errorf("%w (%w)", ErrTokenUsed, ErrConflict)
		}
		prev, err := DeviceTx(ctx, tx, d.ID)
		if err != nil {
			return d, false, err
		}
		if prev.HardwareID != d.HardwareID || !bytes.Equal(prev.PublicKey, d.PublicKey) {
			return d, false, fmt.Errorf("%w (%w): device %s is enrolled with another key or hardware id", ErrTokenUsed, ErrConflict, d.ID)
		}
		return prev, true, nil
	}
	if t.Expires.Before(now.UTC().Truncate(time.Second)) {
		return d, false, fmt.Errorf("%w: enrollment token expired", ErrNotFound)
	}
	d.Group = t.Group
	d.Enrolled = now.UTC().Truncate(time.Second)
	if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, public_key, hardware_id, grp, enrolled) VALUES (?,?,?,?,?)`,
		d.ID, d.PublicKey, d.HardwareID, d.Group, unix(now)); err != nil {
		return d, false, fmt.Errorf("%w: device %s: %v", ErrDuplicate, d.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE enroll_tokens SET used=? WHERE hash=?`, unix(now), tokenID); err != nil {
		return d, false, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE enroll_secrets SET device=? WHERE hash=?`, d.ID, tokenID); err != nil {
		return d, false, err
	}
	return d, false, nil
}

// Enroll is EnrollTx in a transaction of its own, with the token itself.
func (s *Store) Enroll(ctx context.Context, tok string, d Device, now time.Time) (Device, error) {
	var dev Device
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		dev, _, err = EnrollTx(ctx, tx, HashToken(tok), d, now)
		return err
	})
	return dev, err
}
