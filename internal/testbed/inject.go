package testbed

import (
	"database/sql"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/tufrepo"
)

// InjectImageTargets writes targets into st as image targets version
// version, with the next snapshot and timestamp signed by the online keys
// in onlineKeys (a server's DATA/keys), and rels as release rows, in one
// transaction: what an attacker holding a server's database and online
// keys can make it serve. It returns the signed timestamp.
func InjectImageTargets(t testing.TB, st *store.Store, onlineKeys string, version int64, targets []byte, rels ...store.Release) []byte {
	t.Helper()
	ctx := Ctx(t)
	online, err := keyset.LoadOnline(onlineKeys)
	if err != nil {
		t.Fatal(err)
	}
	snapM, err := st.LatestMeta(ctx, "image", tufrepo.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	tsM, err := st.LatestMeta(ctx, "image", tufrepo.Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	prevSnap, err := tufrepo.Parse[metadata.SnapshotType](snapM.Data)
	if err != nil {
		t.Fatal(err)
	}
	prevTS, err := tufrepo.Parse[metadata.TimestampType](tsM.Data)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	snap := tufrepo.NextSnapshot(prevSnap, version, targets, exp)
	snapb, err := tufrepo.Sign(snap, online.ImageSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	ts := tufrepo.NextTimestamp(prevTS, snap.Signed.Version, snapb, exp)
	tsb, err := tufrepo.Sign(ts, online.ImageTimestamp)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Tx(ctx, func(tx *sql.Tx) error {
		for _, rel := range rels {
			if err := store.PutReleaseTx(ctx, tx, rel); err != nil {
				return err
			}
		}
		return store.PutMetaTx(ctx, tx,
			store.Meta{Repo: "image", Role: tufrepo.Targets, Version: version, Data: targets, Expires: exp},
			store.Meta{Repo: "image", Role: tufrepo.Snapshot, Version: snap.Signed.Version, Data: snapb, Expires: exp},
			store.Meta{Repo: "image", Role: tufrepo.Timestamp, Version: ts.Signed.Version, Data: tsb, Expires: exp})
	})
	if err != nil {
		t.Fatal(err)
	}
	return tsb
}
