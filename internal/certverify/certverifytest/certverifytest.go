// Package certverifytest mints, for tests, what offline certificate
// verification checks: a certifier trust directory (certroot) whose root
// pins the log origin Origin, a transparency log in SQLite, results
// (certificates, rejections) about one artifact signed and logged with
// their receipts, and signed revocation lists.
package certverifytest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/translog"
)

// Origin is the log origin the fixture's root pins.
const Origin = "test/log"

// Fixture is a certifier's trust material and log, in a test's temporary
// directories.
type Fixture struct {
	Dir      string // the trust directory (root.json and the online keys)
	Root     *certroot.Root
	Online   certroot.Online
	Log      *translog.Log
	DB       *sql.DB // the log's database
	Now      time.Time
	Artifact string // hex sha256 of the artifact results are about
}

// HexSum is the hex sha256 of s.
func HexSum(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// New makes a trust directory, loads its root and online keys and opens
// an empty log; everything is removed when the test ends.
func New(t testing.TB) *Fixture {
	t.Helper()
	f := &Fixture{Dir: filepath.Join(t.TempDir(), "keys"), Now: time.Now().UTC().Truncate(time.Second), Artifact: HexSum("artifact")}
	if err := certroot.Init(f.Dir, certroot.Options{Now: f.Now, LogOrigin: Origin}); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.Root, err = certroot.LoadCurrent(f.Dir); err != nil {
		t.Fatal(err)
	}
	if f.Online, err = certroot.LoadOnline(f.Dir); err != nil {
		t.Fatal(err)
	}
	if f.DB, err = sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "log.db")+"?_txlock=immediate"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.DB.Close() })
	signer, err := certroot.LogSigner(Origin, f.Online.Log)
	if err != nil {
		t.Fatal(err)
	}
	if f.Log, err = translog.Open(f.DB, Origin, signer); err != nil {
		t.Fatal(err)
	}
	return f
}

// Issue signs a result of kind and verdict for the fixture's artifact,
// valid for an hour, logs it and returns it with its receipt.
func (f *Fixture) Issue(t testing.TB, kind, verdict string) ([]byte, *translog.Receipt) {
	t.Helper()
	r := attest.Result{Kind: kind, Verdict: verdict, Issued: f.Now, ValidUntil: f.Now.Add(time.Hour), Components: 1}
	r.Verifier.ID, r.Verifier.Version = "test-verifier", "1"
	r.DB.ID, r.Policy.Digest, r.Policy.Version = "sha256:"+HexSum("db"), "sha256:"+HexSum("policy"), 1
	r.Artifact.Name, r.Artifact.Size = "app", 1
	env, err := attest.Sign([]attest.Subject{{Name: "app", SHA256: f.Artifact}}, r, f.Online.Certify)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tx, err := f.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := f.Log.Append(ctx, tx, kind, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	rc, err := f.Log.Receipt(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	return env, &rc
}

// Revocations signs revocation list version, valid for an hour.
func (f *Fixture) Revocations(t testing.TB, version int64, entries ...attest.Revocation) []byte {
	t.Helper()
	b, err := attest.SignRevocations(attest.RevocationList{Version: version, Issued: f.Now, Expires: f.Now.Add(time.Hour),
		Entries: entries}, f.Online.Revoke)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
