// Package certverify checks a certification service's certificate
// offline: the signature under the certifier's trust root, the subject
// digest against the artifact, the receipt proving the certificate is in
// the certifier's transparency log, and that a given signed revocation
// list does not revoke it. The OTA side (server and device agent) uses the
// same checks.
//
// Verification fails closed. The artifact's digest is mandatory: a passing
// certificate says nothing without the artifact it is for. A log receipt is
// checked against the log origin and key the certifier root pins
// (certroot.Root.PinnedLogVerifierKey), never against an origin the
// checkpoint names itself; a root without a pinned origin cannot vouch for
// receipts (certroot.ErrNoLogOrigin). Offline verification needs state to
// stop rollbacks: the caller passes the newest checkpoint and revocation
// list it trusted before (Options.PrevCheckpoint, PrevRevocations), gets
// the newest ones back in the Report, and persists them (package
// verifystate does this for files). A receipt whose checkpoint is not
// proved consistent with the recorded one is refused (ErrLogInconsistent);
// an older revocation list is refused (attest.ErrRollback).
package certverify

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/translog"
)

// Errors a caller may tell apart.
var (
	ErrNotCertified = errors.New("not a passing certificate")
	ErrWrongSubject = errors.New("certificate is for another artifact")
	ErrRevoked      = errors.New("certificate revoked")
	ErrNotLogged    = errors.New("certificate not proved to be in the transparency log")
	// ErrNoArtifact is a verification asked for without the artifact's
	// digest: it would pass a certificate for any artifact.
	ErrNoArtifact = errors.New("the artifact's sha256 is required")
	// ErrNoRoot is a verification asked for without a trusted root.
	ErrNoRoot = errors.New("no trusted certifier root")
	// ErrLogInconsistent is a receipt whose checkpoint is not proved
	// consistent with the newest checkpoint the caller recorded: another
	// log, a fork (two trees of one size), or an older or newer tree with
	// no (valid) consistency proof.
	ErrLogInconsistent = errors.New("checkpoint not consistent with the newest one recorded")
	// ErrNoRevocations is a verification that requires a revocation list
	// without one given or recorded.
	ErrNoRevocations = errors.New("no revocation list")
)

// ConsistencyProver fetches the proof that the log's tree of size newSize
// extends its tree of size oldSize (translog.Client.ConsistencyProof). The
// proof is verified; the prover need not be trusted.
type ConsistencyProver func(oldSize, newSize int64) (tlog.TreeProof, error)

// Options say what to check besides the signature.
type Options struct {
	// Root is the trusted certifier root.
	Root *certroot.Root
	// Now is the time of the check.
	Now time.Time
	// ArtifactSHA256 (hex, optionally "sha256:"-prefixed) must be a
	// subject of the certificate. It is mandatory (ErrNoArtifact).
	ArtifactSHA256 string
	// Receipt, when given, must prove the envelope is in the log under a
	// checkpoint signed by the root's log key for the root's pinned
	// origin. RequireReceipt makes it mandatory.
	Receipt        *translog.Receipt
	Kind           string // the log entry kind; default the certificate's kind
	RequireReceipt bool
	// PrevCheckpoint is the newest checkpoint the caller trusted before
	// (nil for none). The receipt's checkpoint must be the same tree or be
	// proved consistent with it by Prover; without a Prover only the same
	// tree passes.
	PrevCheckpoint *translog.Checkpoint
	Prover         ConsistencyProver
	// Revocations, when given, is a signed revocation list that must be
	// valid now and must not revoke the certificate. PrevRevocations is
	// the newest list the caller trusted before (rollback and forgetting
	// checks); when no list is given the certificate is still checked
	// against it. MinRevocationsVersion refuses lists below a version.
	// RequireRevocations fails when neither a list nor a previous one is
	// at hand.
	Revocations           []byte
	PrevRevocations       *attest.RevocationList
	MinRevocationsVersion int64
	RequireRevocations    bool
}

// Report says what was checked.
type Report struct {
	Certificate *attest.Certificate
	// Checkpoint is the receipt's checkpoint, when a receipt was checked.
	Checkpoint *translog.Checkpoint
	// NewestCheckpoint is what the caller should record as its newest
	// checkpoint: the receipt's if it is newer than PrevCheckpoint, else
	// PrevCheckpoint. It is set as soon as the receipt and its consistency
	// are verified, even if a later check fails.
	NewestCheckpoint *translog.Checkpoint
	// Revocations is the given list once verified. It is what the caller
	// should record as its newest list, and is set as soon as the list is
	// verified, even if the certificate is then refused (a list that
	// revokes this certificate is exactly the one to keep).
	Revocations *attest.RevocationList
}

// Verify checks envelope against o.
func Verify(envelope []byte, o Options) (*Report, error) {
	if o.Root == nil {
		return nil, fmt.Errorf("certverify: %w", ErrNoRoot)
	}
	if o.ArtifactSHA256 == "" {
		return nil, fmt.Errorf("certverify: %w: a certificate is only meaningful for its subject", ErrNoArtifact)
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	rep := &Report{}
	// The list first: a valid newer list is recorded even when the
	// certificate turns out revoked or broken.
	newestList := o.PrevRevocations
	switch {
	case o.Revocations != nil:
		l, err := attest.VerifyRevocations(o.Root, o.Revocations, o.PrevRevocations, o.Now)
		if err != nil {
			return rep, fmt.Errorf("revocation list: %w", err)
		}
		if l.Version < o.MinRevocationsVersion {
			return rep, fmt.Errorf("revocation list: %w: version %d offered, at least version %d required", attest.ErrRollback, l.Version, o.MinRevocationsVersion)
		}
		rep.Revocations, newestList = l, l
	case o.RequireRevocations && o.PrevRevocations == nil:
		return rep, fmt.Errorf("revocation list: %w given or recorded", ErrNoRevocations)
	case o.PrevRevocations != nil && o.PrevRevocations.Version < o.MinRevocationsVersion:
		return rep, fmt.Errorf("revocation list: %w: the recorded version %d is below the required version %d and no newer list was given",
			attest.ErrRollback, o.PrevRevocations.Version, o.MinRevocationsVersion)
	case o.PrevRevocations == nil && o.MinRevocationsVersion > 0:
		return rep, fmt.Errorf("revocation list: %w: version %d or later is required", ErrNoRevocations, o.MinRevocationsVersion)
	}
	c, err := attest.Verify(o.Root, envelope, o.Now)
	if err != nil {
		return rep, fmt.Errorf("certificate: %w", err)
	}
	rep.Certificate = c
	if c.Result.Verdict != attest.VerdictPass {
		return rep, fmt.Errorf("%w: the certifier's verdict is %q (%s)", ErrNotCertified, c.Result.Verdict, c.Result.Kind)
	}
	if !c.Covers(o.ArtifactSHA256) {
		return rep, fmt.Errorf("%w: the artifact's sha256 is %s", ErrWrongSubject, o.ArtifactSHA256)
	}
	rep.NewestCheckpoint = o.PrevCheckpoint
	switch {
	case o.Receipt != nil:
		kind := o.Kind
		if kind == "" {
			kind = c.Result.Kind
		}
		cp, err := checkReceipt(o, kind, envelope)
		if err != nil {
			return rep, err
		}
		newest, err := consistent(o.PrevCheckpoint, cp, o.Prover)
		if err != nil {
			return rep, err
		}
		rep.Checkpoint, rep.NewestCheckpoint = &cp, newest
	case o.RequireReceipt:
		return rep, fmt.Errorf("%w: no receipt given", ErrNotLogged)
	}
	// A revocation stays in force in every later list (attest.ErrForgotten),
	// so the recorded list still counts when no newer one is given.
	for _, s := range c.Subjects {
		if r, ok := newestList.Lookup(s.SHA256, c.Digest); ok {
			return rep, fmt.Errorf("%w: list version %d revoked it on %s for %v (%s)", ErrRevoked, newestList.Version,
				r.Time.Format(time.RFC3339), r.Advisories, r.Reason)
		}
	}
	return rep, nil
}

// checkReceipt verifies the receipt under the root's pinned log origin.
func checkReceipt(o Options, kind string, envelope []byte) (translog.Checkpoint, error) {
	key, err := o.Root.PinnedLogVerifierKey()
	if err != nil {
		return translog.Checkpoint{}, fmt.Errorf("%w: %w", ErrNotLogged, err)
	}
	v, err := note.NewVerifier(key)
	if err != nil {
		return translog.Checkpoint{}, fmt.Errorf("%w: %v", ErrNotLogged, err)
	}
	cp, err := translog.VerifyReceipt(*o.Receipt, v, kind, envelope)
	if err != nil {
		return translog.Checkpoint{}, fmt.Errorf("%w: %w", ErrNotLogged, err)
	}
	return cp, nil
}

// consistent checks cp against the recorded prev and returns the newer.
func consistent(prev *translog.Checkpoint, cp translog.Checkpoint, prove ConsistencyProver) (*translog.Checkpoint, error) {
	if prev == nil {
		return &cp, nil
	}
	if prev.Origin != cp.Origin {
		return nil, fmt.Errorf("%w: the recorded checkpoint is of log %q, this one of %q", ErrLogInconsistent, prev.Origin, cp.Origin)
	}
	if cp.Size == prev.Size {
		if cp.Hash != prev.Hash {
			return nil, fmt.Errorf("%w: two different trees of size %d (recorded root %s, offered %s): the log forked",
				ErrLogInconsistent, cp.Size, prev.Hash, cp.Hash)
		}
		return prev, nil
	}
	older, newer := *prev, cp
	if cp.Size < prev.Size {
		older, newer = cp, *prev
	}
	if prove == nil {
		return nil, fmt.Errorf("%w: the receipt's tree has %d entries, the recorded one %d, and no consistency proof can be fetched (give the log's URL, or fetch a fresh bundle)",
			ErrLogInconsistent, cp.Size, prev.Size)
	}
	p, err := prove(older.Size, newer.Size)
	if err != nil {
		return nil, fmt.Errorf("%w: fetching the consistency proof %d→%d: %v", ErrLogInconsistent, older.Size, newer.Size, err)
	}
	if err := translog.VerifyConsistency(older, newer, p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLogInconsistent, err)
	}
	if cp.Size > prev.Size {
		return &cp, nil
	}
	return prev, nil
}
