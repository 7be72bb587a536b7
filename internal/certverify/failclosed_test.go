package certverify

import (
	"context"
	"crypto"
	"errors"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/translog"
)

// TestNoArtifactDigestIsRefused performs field failure 7 of issue 6 (first
// half): Verify was called with a passing certificate and no artifact
// digest. The old code skipped the subject check and passed the
// certificate for any artifact; now the digest is mandatory.
func TestNoArtifactDigestIsRefused(t *testing.T) {
	f := newFixture(t)
	env, rc := f.Issue(t, attest.KindCertificate, attest.VerdictPass)
	rep, err := Verify(env, Options{Root: f.Root, Now: f.Now, Receipt: rc, RequireReceipt: true})
	if !errors.Is(err, ErrNoArtifact) {
		t.Fatalf("no digest: %v (report %+v), want ErrNoArtifact", err, rep)
	}
	if _, err := Verify(env, Options{Now: f.Now, ArtifactSHA256: f.Artifact}); !errors.Is(err, ErrNoRoot) {
		t.Fatalf("no root: %v, want ErrNoRoot", err)
	}
}

// TestReceiptUnderAnotherOriginIsRefused performs field failure 7 of
// issue 6 (second half): a checkpoint signed with the certifier's log key
// but for another origin (a second log run with the same key — a test or
// staging log, or one an insider starts to hide entries). The old code read
// the origin from the checkpoint itself and accepted the receipt; now the
// origin is the one the root pins.
func TestReceiptUnderAnotherOriginIsRefused(t *testing.T) {
	f := newFixture(t)
	signer, err := certroot.LogSigner("shadow/log", f.Online.Log)
	if err != nil {
		t.Fatal(err)
	}
	if f.Log, err = translog.Open(f.DB, "shadow/log", signer); err != nil {
		t.Fatal(err)
	}
	env, rc := f.Issue(t, attest.KindCertificate, attest.VerdictPass)
	_, err = Verify(env, Options{Root: f.Root, Now: f.Now, ArtifactSHA256: f.Artifact, Receipt: rc, RequireReceipt: true})
	if !errors.Is(err, ErrNotLogged) || !errors.Is(err, translog.ErrBadCheckpoint) {
		t.Fatalf("receipt of the shadow log: %v, want ErrNotLogged and translog.ErrBadCheckpoint", err)
	}
}

// TestRootWithoutOriginCannotVouchForReceipts: a root made before log
// origins were pinned passes certificates without receipts but refuses
// every receipt with certroot.ErrNoLogOrigin, until the next root version
// pins the origin.
func TestRootWithoutOriginCannotVouchForReceipts(t *testing.T) {
	f := newFixture(t)
	env, rc := f.Issue(t, attest.KindCertificate, attest.VerdictPass)
	rk, err := keys.Load(filepath.Join(f.Dir, certroot.OfflineDir, certroot.RootKeyFile(1)))
	if err != nil {
		t.Fatal(err)
	}
	specs := map[string]certroot.RoleSpec{}
	for _, role := range certroot.Roles {
		var pubs []crypto.PublicKey
		for _, id := range f.Root.KeyIDs(role) {
			pubs = append(pubs, f.Root.PublicKeys(role)[id])
		}
		specs[role] = certroot.RoleSpec{Keys: pubs, Threshold: f.Root.Threshold(role)}
	}
	data, err := certroot.Build(1, specs, f.Root.Expires(), rk)
	if err != nil {
		t.Fatal(err)
	}
	old, err := certroot.Trust(data)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Root: old, Now: f.Now, ArtifactSHA256: f.Artifact, Receipt: rc}
	if _, err := Verify(env, o); !errors.Is(err, ErrNotLogged) || !errors.Is(err, certroot.ErrNoLogOrigin) {
		t.Fatalf("receipt under a root without origin: %v, want ErrNotLogged and certroot.ErrNoLogOrigin", err)
	}
	o.Receipt = nil
	if _, err := Verify(env, o); err != nil {
		t.Fatalf("no receipt asked for: %v", err)
	}
}

// TestCheckpointMustBeConsistentWithTheRecordedOne: with the newest
// checkpoint recorded, a receipt under another tree passes only when a
// consistency proof links the two; a fork (same size, other root hash) and
// an unproved or wrongly proved tree are refused with ErrLogInconsistent,
// and NewestCheckpoint never moves backwards.
func TestCheckpointMustBeConsistentWithTheRecordedOne(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	env, rc := f.Issue(t, attest.KindCertificate, attest.VerdictPass)
	base := Options{Root: f.Root, Now: f.Now, ArtifactSHA256: f.Artifact, RequireReceipt: true}
	o := base
	o.Receipt = rc
	rep, err := Verify(env, o)
	if err != nil {
		t.Fatal(err)
	}
	first := *rep.NewestCheckpoint
	// The log grows; a fresh receipt for the same certificate.
	f.Issue(t, attest.KindRejection, attest.VerdictFail)
	f.Issue(t, attest.KindRejection, attest.VerdictFail)
	fresh, err := f.Log.Receipt(ctx, rc.Index)
	if err != nil {
		t.Fatal(err)
	}
	prover := func(oldSize, newSize int64) (tlog.TreeProof, error) {
		return f.Log.ConsistencyProof(ctx, oldSize, newSize)
	}
	liar := func(oldSize, newSize int64) (tlog.TreeProof, error) {
		p, err := f.Log.ConsistencyProof(ctx, oldSize, newSize)
		if len(p) > 0 {
			p[0][0] ^= 1
		}
		return p, err
	}

	o = base
	o.Receipt, o.PrevCheckpoint = &fresh, &first
	if _, err := Verify(env, o); !errors.Is(err, ErrLogInconsistent) {
		t.Fatalf("newer tree without a proof: %v, want ErrLogInconsistent", err)
	}
	o.Prover = liar
	if _, err := Verify(env, o); !errors.Is(err, ErrLogInconsistent) || !errors.Is(err, translog.ErrBadProof) {
		t.Fatalf("newer tree with a bad proof: %v, want ErrLogInconsistent", err)
	}
	o.Prover = prover
	rep, err = Verify(env, o)
	if err != nil {
		t.Fatalf("newer tree with a proof: %v", err)
	}
	newest := *rep.NewestCheckpoint
	if newest.Size != first.Size+2 {
		t.Fatalf("newest checkpoint size %d, want %d", newest.Size, first.Size+2)
	}

	// The old receipt against the newer recorded checkpoint: older tree.
	o = base
	o.Receipt, o.PrevCheckpoint = rc, &newest
	if _, err := Verify(env, o); !errors.Is(err, ErrLogInconsistent) {
		t.Fatalf("older tree without a proof: %v, want ErrLogInconsistent", err)
	}
	o.Prover = prover
	rep, err = Verify(env, o)
	if err != nil {
		t.Fatalf("older tree with a proof: %v", err)
	}
	if *rep.NewestCheckpoint != newest {
		t.Fatalf("the newest checkpoint moved back to size %d", rep.NewestCheckpoint.Size)
	}

	// A fork: a recorded tree of the receipt's size with another root hash.
	forked := first
	forked.Hash[0] ^= 1
	o = base
	o.Receipt, o.PrevCheckpoint, o.Prover = rc, &forked, prover
	if _, err := Verify(env, o); !errors.Is(err, ErrLogInconsistent) {
		t.Fatalf("fork: %v, want ErrLogInconsistent", err)
	}
	other := first
	other.Origin = "another/log"
	o.PrevCheckpoint = &other
	if _, err := Verify(env, o); !errors.Is(err, ErrLogInconsistent) {
		t.Fatalf("recorded checkpoint of another log: %v, want ErrLogInconsistent", err)
	}
}

// TestRecordedRevocationsStillApply: with no list given, the recorded
// newest list still revokes; a minimum version refuses older lists.
func TestRecordedRevocationsStillApply(t *testing.T) {
	f := newFixture(t)
	env, _ := f.Issue(t, attest.KindCertificate, attest.VerdictPass)
	revoking := f.Revocations(t, 2, attest.Revocation{ArtifactSHA256: f.Artifact, CertificateDigest: attest.DigestOf(env),
		Advisories: []string{"GO-2025-0001"}, Time: f.Now, Reason: "test"})
	prev, err := attest.VerifyRevocations(f.Root, revoking, nil, f.Now)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Root: f.Root, Now: f.Now, ArtifactSHA256: f.Artifact, PrevRevocations: prev, RequireRevocations: true}
	if _, err := Verify(env, o); !errors.Is(err, ErrRevoked) {
		t.Fatalf("recorded revoking list, none given: %v, want ErrRevoked", err)
	}
	o = Options{Root: f.Root, Now: f.Now, ArtifactSHA256: f.Artifact, Revocations: f.Revocations(t, 1), MinRevocationsVersion: 2}
	if _, err := Verify(env, o); !errors.Is(err, attest.ErrRollback) {
		t.Fatalf("list below the minimum version: %v, want attest.ErrRollback", err)
	}
	o.Revocations = nil
	if _, err := Verify(env, o); !errors.Is(err, ErrNoRevocations) {
		t.Fatalf("minimum version and no list: %v, want ErrNoRevocations", err)
	}
}
