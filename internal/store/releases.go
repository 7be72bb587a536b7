package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Release is an artifact the integrator signed into the image repository.
type Release struct {
	Target         string    `json:"target"`
	Name           string    `json:"name"`
	Version        string    `json:"version"`
	ReleaseCounter uint64    `json:"release_counter"`
	HardwareIDs    []string  `json:"hardware_ids"`
	Module         string    `json:"module"`
	SHA256         string    `json:"sha256"`
	Length         int64     `json:"length"`
	Created        time.Time `json:"created"`
	// Backup is the target of the integrator's pre-designated backup of
	// this release (a release of the same module), "" for none.
	Backup string `json:"backup,omitempty"`
}

// PutReleaseTx records a release (replacing a row of the same target,
// which only happens when the same bytes are re-signed).
func PutReleaseTx(ctx context.Context, tx *sql.Tx, r Release) error {
	hw, _ := json.Marshal(r.HardwareIDs)
	_, err := tx.ExecContext(ctx, `INSERT INTO releases (target, name, version, release_counter, hardware_ids, module, sha256, length, created, backup) VALUES (?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(target) DO UPDATE SET release_counter=excluded.release_counter, hardware_ids=excluded.hardware_ids, module=excluded.module, backup=excluded.backup`,
		r.Target, r.Name, r.Version, r.ReleaseCounter, string(hw), r.Module, r.SHA256, r.Length, unix(time.Now()), r.Backup)
	return err
}

const releaseCols = `target, name, version, release_counter, hardware_ids, module, sha256, length, created, backup`

func scanRelease(sc rowScanner) (Release, error) {
	var r Release
	var hw string
	var c int64
	if err := sc.Scan(&r.Target, &r.Name, &r.Version, &r.ReleaseCounter, &hw, &r.Module, &r.SHA256, &r.Length, &c, &r.Backup); err != nil {
		return r, err
	}
	r.Created = time.Unix(c, 0).UTC()
	return r, json.Unmarshal([]byte(hw), &r.HardwareIDs)
}

// Release returns a release by target path, or by "name@version".
func (s *Store) Release(ctx context.Context, ref string) (Release, error) {
	return ReleaseTx(ctx, s.db, ref)
}

// ReleaseTx is Release inside a caller's transaction.
func ReleaseTx(ctx context.Context, q execer, ref string) (Release, error) {
	r, err := scanRelease(q.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE target=? OR name || '@' || version=? ORDER BY created DESC LIMIT 1`, ref, ref))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%w: release %q (use the target path or NAME@VERSION)", ErrNotFound, ref)
	}
	return r, err
}

// Releases lists all releases, newest first.
func (s *Store) Releases(ctx context.Context) ([]Release, error) {
	return queryAll(ctx, s.db, scanRelease, `SELECT `+releaseCols+` FROM releases ORDER BY created DESC, target`)
}
