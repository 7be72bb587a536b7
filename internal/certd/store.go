package certd

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/vulnref"
)

// Artifact states.
const (
	StateCertified = "certified" // its current certificate passes and is not revoked
	StateRejected  = "rejected"  // the last inspection failed policy
	StateRevoked   = "revoked"   // its certificate was revoked; no valid certificate now
)

// errNotFound is returned for a missing row.
var errNotFound = errors.New("not found")

const schema = `
CREATE TABLE IF NOT EXISTS artifacts (
	sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, size INTEGER NOT NULL,
	kind TEXT NOT NULL, sbom_sha256 TEXT NOT NULL DEFAULT '',
	verifier_version TEXT NOT NULL, components TEXT NOT NULL, disagreements TEXT NOT NULL,
	notes TEXT NOT NULL, state TEXT NOT NULL, current TEXT NOT NULL DEFAULT '',
	created INTEGER NOT NULL, updated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS components (
	artifact TEXT NOT NULL, eco_base TEXT NOT NULL, name TEXT NOT NULL,
	PRIMARY KEY (eco_base, name, artifact)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sboms (
	sha256 TEXT PRIMARY KEY, format TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS results (
	seq INTEGER PRIMARY KEY AUTOINCREMENT, digest TEXT NOT NULL UNIQUE, artifact TEXT NOT NULL,
	kind TEXT NOT NULL, verdict TEXT NOT NULL, db_id TEXT NOT NULL, policy_digest TEXT NOT NULL,
	previous TEXT NOT NULL, advisories TEXT NOT NULL, issued INTEGER NOT NULL, valid_until INTEGER NOT NULL,
	log_index INTEGER NOT NULL, envelope BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS results_artifact ON results (artifact, seq);
CREATE TABLE IF NOT EXISTS revocations (
	artifact TEXT NOT NULL, certificate TEXT NOT NULL, advisories TEXT NOT NULL,
	reason TEXT NOT NULL, time INTEGER NOT NULL, PRIMARY KEY (artifact, certificate));
CREATE TABLE IF NOT EXISTS revlists (
	version INTEGER PRIMARY KEY, issued INTEGER NOT NULL, expires INTEGER NOT NULL,
	log_index INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
	source TEXT NOT NULL, id TEXT NOT NULL, records INTEGER NOT NULL, loaded INTEGER NOT NULL,
	log_index INTEGER NOT NULL, PRIMARY KEY (source, id));
CREATE TABLE IF NOT EXISTS events (
	seq INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, kind TEXT NOT NULL,
	artifact TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhooks (
	id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL UNIQUE, delivered INTEGER NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
`

func openDB(ctx context.Context, dir string) (*sql.DB, error) {
	return store.OpenSQLite(ctx, filepath.Join(dir, "certd.db"), schema)
}

func inTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func unix(t time.Time) int64 { return t.UTC().Unix() }

// ecoBase is an ecosystem without its release suffix ("Debian:12" → "Debian").
func ecoBase(eco string) string {
	if i := strings.IndexByte(eco, ':'); i >= 0 {
		return eco[:i]
	}
	return eco
}

// artifactRow is an artifact as stored.
type artifactRow struct {
	SHA256          string
	Name            string
	Size            int64
	Kind            string
	SBOMSHA256      string
	VerifierVersion string
	Components      []vulnref.Component
	Disagreements   []vulnref.Disagreement
	Notes           []string
	State           string
	Current         string // digest of the newest certificate or rejection
	Created         time.Time
	Updated         time.Time
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getArtifact(ctx context.Context, q queryer, sha string) (*artifactRow, error) {
	var a artifactRow
	var comps, dis, notes string
	var created, updated int64
	err := q.QueryRowContext(ctx, `SELECT sha256, name, size, kind, sbom_sha256, verifier_version,
		components, disagreements, notes, state, current, created, updated FROM artifacts WHERE sha256 = ?`, sha).
		Scan(&a.SHA256, &a.Name, &a.Size, &a.Kind, &a.SBOMSHA256, &a.VerifierVersion,
			&comps, &dis, &notes, &a.State, &a.Current, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(comps), &a.Components); err != nil {
		return nil, fmt.Errorf("stored components of %s: %w", sha, err)
	}
	if err := json.Unmarshal([]byte(dis), &a.Disagreements); err != nil {
		return nil, fmt.Errorf("stored disagreements of %s: %w", sha, err)
	}
	if err := json.Unmarshal([]byte(notes), &a.Notes); err != nil {
		return nil, fmt.Errorf("stored notes of %s: %w", sha, err)
	}
	a.Created, a.Updated = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
	return &a, nil
}

// putArtifact inserts or replaces an artifact and its component index.
func putArtifact(ctx context.Context, tx *sql.Tx, a *artifactRow) error {
	comps, _ := json.Marshal(nonNil(a.Components))
	dis, _ := json.Marshal(nonNil(a.Disagreements))
	notes, _ := json.Marshal(nonNil(a.Notes))
	if _, err := tx.ExecContext(ctx, `INSERT INTO artifacts (sha256, name, size, kind, sbom_sha256,
		verifier_version, components, disagreements, notes, state, current, created, updated)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (sha256) DO UPDATE SET name=excluded.name, kind=excluded.kind,
		sbom_sha256=excluded.sbom_sha256, verifier_version=excluded.verifier_version,
		components=excluded.components, disagreements=excluded.disagreements, notes=excluded.notes,
		state=excluded.state, current=excluded.current, updated=excluded.updated`,
		a.SHA256, a.Name, a.Size, a.Kind, a.SBOMSHA256, a.VerifierVersion, string(comps), string(dis),
		string(notes), a.State, a.Current, unix(a.Created), unix(a.Updated)); err != nil {
		return fmt.Errorf("storing artifact: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM components WHERE artifact = ?`, a.SHA256); err != nil {
		return err
	}
	for _, c := range a.Components {
		for _, k := range matchKeys(c) {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO components (artifact, eco_base, name) VALUES (?,?,?)`,
				a.SHA256, ecoBase(k.Ecosystem), k.Name); err != nil {
				return fmt.Errorf("indexing components: %w", err)
			}
		}
	}
	return nil
}

func setArtifactState(ctx context.Context, tx *sql.Tx, sha, state, current string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE artifacts SET state = ?, current = ?, updated = ? WHERE sha256 = ?`,
		state, current, unix(now), sha)
	return err
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// resultRow is a signed result as stored.
type resultRow struct {
	Seq          int64     `json:"seq"`
	Digest       string    `json:"digest"`
	Artifact     string    `json:"artifact"`
	Kind         string    `json:"kind"`
	Verdict      string    `json:"verdict"`
	DBID         string    `json:"db_id"`
	PolicyDigest string    `json:"policy_digest"`
	Previous     string    `json:"previous,omitempty"`
	Advisories   []string  `json:"advisories"`
	Issued       time.Time `json:"issued"`
	ValidUntil   time.Time `json:"valid_until"`
	LogIndex     int64     `json:"log_index"`
	Envelope     []byte    `json:"-"`
}

func insertResult(ctx context.Context, tx *sql.Tx, r *resultRow) error {
	adv, _ := json.Marshal(nonNil(r.Advisories))
	res, err := tx.ExecContext(ctx, `INSERT INTO results (digest, artifact, kind, verdict, db_id, policy_digest,
		previous, advisories, issued, valid_until, log_index, envelope) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		r.Digest, r.Artifact, r.Kind, r.Verdict, r.DBID, r.PolicyDigest, r.Previous, string(adv),
		unix(r.Issued), unix(r.ValidUntil), r.LogIndex, r.Envelope)
	if err != nil {
		return fmt.Errorf("storing result: %w", err)
	}
	r.Seq, _ = res.LastInsertId()
	return nil
}

const resultCols = `seq, digest, artifact, kind, verdict, db_id, policy_digest, previous, advisories,
	issued, valid_until, log_index, envelope`

type scanner interface{ Scan(dest ...any) error }

func scanResult(s scanner) (*resultRow, error) {
	var r resultRow
	var adv string
	var issued, until int64
	if err := s.Scan(&r.Seq, &r.Digest, &r.Artifact, &r.Kind, &r.Verdict, &r.DBID, &r.PolicyDigest,
		&r.Previous, &adv, &issued, &until, &r.LogIndex, &r.Envelope); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(adv), &r.Advisories); err != nil {
		return nil, fmt.Errorf("stored advisories of %s: %w", r.Digest, err)
	}
	r.Issued, r.ValidUntil = time.Unix(issued, 0).UTC(), time.Unix(until, 0).UTC()
	return &r, nil
}

func getResult(ctx context.Context, q queryer, digest string) (*resultRow, error) {
	r, err := scanResult(q.QueryRowContext(ctx, `SELECT `+resultCols+` FROM results WHERE digest = ?`, digest))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	return r, err
}

func getMeta(ctx context.Context, q queryer, k string) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = ?`, k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

func setMeta(ctx context.Context, tx *sql.Tx, k, v string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, k, v)
	return err
}

// queryStrings returns the first column of every row of a query.
func queryStrings(ctx context.Context, db *sql.DB, query string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
