// Package certverify checks a certification service's certificate
// offline: the signature under the certifier's trust root, the subject
// digest against the artifact, the receipt proving the certificate is in
// the certifier's transparency log, and that a given signed revocation
// list does not revoke it. The OTA side (server and device agent) uses the
// same checks.
package certverify

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"

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
)

// Options say what to check besides the signature.
type Options struct {
	// Root is the trusted certifier root.
	Root *certroot.Root
	// Now is the time of the check.
	Now time.Time
	// ArtifactSHA256 (hex) must be a subject of the certificate.
	ArtifactSHA256 string
	// Receipt, when given, must prove the envelope is in the log under a
	// checkpoint signed by the root's log key. RequireReceipt makes it
	// mandatory.
	Receipt        *translog.Receipt
	Kind           string // the log entry kind; default "certificate"
	RequireReceipt bool
	// Revocations, when given, is a signed revocation list that must be
	// valid now and must not revoke the certificate. Prev is the newest
	// list the caller trusted before (rollback and forgetting checks).
	Revocations        []byte
	PrevRevocations    *attest.RevocationList
	RequireRevocations bool
}

// Report says what was checked.
type Report struct {
	Certificate *attest.Certificate
	Checkpoint  *translog.Checkpoint
	Revocations *attest.RevocationList
}

// Verify checks envelope against o.
func Verify(envelope []byte, o Options) (*Report, error) {
	if o.Root == nil {
		return nil, errors.New("certverify: no trusted certifier root")
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	c, err := attest.Verify(o.Root, envelope, o.Now)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	rep := &Report{Certificate: c}
	if c.Result.Verdict != attest.VerdictPass {
		return rep, fmt.Errorf("%w: the certifier's verdict is %q (%s)", ErrNotCertified, c.Result.Verdict, c.Result.Kind)
	}
	if o.ArtifactSHA256 != "" && !c.Covers(o.ArtifactSHA256) {
		return rep, fmt.Errorf("%w: the artifact's sha256 is %s", ErrWrongSubject, o.ArtifactSHA256)
	}
	switch {
	case o.Receipt != nil:
		kind := o.Kind
		if kind == "" {
			kind = c.Result.Kind
		}
		origin, _, _ := bytes.Cut(o.Receipt.Checkpoint, []byte("\n"))
		key, err := o.Root.LogVerifierKey(string(origin))
		if err != nil {
			return rep, fmt.Errorf("%w: %v", ErrNotLogged, err)
		}
		v, err := note.NewVerifier(key)
		if err != nil {
			return rep, fmt.Errorf("%w: %v", ErrNotLogged, err)
		}
		cp, err := translog.VerifyReceipt(*o.Receipt, v, kind, envelope)
		if err != nil {
			return rep, fmt.Errorf("%w: %v", ErrNotLogged, err)
		}
		rep.Checkpoint = &cp
	case o.RequireReceipt:
		return rep, fmt.Errorf("%w: no receipt given", ErrNotLogged)
	}
	switch {
	case o.Revocations != nil:
		l, err := attest.VerifyRevocations(o.Root, o.Revocations, o.PrevRevocations, o.Now)
		if err != nil {
			return rep, fmt.Errorf("revocation list: %w", err)
		}
		rep.Revocations = l
		for _, s := range c.Subjects {
			if r, ok := l.Lookup(s.SHA256, c.Digest); ok {
				return rep, fmt.Errorf("%w: list version %d revoked it on %s for %v (%s)", ErrRevoked, l.Version,
					r.Time.Format(time.RFC3339), r.Advisories, r.Reason)
			}
		}
	case o.RequireRevocations:
		return rep, errors.New("revocation list: none given")
	}
	return rep, nil
}
