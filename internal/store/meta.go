package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Meta is one stored metadata document.
type Meta struct {
	Repo, Role string
	Version    int64
	Data       []byte
	Expires    time.Time
}

type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// PutMeta stores metadata documents in one transaction. A version that is
// not higher than the stored latest for its repo and role is a conflict.
func (s *Store) PutMeta(ctx context.Context, docs ...Meta) error {
	return s.Tx(ctx, func(tx *sql.Tx) error { return PutMetaTx(ctx, tx, docs...) })
}

// PutMetaTx is PutMeta inside a caller's transaction.
func PutMetaTx(ctx context.Context, tx execer, docs ...Meta) error {
	now := unix(time.Now())
	for _, d := range docs {
		var latest sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM tuf_meta WHERE repo=? AND role=?`, d.Repo, d.Role).Scan(&latest); err != nil {
			return err
		}
		if latest.Valid && d.Version <= latest.Int64 {
			return fmt.Errorf("%w: %s %s version %d is not above stored %d", ErrConflict, d.Repo, d.Role, d.Version, latest.Int64)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tuf_meta (repo, role, version, data, expires, created) VALUES (?,?,?,?,?,?)`,
			d.Repo, d.Role, d.Version, d.Data, unix(d.Expires), now); err != nil {
			return err
		}
	}
	return nil
}

// LatestMeta returns the newest document of repo and role.
func (s *Store) LatestMeta(ctx context.Context, repo, role string) (Meta, error) {
	m := Meta{Repo: repo, Role: role}
	var exp int64
	err := s.db.QueryRowContext(ctx, `SELECT version, data, expires FROM tuf_meta WHERE repo=? AND role=? ORDER BY version DESC LIMIT 1`, repo, role).Scan(&m.Version, &m.Data, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("%w: %s %s", ErrNotFound, repo, role)
	}
	m.Expires = time.Unix(exp, 0).UTC()
	return m, err
}

// MetaVersion returns one version of a document.
func (s *Store) MetaVersion(ctx context.Context, repo, role string, version int64) (Meta, error) {
	m := Meta{Repo: repo, Role: role, Version: version}
	var exp int64
	err := s.db.QueryRowContext(ctx, `SELECT data, expires FROM tuf_meta WHERE repo=? AND role=? AND version=?`, repo, role, version).Scan(&m.Data, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("%w: %s %d.%s", ErrNotFound, repo, version, role)
	}
	m.Expires = time.Unix(exp, 0).UTC()
	return m, err
}

// ExpiringRepos lists repos whose latest document of role expires before t.
func (s *Store) ExpiringRepos(ctx context.Context, role string, before time.Time) ([]string, error) {
	return queryAll(ctx, s.db, scanString, `SELECT repo FROM tuf_meta t WHERE role=? AND version=(SELECT MAX(version) FROM tuf_meta WHERE repo=t.repo AND role=t.role) AND expires < ?`, role, unix(before))
}
