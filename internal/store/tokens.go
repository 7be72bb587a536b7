package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Errors of API token checks; match them with errors.Is.
var (
	ErrTokenExpired = errors.New("API token expired: ask an admin for a new one ('ztota token create')")
	ErrTokenRevoked = errors.New("API token revoked: ask an admin for a new one ('ztota token create')")
)

// TokenIDLen is the length of a token id: the first hex digits of the
// stored hash, which name a token without revealing it.
const TokenIDLen = 16

// APIToken describes an API token; the secret itself is never stored.
type APIToken struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Scope   string    `json:"scope"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitempty"` // zero: never
	Revoked time.Time `json:"revoked,omitempty"` // zero: not revoked
}

// TokenID returns the id of a secret token.
func TokenID(tok string) string { return HashToken(tok)[:TokenIDLen] }

// AddAPITokenUntil stores an API token with a scope, created now and valid
// until expires (zero: no expiry), and returns its id.
func (s *Store) AddAPITokenUntil(ctx context.Context, tok, scope, name string, now, expires time.Time) (string, error) {
	var exp int64
	if !expires.IsZero() {
		exp = unix(expires)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO api_tokens (hash, scope, name, created, expires) VALUES (?,?,?,?,?)`, HashToken(tok), scope, name, unix(now), exp)
	return TokenID(tok), err
}

// CheckAPIToken returns the scope of a valid API token at now; an unknown
// token is ErrNotFound, an expired one ErrTokenExpired, a revoked one
// ErrTokenRevoked.
func (s *Store) CheckAPIToken(ctx context.Context, tok string, now time.Time) (string, error) {
	var scope string
	var exp, rev int64
	err := s.db.QueryRowContext(ctx, `SELECT scope, expires, revoked FROM api_tokens WHERE hash=?`, HashToken(tok)).Scan(&scope, &exp, &rev)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", ErrNotFound
	case err != nil:
		return "", err
	case rev != 0:
		return "", fmt.Errorf("%w (at %s)", ErrTokenRevoked, time.Unix(rev, 0).UTC().Format(time.RFC3339))
	case exp != 0 && unix(now) >= exp:
		return "", fmt.Errorf("%w (at %s)", ErrTokenExpired, time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	return scope, nil
}

func scanToken(sc rowScanner) (APIToken, error) {
	var t APIToken
	var hash string
	var c, e, r int64
	if err := sc.Scan(&hash, &t.Name, &t.Scope, &c, &e, &r); err != nil {
		return t, err
	}
	t.ID = hash[:min(len(hash), TokenIDLen)]
	t.Created, t.Expires, t.Revoked = time.Unix(c, 0).UTC(), optionalTime(e), optionalTime(r)
	return t, nil
}

// APITokens lists every API token (without secrets), oldest first.
func (s *Store) APITokens(ctx context.Context) ([]APIToken, error) {
	out, err := queryAll(ctx, s.db, scanToken, `SELECT hash, name, scope, created, expires, revoked FROM api_tokens ORDER BY created, hash`)
	if out == nil && err == nil {
		out = []APIToken{} // listed as [], not null
	}
	return out, err
}

// RevokeAPIToken revokes the token with the given id at now. An unknown id
// is ErrNotFound; a token already revoked keeps its first revocation time.
// Revoking the last valid admin token is ErrConflict, so that the server
// always keeps a way in.
func (s *Store) RevokeAPIToken(ctx context.Context, id string, now time.Time) (APIToken, error) {
	var t APIToken
	if len(id) != TokenIDLen {
		return t, fmt.Errorf("%w: token id %q (ids are %d hex digits, see 'ztota token list')", ErrNotFound, id, TokenIDLen)
	}
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = scanToken(tx.QueryRowContext(ctx, `SELECT hash, name, scope, created, expires, revoked FROM api_tokens WHERE substr(hash, 1, ?)=?`, TokenIDLen, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: token %s", ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		if !t.Revoked.IsZero() {
			return nil
		}
		if t.Scope == "admin" {
			var others int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_tokens WHERE scope='admin' AND revoked=0 AND (expires=0 OR expires>?) AND substr(hash, 1, ?)<>?`,
				unix(now), TokenIDLen, id).Scan(&others); err != nil {
				return err
			}
			if others == 0 {
				return fmt.Errorf("%w: token %s is the last valid admin token: create another admin token first", ErrConflict, id)
			}
		}
		t.Revoked = now.UTC().Truncate(time.Second)
		_, err = tx.ExecContext(ctx, `UPDATE api_tokens SET revoked=? WHERE substr(hash, 1, ?)=?`, unix(now), TokenIDLen, id)
		return err
	})
	return t, err
}
