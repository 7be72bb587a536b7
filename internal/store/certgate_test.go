package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

// TestGateTablesAreAddedToAnOlderDatabase opens a database made before the
// certification gate (no certificates or revocations tables): Open adds
// them and keeps every row; the list version never goes down, and an
// older certificate does not replace a newer one.
func TestGateTablesAreAddedToAnOlderDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TABLE certificates`, `DROP TABLE revocations`,
		`INSERT INTO devices (id, public_key, hardware_id, enrolled) VALUES ('dev-1', zeroblob(32), 'hw1', 1700000000)`} {
		if _, err := st.DB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	if st, err = Open(ctx, dir); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Device(ctx, "dev-1"); err != nil {
		t.Fatalf("old device after migration: %v", err)
	}
	if _, err := st.Revocations(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no list yet: %v, want ErrNotFound", err)
	}
	now := time.Unix(1800000000, 0).UTC()
	set := func(v int64) error {
		return st.Tx(ctx, func(tx *sql.Tx) error {
			return SetRevocationsTx(ctx, tx, StoredRevocations{Version: v, Data: []byte("d"), List: []byte("{}"), Expires: now, Stored: now})
		})
	}
	if err := set(3); err != nil {
		t.Fatal(err)
	}
	if err := set(2); !errors.Is(err, ErrConflict) {
		t.Fatalf("storing version 2 over 3: %v, want ErrConflict", err)
	}
	if r, err := st.Revocations(ctx); err != nil || r.Version != 3 {
		t.Fatalf("stored list: %+v %v", r, err)
	}
	put := func(issued time.Time, digest string) error {
		return st.Tx(ctx, func(tx *sql.Tx) error {
			return PutCertificateTx(ctx, tx, CertBundle{SHA256: "ab", CertDigest: digest, Bundle: []byte("{}"), Issued: issued,
				ValidUntil: issued.Add(time.Hour), Stored: now})
		})
	}
	if err := put(now, "new"); err != nil {
		t.Fatal(err)
	}
	if err := put(now.Add(-time.Minute), "old"); !errors.Is(err, ErrConflict) {
		t.Fatalf("an older certificate: %v, want ErrConflict", err)
	}
	if c, err := st.Certificate(ctx, "ab"); err != nil || c.CertDigest != "new" {
		t.Fatalf("stored certificate: %+v %v", c, err)
	}
	if _, err := st.Certificate(ctx, "cd"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no certificate: %v, want ErrNotFound", err)
	}
}
