// Package store keeps the OTA server's state: TUF metadata of every
// repository, releases, devices, enrollment and API tokens, deployments and
// the append-only status history, in SQLite (a pure-Go driver, no cgo), and
// artifacts in a content-addressed directory.
//
// Layout of the data directory:
//
//	ztota.db                    SQLite database (WAL mode)
//	artifacts/sha256/<hex>      artifact bytes, named by their sha256
//
// Every write that spans several rows runs in one transaction, so a crash
// leaves either the old or the new state. Status reports are never updated
// or deleted; a report id is stored at most once.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Errors.
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("conflict")
	ErrDuplicate = errors.New("already exists")
	// ErrIncomplete is an upload whose sender stopped or failed before
	// the declared length: the sender's fault, nothing is kept.
	ErrIncomplete = errors.New("incomplete upload: send the whole artifact again")
)

// Store is the server's state.
type Store struct {
	db  *sql.DB
	dir string
}

const schema = `
CREATE TABLE IF NOT EXISTS tuf_meta (
	repo TEXT NOT NULL, role TEXT NOT NULL, version INTEGER NOT NULL,
	data BLOB NOT NULL, expires INTEGER NOT NULL, created INTEGER NOT NULL,
	PRIMARY KEY (repo, role, version));
CREATE TABLE IF NOT EXISTS artifacts (
	sha256 TEXT PRIMARY KEY, length INTEGER NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS releases (
	target TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL,
	release_counter INTEGER NOT NULL, hardware_ids TEXT NOT NULL, module TEXT NOT NULL,
	sha256 TEXT NOT NULL, length INTEGER NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
	id TEXT PRIMARY KEY, public_key BLOB NOT NULL, hardware_id TEXT NOT NULL,
	grp TEXT NOT NULL DEFAULT '', enrolled INTEGER NOT NULL, last_seen INTEGER NOT NULL DEFAULT 0,
	state TEXT NOT NULL DEFAULT '', installed TEXT NOT NULL DEFAULT '',
	assigned TEXT NOT NULL DEFAULT '', last_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS enroll_tokens (
	hash TEXT PRIMARY KEY, grp TEXT NOT NULL, expires INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS enroll_secrets (
	hash TEXT PRIMARY KEY, secret BLOB NOT NULL, device TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS api_tokens (
	hash TEXT PRIMARY KEY, scope TEXT NOT NULL, name TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reports (
	id TEXT PRIMARY KEY, device_id TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER NOT NULL,
	state TEXT NOT NULL, target TEXT NOT NULL, version TEXT NOT NULL, progress INTEGER NOT NULL,
	detail TEXT NOT NULL, payload BLOB NOT NULL, sig BLOB NOT NULL, received INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS reports_device ON reports (device_id, seq);
CREATE TABLE IF NOT EXISTS deployments (
	id TEXT PRIMARY KEY, target TEXT NOT NULL, waves TEXT NOT NULL, failure_threshold REAL NOT NULL,
	wave INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
	created INTEGER NOT NULL, updated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deployment_devices (
	deployment TEXT NOT NULL, device_id TEXT NOT NULL, wave INTEGER NOT NULL, ord INTEGER NOT NULL,
	status TEXT NOT NULL, updated INTEGER NOT NULL,
	PRIMARY KEY (deployment, device_id));
CREATE INDEX IF NOT EXISTS deployment_devices_device ON deployment_devices (device_id, status);
CREATE TABLE IF NOT EXISTS certificates (
	sha256 TEXT PRIMARY KEY, cert_digest TEXT NOT NULL, bundle BLOB NOT NULL,
	issued INTEGER NOT NULL, valid_until INTEGER NOT NULL, stored INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS revocations (
	id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, data BLOB NOT NULL,
	list BLOB NOT NULL, expires INTEGER NOT NULL, stored INTEGER NOT NULL);
`

// Open opens (creating if needed) the store in dir.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "artifacts", "sha256"), 0o700); err != nil {
		return nil, err
	}
	db, err := OpenSQLite(ctx, filepath.Join(dir, "ztota.db"), schema)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	if err := migrateDeviceModules(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, dir: dir}, nil
}

// OpenSQLite opens (creating if needed) the SQLite database at path the
// way ztota's services use it: WAL, synchronous writes, foreign keys,
// writers that take the lock when they begin (so a transaction that reads
// then writes never fails with SQLITE_BUSY), and runs schema.
func OpenSQLite(ctx context.Context, path, schema string) (*sql.DB, error) {
	dsn := "file:" + path +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("creating schema in %s: %w", path, err)
	}
	return db, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

func unix(t time.Time) int64 { return t.UTC().Unix() }

// optionalTime reads a Unix-seconds column in which 0 means "never": 0 is
// the zero time.
func optionalTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(...any) error }

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// queryAll runs query and scans every row it returns with scan; no rows is
// a nil slice.
func queryAll[T any](ctx context.Context, q querier, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// scanString scans a row of one text column.
func scanString(sc rowScanner) (string, error) {
	var s string
	err := sc.Scan(&s)
	return s, err
}

// Tx runs fn in one transaction.
func (s *Store) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// DB exposes the database for read-only queries in tests.
func (s *Store) DB() *sql.DB { return s.db }
