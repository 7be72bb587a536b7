package release_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/release"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/testbed"
	"github.com/ztota/ztota/internal/tufrepo"
)

// TestResignWithoutRecordVouchesOnlyForItsOwnKeys: a keys directory that
// lost its record of signed targets re-signs the server's copy only if a
// targets key of its own (here the retired one) signed it, and says so
// (FromRecord false); a server copy signed by a key it never held is
// refused with ErrNoTrustedTargets and nothing is published.
func TestResignWithoutRecordVouchesOnlyForItsOwnKeys(t *testing.T) {
	ctx := testbed.Ctx(t)
	t.Run("server copy signed by the retired key", func(t *testing.T) {
		b := testbed.New(t, testbed.Options{})
		v1 := b.Release(b.ScriptBundle("1.0.0", true, 64), "1.0.0", 1, "board-a")
		if err := os.Remove(filepath.Join(b.KeysDir, keyset.ImageTargetsRecord)); err != nil {
			t.Fatal(err)
		}
		if _, err := keyset.RotateRole(b.KeysDir, "image", tufrepo.Targets, "", time.Time{}); err != nil {
			t.Fatal(err)
		}
		res, err := release.Resign(ctx, b.Admin, b.KeysDir, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Resigned || res.FromRecord || !slices.Equal(res.Targets, []string{v1.Target}) {
			t.Fatalf("re-signed %+v; want v1 from the server's copy", res)
		}
	})
	t.Run("server copy signed by a stranger", func(t *testing.T) {
		b := testbed.New(t, testbed.Options{})
		b.Release(b.ScriptBundle("1.0.0", true, 64), "1.0.0", 1, "board-a")
		if err := os.Remove(filepath.Join(b.KeysDir, keyset.ImageTargetsRecord)); err != nil {
			t.Fatal(err)
		}
		st := b.Server.Store()
		cur, err := st.LatestMeta(ctx, "image", tufrepo.Targets)
		if err != nil {
			t.Fatal(err)
		}
		prev, _ := tufrepo.Parse[metadata.TargetsType](cur.Data)
		stranger, err := keys.Generate("")
		if err != nil {
			t.Fatal(err)
		}
		next := tufrepo.NextTargets(prev, time.Now().Add(time.Hour))
		nb, err := tufrepo.Sign(next, stranger)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Tx(ctx, func(tx *sql.Tx) error {
			return store.PutMetaTx(ctx, tx, store.Meta{Repo: "image", Role: tufrepo.Targets, Version: next.Signed.Version, Data: nb, Expires: next.Signed.Expires})
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := keyset.RotateRole(b.KeysDir, "image", tufrepo.Targets, "", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, err := release.Resign(ctx, b.Admin, b.KeysDir, 0); !errors.Is(err, release.ErrNoTrustedTargets) {
			t.Fatalf("Resign over a stranger's targets: %v; want ErrNoTrustedTargets", err)
		}
		if after, _ := st.LatestMeta(ctx, "image", tufrepo.Targets); after.Version != next.Signed.Version {
			t.Fatalf("image targets at v%d after the refusal, want v%d unchanged", after.Version, next.Signed.Version)
		}
	})
}
