package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFixIsRecordedOnceAndClosingCloses performs a second fix for a
// mitigation that already has one (ErrActed, the transaction rolls back),
// closes mitigations and the repair request, and checks the outbox keeps
// its order; an old database gains the tables at Open.
func TestFixIsRecordedOnceAndClosingCloses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := OpenSQLite(ctx, filepath.Join(dir, "ztota.db"), schema+mitigationTables) // before the fix tables
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	sha := strings.Repeat("ef", 32)
	var rid int64
	err = st.Tx(ctx, func(tx *sql.Tx) error {
		rid, _, err = OpenRepairTx(ctx, tx, Repair{Artifact: sha, Releases: []string{"t1"}, Devices: 2}, now)
		if err != nil {
			return err
		}
		for _, d := range []string{"a", "b"} {
			if _, err := OpenMitigationTx(ctx, tx, Mitigation{DeviceID: d, Artifact: sha, Target: "t1", Repair: rid}, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Tx(ctx, func(tx *sql.Tx) error { return SetFixTx(ctx, tx, rid, []int64{1}, "t2", "dep-1", now) }); err != nil {
		t.Fatal(err)
	}
	err = st.Tx(ctx, func(tx *sql.Tx) error { return SetFixTx(ctx, tx, rid, []int64{2, 1}, "t3", "dep-2", now) })
	if !errors.Is(err, ErrActed) {
		t.Fatalf("a second fix for mitigation 1: %v", err)
	}
	ms, _ := st.Mitigations(ctx, MitigationFilter{})
	if ms[0].FixDeployment != "dep-1" || ms[1].FixDeployment != "" {
		t.Fatalf("fixes after the refused second one: %+v", ms)
	}
	if r, _ := st.Repair(ctx, rid); r.FixRelease != "t2" || r.Deployment != "dep-1" || r.Open != 2 {
		t.Fatalf("repair %+v", r)
	}
	// A later deployment for mitigation 2 keeps the repair's first one.
	if err := st.Tx(ctx, func(tx *sql.Tx) error { return SetFixTx(ctx, tx, rid, []int64{2}, "t2", "dep-3", now) }); err != nil {
		t.Fatal(err)
	}
	if r, _ := st.Repair(ctx, rid); r.Deployment != "dep-1" {
		t.Fatalf("repair's first fix deployment replaced: %+v", r)
	}
	closeOne := func(id int64, state string) (closedRepair bool) {
		t.Helper()
		err := st.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := CloseMitigationTx(ctx, tx, id, state, "t2", now); err != nil {
				return err
			}
			closedRepair, err = CloseRepairIfDoneTx(ctx, tx, rid, now)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return closedRepair
	}
	if closeOne(1, MitigationClosed) {
		t.Fatal("repair closed with a mitigation open")
	}
	if !closeOne(2, MitigationAbandoned) {
		t.Fatal("repair not closed after the last mitigation")
	}
	r, _ := st.Repair(ctx, rid)
	if r.State != RepairClosed || r.Closed.IsZero() || r.Open != 0 || r.ClosedCount != 2 {
		t.Fatalf("closed repair %+v", r)
	}
	ms, _ = st.Mitigations(ctx, MitigationFilter{State: MitigationClosed})
	if len(ms) != 1 || ms[0].ClosedBy != "t2" || ms[0].Closed.IsZero() || ms[0].FixDeployment != "dep-1" {
		t.Fatalf("closed mitigation %+v", ms)
	}
	// Closing again changes nothing.
	err = st.Tx(ctx, func(tx *sql.Tx) error {
		ok, err := CloseMitigationTx(ctx, tx, 1, MitigationAbandoned, "", now)
		if ok {
			t.Error("a closed mitigation closed again")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// The outbox: in order, the body sees its seq.
	for _, ev := range []string{"a", "b"} {
		err := st.Tx(ctx, func(tx *sql.Tx) error {
			_, err := AddOutboxTx(ctx, tx, ev, rid, now, func(seq int64) ([]byte, error) { return []byte(ev + string(rune('0'+seq))), nil })
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	e, err := st.NextOutbox(ctx)
	if err != nil || e.Seq != 1 || string(e.Body) != "a1" {
		t.Fatalf("next %+v %v", e, err)
	}
	st.OutboxFailed(ctx, 1, "down")
	if e, _ := st.NextOutbox(ctx); e.Seq != 1 || e.Attempts != 1 || e.LastError != "down" {
		t.Fatalf("after a failure %+v", e)
	}
	st.OutboxDelivered(ctx, 1, now)
	if e, _ := st.NextOutbox(ctx); e.Seq != 2 || string(e.Body) != "b2" {
		t.Fatalf("after the delivery %+v", e)
	}
	st.OutboxDelivered(ctx, 2, now)
	if _, err := st.NextOutbox(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty outbox: %v", err)
	}
}
