package verifystate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/certverify"
	"github.com/ztota/ztota/internal/translog"
)

type fixture struct {
	root     *certroot.Root
	online   certroot.Online
	log      *translog.Log
	db       *sql.DB
	now      time.Time
	artifact string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	now := time.Now().UTC().Truncate(time.Second)
	if err := certroot.Init(dir, certroot.Options{Now: now}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("artifact"))
	f := &fixture{now: now, artifact: hex.EncodeToString(sum[:])}
	var err error
	if f.root, err = certroot.LoadCurrent(dir); err != nil {
		t.Fatal(err)
	}
	if f.online, err = certroot.LoadOnline(dir); err != nil {
		t.Fatal(err)
	}
	if f.db, err = sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "log.db")+"?_txlock=immediate"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	origin, _ := f.root.LogOrigin()
	signer, err := certroot.LogSigner(origin, f.online.Log)
	if err != nil {
		t.Fatal(err)
	}
	if f.log, err = translog.Open(f.db, origin, signer); err != nil {
		t.Fatal(err)
	}
	return f
}

// certificate signs and logs a passing certificate for the artifact.
func (f *fixture) certificate(t *testing.T) ([]byte, *translog.Receipt) {
	t.Helper()
	r := attest.Result{Kind: attest.KindCertificate, Verdict: attest.VerdictPass, Issued: f.now, ValidUntil: f.now.Add(time.Hour), Components: 1}
	r.Verifier.ID, r.Verifier.Version = "test-verifier", "1"
	db := sha256.Sum256([]byte("db"))
	r.DB.ID, r.Policy.Digest, r.Policy.Version = "sha256:"+hex.EncodeToString(db[:]), "sha256:"+hex.EncodeToString(db[:]), 1
	r.Artifact.Name, r.Artifact.Size = "app", 1
	env, err := attest.Sign([]attest.Subject{{Name: "app", SHA256: f.artifact}}, r, f.online.Certify)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := f.log.Append(ctx, tx, attest.KindCertificate, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	rc, err := f.log.Receipt(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	return env, &rc
}

func (f *fixture) list(t *testing.T, version int64, entries ...attest.Revocation) []byte {
	t.Helper()
	b, err := attest.SignRevocations(attest.RevocationList{Version: version, Issued: f.now, Expires: f.now.Add(time.Hour),
		Entries: entries}, f.online.Revoke)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verify runs one stateful verification as `ztota verify --state` does.
func (f *fixture) verify(t *testing.T, path string, env []byte, rc *translog.Receipt, list []byte) error {
	t.Helper()
	o := certverify.Options{Root: f.root, Now: f.now, ArtifactSHA256: f.artifact, Receipt: rc, Revocations: list}
	return Update(path, func(s *State) error {
		s.Apply(&o)
		rep, err := certverify.Verify(env, o)
		if aerr := s.Advance(rep); aerr != nil {
			return errors.Join(err, aerr)
		}
		return err
	})
}

// TestOlderRevocationListCannotUnrevoke performs attack 4 of issue 6: a
// certificate is revoked by list version 2; the attacker (or a stale
// mirror) then offers the older version 1, still unexpired, which does not
// revoke it. Without state the old verifier passed the certificate with
// version 1. With the state file, version 2 is recorded by the first run
// (although that run refuses the certificate), the second run is refused
// with attest.ErrRollback and the state file is byte-for-byte unchanged;
// without any list the recorded version 2 still revokes it.
func TestOlderRevocationListCannotUnrevoke(t *testing.T) {
	f := newFixture(t)
	env, rc := f.certificate(t)
	v1 := f.list(t, 1)
	v2 := f.list(t, 2, attest.Revocation{ArtifactSHA256: f.artifact, CertificateDigest: attest.DigestOf(env),
		Advisories: []string{"GO-2025-0001"}, Time: f.now, Reason: "test"})
	path := filepath.Join(t.TempDir(), "verify-state.json")

	// Stateless, the rollback works: this is the attack.
	if _, err := certverify.Verify(env, certverify.Options{Root: f.root, Now: f.now, ArtifactSHA256: f.artifact, Revocations: v1}); err != nil {
		t.Fatalf("without state the old list is accepted as such: %v", err)
	}

	if err := f.verify(t, path, env, rc, v2); !errors.Is(err, certverify.ErrRevoked) {
		t.Fatalf("with v2: %v, want ErrRevoked", err)
	}
	st, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Revocations == nil || st.Revocations.Version != 2 || st.Checkpoint == nil || st.Checkpoint.Size != 1 {
		t.Fatalf("state after v2: %+v", st)
	}
	before, _ := os.ReadFile(path)

	if err := f.verify(t, path, env, rc, v1); !errors.Is(err, attest.ErrRollback) {
		t.Fatalf("with the older v1: %v, want attest.ErrRollback", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatalf("state changed by a refused older list:\n%s\n->\n%s", before, after)
	}
	if err := f.verify(t, path, env, rc, nil); !errors.Is(err, certverify.ErrRevoked) {
		t.Fatalf("with no list: %v, want ErrRevoked by the recorded v2", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("state changed by a run that verified nothing new")
	}
}

// TestStateOnlyMovesForward: Advance refuses older lists and smaller
// checkpoints (ErrBackwards) and leaves the state as it was; a corrupt
// file is ErrCorrupt, not an empty state.
func TestStateOnlyMovesForward(t *testing.T) {
	f := newFixture(t)
	env, rc := f.certificate(t)
	path := filepath.Join(t.TempDir(), "state.json")
	if err := f.verify(t, path, env, rc, f.list(t, 3)); err != nil {
		t.Fatal(err)
	}
	st, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	old := &attest.RevocationList{Version: 2}
	if err := st.Advance(&certverify.Report{Revocations: old}); !errors.Is(err, ErrBackwards) {
		t.Fatalf("older list: %v, want ErrBackwards", err)
	}
	smaller := translog.Checkpoint{Origin: st.Checkpoint.Origin, Size: 0}
	if err := st.Advance(&certverify.Report{NewestCheckpoint: &smaller}); !errors.Is(err, ErrBackwards) {
		t.Fatalf("smaller checkpoint: %v, want ErrBackwards", err)
	}
	other := translog.Checkpoint{Origin: "another/log", Size: 5}
	if err := st.Advance(&certverify.Report{Revocations: &attest.RevocationList{Version: 4}, NewestCheckpoint: &other}); !errors.Is(err, ErrBackwards) {
		t.Fatalf("checkpoint of another log: %v, want ErrBackwards", err)
	}
	if st.Revocations.Version != 3 || st.Checkpoint.Origin == "another/log" {
		t.Fatalf("a refused Advance changed the state: %+v", st)
	}
	for _, bad := range []string{`{`, `{"format":1,"FORMAT":1}`, `{"format":2}`, `{"format":1,"extra":1}`} {
		os.WriteFile(path, []byte(bad), 0o600)
		if _, err := Load(path); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", bad, err)
		}
	}
}
