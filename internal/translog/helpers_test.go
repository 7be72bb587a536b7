package translog_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ztota/ztota/internal/translog"

	_ "modernc.org/sqlite"
)

const testOrigin = "ztota-certd.example/log"

// dsn opens a database the way package store does.
func dsn(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"
}

func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "log.db")
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(4)
	t.Cleanup(func() { db.Close() })
	return db
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

type testKey struct {
	priv     ed25519.PrivateKey
	signer   note.Signer
	verifier note.Verifier
	vkey     string
}

func newKey(t testing.TB, name string) testKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, v, vkey, err := translog.SignerFromKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: priv, signer: s, verifier: v, vkey: vkey}
}

func newLog(t testing.TB, db *sql.DB, k testKey) *translog.Log {
	t.Helper()
	l, err := translog.Open(db, k.signer.Name(), k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type rec struct {
	kind string
	data []byte
}

func mkRec(tag string, i int) rec {
	kinds := []string{translog.KindCertificate, translog.KindRejection, translog.KindReinspection, translog.KindRevocationList, translog.KindVulnDBSnapshot}
	return rec{kind: kinds[i%len(kinds)], data: fmt.Appendf(nil, "%s-record-%d\nwith a newline and \x00 bytes", tag, i)}
}

// appendAll appends recs, perTx to a transaction, and checks the indexes.
func appendAll(t testing.TB, ctx context.Context, l *translog.Log, db *sql.DB, recs []rec, perTx int) {
	t.Helper()
	start, err := l.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(recs); i += perTx {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for j := i; j < min(i+perTx, len(recs)); j++ {
			idx, err := l.Append(ctx, tx, recs[j].kind, recs[j].data)
			if err != nil {
				tx.Rollback()
				t.Fatal(err)
			}
			if idx != start+int64(j) {
				tx.Rollback()
				t.Fatalf("append %d got index %d, want %d", j, idx, start+int64(j))
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// refLeaf and refRoot are an independent RFC 6962 implementation, written
// from the specification rather than with tlog, to pin the leaf encoding.
func refLeaf(r rec) tlog.Hash {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write([]byte(r.kind))
	h.Write([]byte("\n"))
	h.Write(r.data)
	return tlog.Hash(h.Sum(nil))
}

func refRoot(leaves []tlog.Hash) tlog.Hash {
	switch n := len(leaves); n {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		l, r := refRoot(leaves[:k]), refRoot(leaves[k:])
		return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
	}
}

func refLeaves(recs []rec) []tlog.Hash {
	out := make([]tlog.Hash, len(recs))
	for i, r := range recs {
		out[i] = refLeaf(r)
	}
	return out
}

// signedAt returns the log's current signed checkpoint, verified.
func signedAt(t testing.TB, ctx context.Context, l *translog.Log, k testKey) (translog.Checkpoint, []byte) {
	t.Helper()
	signed, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := translog.VerifyCheckpoint(signed, k.verifier)
	if err != nil {
		t.Fatalf("own checkpoint does not verify: %v\n%s", err, signed)
	}
	return cp, signed
}
