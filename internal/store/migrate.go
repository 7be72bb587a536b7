package store

import (
	"context"
	"database/sql"
	"fmt"
)

// column is a column added after the first schema. Databases made before
// it get it by ALTER TABLE at Open; a fresh database gets it the same way,
// so there is one definition.
type column struct{ table, name, def string }

// addedColumns lists the columns added to existing tables, oldest first.
var addedColumns = []column{
	// API tokens: expiry (0 = never) and revocation time (0 = not revoked).
	{"api_tokens", "expires", "INTEGER NOT NULL DEFAULT 0"},
	{"api_tokens", "revoked", "INTEGER NOT NULL DEFAULT 0"},
	// Devices: decommission time (0 = active).
	{"devices", "decommissioned", "INTEGER NOT NULL DEFAULT 0"},
	// Deployment devices: when the director first listed the release
	// (0 = never), so that a commit after a halt is counted.
	{"deployment_devices", "assigned_at", "INTEGER NOT NULL DEFAULT 0"},
	// Reports: why the device's time is not believed ('' = within the window).
	{"reports", "time_flag", "TEXT NOT NULL DEFAULT ''"},
	// Reports: the module a report is about, its mode and advisories.
	{"reports", "module", "TEXT NOT NULL DEFAULT ''"},
	{"reports", "mode", "TEXT NOT NULL DEFAULT ''"},
	{"reports", "advisories", "TEXT NOT NULL DEFAULT ''"},
	// Releases: the target of the integrator's pre-designated backup.
	{"releases", "backup", "TEXT NOT NULL DEFAULT ''"},
}

// migrate adds the columns an older database lacks, in one transaction.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, c := range addedColumns {
		has, err := hasColumn(ctx, tx, c.table, c.name)
		if err != nil {
			return err
		}
		if has {
			continue
		}
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+c.table+` ADD COLUMN `+c.name+` `+c.def); err != nil {
			return fmt.Errorf("migrating the database: adding %s.%s: %w", c.table, c.name, err)
		}
	}
	// Tables added after the first schema, each step idempotent.
	for _, step := range addedTables {
		if _, err := tx.ExecContext(ctx, step); err != nil {
			return fmt.Errorf("migrating the database: %w", err)
		}
	}
	return tx.Commit()
}

func hasColumn(ctx context.Context, tx *sql.Tx, table, name string) (bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return false, err
		}
		if n == name {
			return true, nil
		}
	}
	return false, rows.Err()
}
