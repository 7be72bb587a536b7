package verifystate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certverify"
	"github.com/ztota/ztota/internal/certverify/certverifytest"
	"github.com/ztota/ztota/internal/translog"
)

// fixture is the shared certificate fixture.
type fixture struct{ *certverifytest.Fixture }

func newFixture(t *testing.T) *fixture { return &fixture{certverifytest.New(t)} }

// verify runs one stateful verification as `ztota verify --state` does.
func (f *fixture) verify(t *testing.T, path string, env []byte, rc *translog.Receipt, list []byte) error {
	t.Helper()
	o := certverify.Options{Root: f.Root, Now: f.Now, ArtifactSHA256: f.Artifact, Receipt: rc, Revocations: list}
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
	env, rc := f.Issue(t, attest.KindCertificate, attest.VerdictPass)
	v1 := f.Revocations(t, 1)
	v2 := f.Revocations(t, 2, attest.Revocation{ArtifactSHA256: f.Artifact, CertificateDigest: attest.DigestOf(env),
		Advisories: []string{"GO-2025-0001"}, Time: f.Now, Reason: "test"})
	path := filepath.Join(t.TempDir(), "verify-state.json")

	// Stateless, the rollback works: this is the attack.
	if _, err := certverify.Verify(env, certverify.Options{Root: f.Root, Now: f.Now, ArtifactSHA256: f.Artifact, Revocations: v1}); err != nil {
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
	env, rc := f.Issue(t, attest.KindCertificate, attest.VerdictPass)
	path := filepath.Join(t.TempDir(), "state.json")
	if err := f.verify(t, path, env, rc, f.Revocations(t, 3)); err != nil {
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
