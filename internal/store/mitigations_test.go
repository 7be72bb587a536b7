package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFeedCursorNeverMovesBack performs an attempt to act again on an
// event at or below the cursor: AdvanceFeedCursorTx refuses it with
// ErrCursorBehind and the transaction (and whatever it recorded) rolls
// back; an old database gains the mitigation tables at Open, and the
// cursor survives a reopen.
func TestFeedCursorNeverMovesBack(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := OpenSQLite(ctx, filepath.Join(dir, "ztota.db"), schema) // the first schema: no mitigation tables
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sha := strings.Repeat("cd", 32)
	if err := st.Tx(ctx, func(tx *sql.Tx) error { return AdvanceFeedCursorTx(ctx, tx, FeedCertd, 5, now) }); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int64{5, 4} {
		err := st.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := OpenMitigationTx(ctx, tx, Mitigation{DeviceID: "d", Artifact: sha, Target: "t"}, now); err != nil {
				return err
			}
			return AdvanceFeedCursorTx(ctx, tx, FeedCertd, seq, now)
		})
		if !errors.Is(err, ErrCursorBehind) {
			t.Fatalf("event %d at cursor 5: %v, want ErrCursorBehind", seq, err)
		}
	}
	if ms, _ := st.Mitigations(ctx, MitigationFilter{}); len(ms) != 0 {
		t.Fatalf("a refused event left mitigations: %+v", ms)
	}
	st.Close()
	st, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if c, err := st.FeedCursor(ctx, FeedCertd); c != 5 || err != nil {
		t.Fatalf("cursor after reopen: %d %v", c, err)
	}
}

// TestOneOpenRepairPerArtifact: a second event about the same artifact
// merges advisories and releases into the open request instead of filing
// another, and a second mitigation of the same device and artifact is not
// recorded.
func TestOneOpenRepairPerArtifact(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sha := strings.Repeat("ef", 32)
	var ids []int64
	var news, added []bool
	for _, adv := range [][]string{{"B-2", "A-1"}, {"C-3", "A-1"}} {
		err := st.Tx(ctx, func(tx *sql.Tx) error {
			id, isNew, err := OpenRepairTx(ctx, tx, Repair{Artifact: sha, Releases: []string{"r1"}, Advisories: adv, Devices: 1}, time.Now())
			if err != nil {
				return err
			}
			ids, news = append(ids, id), append(news, isNew)
			a, err := OpenMitigationTx(ctx, tx, Mitigation{DeviceID: "d", Artifact: sha, Target: "r1", Advisories: adv, Repair: id}, time.Now())
			added = append(added, a)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if ids[0] != ids[1] || !slices.Equal(news, []bool{true, false}) || !slices.Equal(added, []bool{true, false}) {
		t.Fatalf("ids %v new %v added %v", ids, news, added)
	}
	r, err := st.Repair(ctx, ids[0])
	if err != nil || !slices.Equal(r.Advisories, []string{"A-1", "B-2", "C-3"}) || !slices.Equal(r.Releases, []string{"r1"}) {
		t.Fatalf("merged repair %+v %v", r, err)
	}
	if _, err := st.Repair(ctx, 99); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown repair: %v", err)
	}
}
