package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/store"
)

func open(t *testing.T) (*store.Store, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, ctx
}

func TestEnrollTokenIsUsedOnceAndDuplicateIDChangesNothing(t *testing.T) {
	st, ctx := open(t)
	now := time.Now()
	key := bytes.Repeat([]byte{1}, 32)
	if err := st.AddEnrollToken(ctx, "tok", "g", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.AddEnrollToken(ctx, "tok2", "g", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.AddEnrollToken(ctx, "old", "g", now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	d, err := st.Enroll(ctx, "tok", store.Device{ID: "d1", HardwareID: "hw", PublicKey: key}, now)
	if err != nil || d.Group != "g" {
		t.Fatalf("enroll: %v %+v", err, d)
	}
	if _, err := st.Enroll(ctx, "tok", store.Device{ID: "d-used", HardwareID: "hw", PublicKey: key}, now); !errors.Is(err, store.ErrTokenUsed) || !errors.Is(err, store.ErrConflict) {
		t.Errorf("used token: %v, want ErrTokenUsed", err)
	}
	for name, tok := range map[string]string{"expired": "old", "unknown": "nope"} {
		if _, err := st.Enroll(ctx, tok, store.Device{ID: "d-" + name, HardwareID: "hw", PublicKey: key}, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s token: %v, want ErrNotFound", name, err)
		}
	}
	other := bytes.Repeat([]byte{2}, 32)
	if _, err := st.Enroll(ctx, "tok2", store.Device{ID: "d1", HardwareID: "hw2", PublicKey: other}, now); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("duplicate id: %v, want ErrDuplicate", err)
	}
	pk, err := st.DevicePublicKey(ctx, "d1")
	if err != nil || !bytes.Equal(pk, key) {
		t.Fatalf("the duplicate replaced the key: %x %v", pk, err)
	}
	// The duplicate's transaction rolled back: its token is still good.
	if _, err := st.Enroll(ctx, "tok2", store.Device{ID: "d2", HardwareID: "hw", PublicKey: other}, now); err != nil {
		t.Fatalf("token of a refused enrollment: %v", err)
	}
}

func TestReportsAreStoredOnceAndReadInSeqOrder(t *testing.T) {
	st, ctx := open(t)
	now := time.Now()
	mk := func(id string, seq uint64, state string) store.Report {
		return store.Report{ID: id, DeviceID: "d1", Seq: seq, Time: now, State: state, Payload: []byte(id), Sig: []byte("s")}
	}
	add := func(rs ...store.Report) []store.Report {
		var added []store.Report
		err := st.Tx(ctx, func(tx *sql.Tx) error {
			var err error
			added, err = store.AddReportsTx(ctx, tx, rs, now)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return added
	}
	if got := add(mk("c", 3, "idle"), mk("a", 1, "checking"), mk("a", 1, "checking")); len(got) != 2 {
		t.Fatalf("%d added, want 2 (one duplicate in the batch)", len(got))
	}
	if got := add(mk("a", 1, "failed"), mk("b", 2, "downloading")); len(got) != 1 || got[0].ID != "b" {
		t.Fatalf("added %+v, want only b", got)
	}
	h, err := st.History(ctx, "d1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 || h[0].ID != "a" || h[1].ID != "b" || h[2].ID != "c" || h[0].State != "checking" {
		t.Fatalf("history %+v", h)
	}
	if h, _ := st.History(ctx, "d1", 2); len(h) != 2 {
		t.Fatalf("limit 2 gave %d", len(h))
	}
	if h, _ := st.History(ctx, "ghost", 0); len(h) != 0 {
		t.Fatalf("history of an unknown device: %+v", h)
	}
}

func TestMetaVersionsOnlyGoUp(t *testing.T) {
	st, ctx := open(t)
	exp := time.Now().Add(time.Hour)
	put := func(v int64) error {
		return st.PutMeta(ctx, store.Meta{Repo: "r", Role: "timestamp", Version: v, Data: []byte{byte(v)}, Expires: exp})
	}
	if err := put(1); err != nil {
		t.Fatal(err)
	}
	if err := put(2); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int64{2, 1, 0, -5} {
		if err := put(v); !errors.Is(err, store.ErrConflict) {
			t.Errorf("version %d after 2: %v, want ErrConflict", v, err)
		}
	}
	m, err := st.LatestMeta(ctx, "r", "timestamp")
	if err != nil || m.Version != 2 || !bytes.Equal(m.Data, []byte{2}) {
		t.Fatalf("latest: %+v %v", m, err)
	}
	// A transaction that fails part way stores none of its documents.
	err = st.PutMeta(ctx, store.Meta{Repo: "r", Role: "snapshot", Version: 1, Data: []byte("s"), Expires: exp},
		store.Meta{Repo: "r", Role: "timestamp", Version: 2, Data: []byte("t"), Expires: exp})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("mixed batch: %v", err)
	}
	if _, err := st.LatestMeta(ctx, "r", "snapshot"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("half a refused batch was stored: %v", err)
	}
	repos, err := st.ExpiringRepos(ctx, "timestamp", exp.Add(time.Second))
	if err != nil || len(repos) != 1 || repos[0] != "r" {
		t.Fatalf("expiring: %v %v", repos, err)
	}
	if repos, _ := st.ExpiringRepos(ctx, "timestamp", exp.Add(-time.Minute)); len(repos) != 0 {
		t.Fatalf("not yet expiring listed: %v", repos)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestBrokenOrWrongUploadsKeepNothing(t *testing.T) {
	st, ctx := open(t)
	data := bytes.Repeat([]byte("x"), 10000)
	h := sha256.Sum256(data)
	sha := hex.EncodeToString(h[:])
	cases := map[string]struct {
		r      io.Reader
		length int64
		sha    string
		want   error
	}{
		"sender stops early":  {&failingReader{data[:5000], io.ErrUnexpectedEOF}, int64(len(data)), sha, store.ErrIncomplete},
		"body shorter":        {bytes.NewReader(data[:5000]), int64(len(data)), sha, store.ErrConflict},
		"body longer":         {bytes.NewReader(append(data, 'y')), int64(len(data)), sha, store.ErrConflict},
		"other bytes":         {bytes.NewReader(bytes.Repeat([]byte("z"), len(data))), int64(len(data)), sha, store.ErrConflict},
		"sha not hex":         {bytes.NewReader(data), int64(len(data)), "../../ztota.db", store.ErrConflict},
		"sha of wrong length": {bytes.NewReader(data), int64(len(data)), sha[:62], store.ErrConflict},
		"sha not hex digits":  {bytes.NewReader(data), int64(len(data)), "ZZ" + sha[2:], store.ErrConflict},
	}
	for name, c := range cases {
		if err := st.PutArtifact(ctx, c.r, c.length, c.sha); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(st.Dir(), "artifacts", "sha256"))
	if len(ents) != 0 {
		t.Fatalf("refused uploads left %d files", len(ents))
	}
	if err := st.PutArtifact(ctx, bytes.NewReader(data), int64(len(data)), sha); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(st.ArtifactPath(sha)); !bytes.Equal(got, data) {
		t.Fatal("stored bytes differ")
	}
}
