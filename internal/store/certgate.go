package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The certification gate's state: the certifier's certificate bundles per
// artifact and the newest signed revocation list. The tables are created
// by the schema at every Open (CREATE TABLE IF NOT EXISTS), which is also
// how a database made before them gets them. The server stores only what
// it verified against the pinned certifier root; it is a mirror, and
// devices verify again.

// CertBundle is a stored certificate bundle of an artifact.
type CertBundle struct {
	SHA256     string    `json:"sha256"`
	CertDigest string    `json:"certificate_digest"` // "sha256:<hex of the envelope>"
	Bundle     []byte    `json:"-"`                  // the bundle JSON as verified
	Issued     time.Time `json:"issued"`
	ValidUntil time.Time `json:"valid_until"`
	Stored     time.Time `json:"stored"`
}

// StoredRevocations is the newest revocation list the server verified.
type StoredRevocations struct {
	Version int64
	Data    []byte // the signed envelope, as the certifier signed it
	List    []byte // the verified list (attest.RevocationList as JSON)
	Expires time.Time
	Stored  time.Time
}

// PutCertificateTx stores b as the bundle of its artifact, replacing an
// older one. A bundle issued before the stored one is ErrConflict.
func PutCertificateTx(ctx context.Context, tx *sql.Tx, b CertBundle) error {
	var issued int64
	err := tx.QueryRowContext(ctx, `SELECT issued FROM certificates WHERE sha256=?`, b.SHA256).Scan(&issued)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return err
	case unix(b.Issued) < issued:
		return fmt.Errorf("%w: the stored certificate of %s was issued at %s, after this one (%s)", ErrConflict, b.SHA256,
			time.Unix(issued, 0).UTC().Format(time.RFC3339), b.Issued.UTC().Format(time.RFC3339))
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO certificates (sha256, cert_digest, bundle, issued, valid_until, stored)
		VALUES (?,?,?,?,?,?) ON CONFLICT (sha256) DO UPDATE SET cert_digest=excluded.cert_digest, bundle=excluded.bundle,
		issued=excluded.issued, valid_until=excluded.valid_until, stored=excluded.stored`,
		b.SHA256, b.CertDigest, b.Bundle, unix(b.Issued), unix(b.ValidUntil), unix(b.Stored))
	return err
}

// Certificate returns the stored bundle of an artifact (ErrNotFound).
func (s *Store) Certificate(ctx context.Context, sha string) (CertBundle, error) {
	var b CertBundle
	var issued, valid, stored int64
	err := s.db.QueryRowContext(ctx, `SELECT sha256, cert_digest, bundle, issued, valid_until, stored FROM certificates WHERE sha256=?`, sha).
		Scan(&b.SHA256, &b.CertDigest, &b.Bundle, &issued, &valid, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("certificate of artifact %s: %w", sha, ErrNotFound)
	}
	b.Issued, b.ValidUntil, b.Stored = optionalTime(issued), optionalTime(valid), optionalTime(stored)
	return b, err
}

// RevocationsTx returns the stored revocation list (ErrNotFound when none).
func RevocationsTx(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (StoredRevocations, error) {
	var r StoredRevocations
	var expires, stored int64
	err := q.QueryRowContext(ctx, `SELECT version, data, list, expires, stored FROM revocations WHERE id=1`).
		Scan(&r.Version, &r.Data, &r.List, &expires, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("revocation list: %w", ErrNotFound)
	}
	r.Expires, r.Stored = optionalTime(expires), optionalTime(stored)
	return r, err
}

// Revocations returns the stored revocation list (ErrNotFound when none).
func (s *Store) Revocations(ctx context.Context) (StoredRevocations, error) {
	return RevocationsTx(ctx, s.db)
}

// SetRevocationsTx stores r as the newest list. The version never goes
// down: a lower version than the stored one is ErrConflict.
func SetRevocationsTx(ctx context.Context, tx *sql.Tx, r StoredRevocations) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO revocations (id, version, data, list, expires, stored) VALUES (1,?,?,?,?,?)
		ON CONFLICT (id) DO UPDATE SET version=excluded.version, data=excluded.data, list=excluded.list,
		expires=excluded.expires, stored=excluded.stored WHERE excluded.version >= revocations.version`,
		r.Version, r.Data, r.List, unix(r.Expires), unix(r.Stored))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("%w: revocation list version %d is older than the stored one", ErrConflict, r.Version)
	}
	return nil
}
