package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestOldDatabasesAreMigrated opens a database made with the first schema
// (no token expiry or revocation, no decommissioning, no assignment time,
// no report time flag): Open adds the columns, keeps every row, and
// existing tokens stay valid without an expiry. A second Open changes
// nothing.
func TestOldDatabasesAreMigrated(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := OpenSQLite(ctx, filepath.Join(dir, "ztota.db"), schema)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO api_tokens (hash, scope, name, created) VALUES ('` + HashToken("old-secret") + `', 'admin', 'initial admin', 1700000000)`,
		`INSERT INTO devices (id, public_key, hardware_id, enrolled) VALUES ('dev-1', zeroblob(32), 'hw1', 1700000000)`,
		`INSERT INTO deployment_devices (deployment, device_id, wave, ord, status, updated) VALUES ('dep-1', 'dev-1', 0, 0, 'assigned', 1700000000)`,
		`INSERT INTO reports (id, device_id, seq, time, state, target, version, progress, detail, payload, sig, received) VALUES ('r1', 'dev-1', 1, 1700000000000, 'idle', '', '', 0, '', x'00', x'00', 1700000000000)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range addedColumns {
		tx, _ := db.BeginTx(ctx, nil)
		has, err := hasColumn(ctx, tx, c.table, c.name)
		tx.Rollback()
		if err != nil || has {
			t.Fatalf("the old schema already has %s.%s (%v): the test does not start from an old database", c.table, c.name, err)
		}
	}
	db.Close()

	for i := 0; i < 2; i++ {
		st, err := Open(ctx, dir)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if scope, err := st.CheckAPIToken(ctx, "old-secret", time.Now().Add(100*365*24*time.Hour)); err != nil || scope != "admin" {
			t.Fatalf("old token after migration: %q %v", scope, err)
		}
		if _, dc, err := st.DeviceKey(ctx, "dev-1"); err != nil || !dc.IsZero() {
			t.Fatalf("old device after migration: %s %v", dc, err)
		}
		h, err := st.History(ctx, "dev-1", 0)
		if err != nil || len(h) != 1 || h[0].TimeFlag != "" {
			t.Fatalf("old report after migration: %+v %v", h, err)
		}
		ts, err := st.APITokens(ctx)
		if err != nil || len(ts) != 1 || !ts[0].Expires.IsZero() || !ts[0].Revoked.IsZero() {
			t.Fatalf("tokens after migration: %+v %v", ts, err)
		}
		st.Close()
	}
	st, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.RevokeAPIToken(ctx, TokenID("old-secret"), time.Now()); !errors.Is(err, ErrConflict) {
		t.Fatalf("revoking the only admin token: %v, want ErrConflict", err)
	}
}
