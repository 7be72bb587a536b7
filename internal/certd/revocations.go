package certd

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/inventory"
)

var inventoryFromFile = inventory.FromFile

// revoke records a revocation of artifact a's certificate cert. The new
// revocation list is published by the caller, once per batch.
func (s *Service) revoke(ctx context.Context, tx *sql.Tx, a *artifactRow, cert string, advisories []string,
	why string, now time.Time) error {
	adv, _ := json.Marshal(nonNil(advisories))
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO revocations (artifact, certificate, advisories, reason, time)
		VALUES (?,?,?,?,?)`, a.SHA256, cert, string(adv), why, unix(now)); err != nil {
		return fmt.Errorf("storing the revocation: %w", err)
	}
	if err := setArtifactState(ctx, tx, a.SHA256, StateRevoked, a.Current, now); err != nil {
		return err
	}
	return s.feed.add(ctx, tx, now, "revocation", a.SHA256, map[string]any{
		"certificate": cert, "advisories": nonNil(advisories), "reason": why, "name": a.Name,
	})
}

// publishRevocations signs, logs and stores a new revocation list version
// holding every revocation ever made.
func (s *Service) publishRevocations(ctx context.Context, tx *sql.Tx, now time.Time) error {
	var version int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM revlists`).Scan(&version); err != nil {
		return err
	}
	list := attest.RevocationList{Version: version + 1, Issued: now, Expires: now.Add(s.cfg.RevocationTTL)}
	rows, err := tx.QueryContext(ctx, `SELECT artifact, certificate, advisories, reason, time FROM revocations
		ORDER BY time, artifact, certificate`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var r attest.Revocation
		var adv string
		var t int64
		if err := rows.Scan(&r.ArtifactSHA256, &r.CertificateDigest, &adv, &r.Reason, &t); err != nil {
			rows.Close()
			return err
		}
		if err := json.Unmarshal([]byte(adv), &r.Advisories); err != nil {
			rows.Close()
			return err
		}
		r.Time = time.Unix(t, 0).UTC()
		list.Entries = append(list.Entries, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	data, err := attest.SignRevocations(list, s.online.Revoke)
	if err != nil {
		return fmt.Errorf("signing the revocation list: %w", err)
	}
	idx, err := s.log.Append(ctx, tx, "revocations", data)
	if err != nil {
		return fmt.Errorf("logging the revocation list: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO revlists (version, issued, expires, log_index, data) VALUES (?,?,?,?,?)`,
		list.Version, unix(now), unix(list.Expires), idx, data); err != nil {
		return err
	}
	return s.feed.add(ctx, tx, now, "revocation-list", "", map[string]any{
		"version": list.Version, "expires": list.Expires, "entries": len(list.Entries), "log_index": idx,
	})
}

// ensureRevocationList publishes version 1 (empty) on first start.
func (s *Service) ensureRevocationList(ctx context.Context) error {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM revlists`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return s.refreshRevocations(ctx)
	}
	return inTx(ctx, s.db, func(tx *sql.Tx) error { return s.publishRevocations(ctx, tx, s.now().UTC()) })
}

// refreshRevocations re-signs the list with a new version once half of
// its validity has passed, even when nothing changed, so devices can tell
// a fresh list from a replayed one.
func (s *Service) refreshRevocations(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var issued, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT issued, expires FROM revlists ORDER BY version DESC LIMIT 1`).Scan(&issued, &expires)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	if now.Unix() < issued+(expires-issued)/2 {
		return nil
	}
	if err := inTx(ctx, s.db, func(tx *sql.Tx) error { return s.publishRevocations(ctx, tx, now) }); err != nil {
		return err
	}
	s.feed.notify()
	return nil
}

// RevocationList returns the newest signed revocation list.
func (s *Service) RevocationList(ctx context.Context) ([]byte, int64, error) {
	var data []byte
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT data, version FROM revlists ORDER BY version DESC LIMIT 1`).Scan(&data, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, errNotFound
	}
	return data, v, err
}
