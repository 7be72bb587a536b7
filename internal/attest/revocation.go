package attest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/keys"
)

// Revocation withdraws trust in an artifact's certificate.
type Revocation struct {
	// ArtifactSHA256 is the artifact's sha256 (64 lowercase hex digits).
	ArtifactSHA256 string `json:"artifact_sha256"`
	// CertificateDigest is the Digest of the revoked certificate; empty
	// revokes every certificate of the artifact.
	CertificateDigest string `json:"certificate_digest,omitempty"`
	// Advisories are the advisory ids that caused the revocation, if any.
	Advisories []string  `json:"advisories,omitempty"`
	Time       time.Time `json:"time"`
	Reason     string    `json:"reason,omitempty"`
}

// RevocationList is every revocation ever made, versioned. Entries are
// sorted by artifact, then certificate digest, each pair at most once.
type RevocationList struct {
	Version int64        `json:"version"`
	Issued  time.Time    `json:"issued"`
	Expires time.Time    `json:"expires"`
	Entries []Revocation `json:"entries"`
}

func entryLess(a, b Revocation) int {
	if c := strings.Compare(a.ArtifactSHA256, b.ArtifactSHA256); c != 0 {
		return c
	}
	return strings.Compare(a.CertificateDigest, b.CertificateDigest)
}

// canonical returns a copy of l in the form SignRevocations writes: UTC
// times, entries sorted, a non-nil entry list.
func (l RevocationList) canonical() RevocationList {
	c := l
	c.Issued, c.Expires = l.Issued.UTC(), l.Expires.UTC()
	c.Entries = make([]Revocation, len(l.Entries))
	for i, e := range l.Entries {
		e.Time = e.Time.UTC()
		e.Advisories = slices.Clone(e.Advisories)
		c.Entries[i] = e
	}
	slices.SortStableFunc(c.Entries, entryLess)
	return c
}

// validate checks every field and that entries are sorted and unique.
func (l *RevocationList) validate() error {
	if l.Version < 1 {
		return fmt.Errorf("version %d < 1", l.Version)
	}
	if l.Issued.Location() != time.UTC || l.Expires.Location() != time.UTC {
		return errors.New("times must be in UTC")
	}
	if l.Issued.IsZero() || !l.Expires.After(l.Issued) {
		return fmt.Errorf("issued %s, expires %s: want a non-zero issue time before expiry", l.Issued.Format(time.RFC3339), l.Expires.Format(time.RFC3339))
	}
	if l.Entries == nil {
		return errors.New("entries must be a list")
	}
	if len(l.Entries) > MaxRevocations {
		return fmt.Errorf("%d entries > %d", len(l.Entries), MaxRevocations)
	}
	for i, e := range l.Entries {
		if !isHex64(e.ArtifactSHA256) {
			return fmt.Errorf("entry %d: artifact sha256 %q is not 64 lowercase hex digits", i, e.ArtifactSHA256)
		}
		if e.CertificateDigest != "" && !isDigest(e.CertificateDigest) {
			return fmt.Errorf("entry %d: certificate digest %q: want sha256:<64 hex>", i, e.CertificateDigest)
		}
		if len(e.Advisories) > MaxAdvisories {
			return fmt.Errorf("entry %d: %d advisories > %d", i, len(e.Advisories), MaxAdvisories)
		}
		for _, a := range e.Advisories {
			if err := checkField(fmt.Sprintf("entry %d advisory", i), a, true); err != nil {
				return err
			}
		}
		if e.Time.IsZero() || e.Time.Location() != time.UTC {
			return fmt.Errorf("entry %d has no time or one not in UTC", i)
		}
		if err := checkField(fmt.Sprintf("entry %d reason", i), e.Reason, false); err != nil {
			return err
		}
		if i > 0 && entryLess(l.Entries[i-1], e) >= 0 {
			return fmt.Errorf("entry %d: entries not sorted by artifact and certificate, or a pair given twice", i)
		}
	}
	return nil
}

// SignRevocations signs l with the revoke key(s) and returns the DSSE
// envelope. Entries are sorted and times written in UTC.
func SignRevocations(l RevocationList, signers ...*keys.Key) ([]byte, error) {
	c := l.canonical()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("revocation list: %w: %v", ErrMalformed, err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("revocation list: %w: %v", ErrMalformed, err)
	}
	return signEnvelope(RevocationsPayloadType, payload, signers, MaxRevocationsSize)
}

// VerifyRevocations checks a revocation list envelope against the trusted
// root at time now and against prev, the last list trusted (nil for the
// first). The list must be signed by a threshold of the root's revoke keys
// (and by nothing else), well formed, issued no later than
// now+MaxClockSkew and not expired (ErrExpired). Against prev: a lower
// version is ErrRollback; the same version must have the same content
// (else ErrConflict); a higher version must keep every (artifact,
// certificate) entry of prev (else ErrForgotten).
func VerifyRevocations(root *certroot.Root, data []byte, prev *RevocationList, now time.Time) (*RevocationList, error) {
	payload, _, err := openEnvelope(root, certroot.RoleRevoke, data, RevocationsPayloadType, MaxRevocationsSize, now)
	if err != nil {
		return nil, fmt.Errorf("revocation list: %w", err)
	}
	var l RevocationList
	if err := decodeStrict(payload, &l); err != nil {
		return nil, fmt.Errorf("revocation list: %w: %v", ErrMalformed, err)
	}
	if err := l.validate(); err != nil {
		return nil, fmt.Errorf("revocation list: %w: %v", ErrMalformed, err)
	}
	if l.Issued.After(now.Add(MaxClockSkew)) {
		return nil, fmt.Errorf("revocation list version %d: %w: issued %s", l.Version, ErrNotYetValid, l.Issued.Format(time.RFC3339))
	}
	if now.After(l.Expires) {
		return nil, fmt.Errorf("revocation list version %d: %w at %s", l.Version, ErrExpired, l.Expires.Format(time.RFC3339))
	}
	if prev != nil {
		switch {
		case l.Version < prev.Version:
			return nil, fmt.Errorf("%w: version %d offered, version %d trusted", ErrRollback, l.Version, prev.Version)
		case l.Version == prev.Version:
			p, err := json.Marshal(prev.canonical())
			if err != nil {
				return nil, fmt.Errorf("revocation list: encoding the trusted list: %w", err)
			}
			if !bytes.Equal(p, payload) {
				return nil, fmt.Errorf("%w: version %d", ErrConflict, l.Version)
			}
		default:
			for _, e := range prev.Entries {
				if _, found := slices.BinarySearchFunc(l.Entries, e, entryLess); !found {
					return nil, fmt.Errorf("%w: version %d lacks the revocation of artifact %s certificate %q present in version %d", ErrForgotten, l.Version, e.ArtifactSHA256, e.CertificateDigest, prev.Version)
				}
			}
		}
	}
	return &l, nil
}

// Lookup returns the revocation that applies to the given artifact
// (sha256 hex, optionally prefixed "sha256:") and certificate digest: an
// entry for the artifact that names this certificate or names none. With
// certificateDigest "" any entry for the artifact applies.
func (l *RevocationList) Lookup(artifactSHA256, certificateDigest string) (*Revocation, bool) {
	if l == nil {
		return nil, false
	}
	a := normalizeSHA(artifactSHA256)
	for _, e := range l.Entries {
		if e.ArtifactSHA256 != a {
			continue
		}
		if e.CertificateDigest == "" || certificateDigest == "" || e.CertificateDigest == certificateDigest {
			c := e
			c.Advisories = slices.Clone(e.Advisories)
			return &c, true
		}
	}
	return nil, false
}
