package attest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/vulnref"
)

// Types of what is signed.
const (
	// PredicateType is the in-toto predicate type of a Result.
	PredicateType = "https://ztota.dev/certification/v1"
	// StatementType is the in-toto Statement version used.
	StatementType = intoto.StatementTypeUri
	// PayloadType is the DSSE payload type of a certificate envelope.
	PayloadType = "application/vnd.in-toto+json"
	// RevocationsPayloadType is the DSSE payload type of a revocation list.
	RevocationsPayloadType = "application/vnd.ztota.revocations+json"
)

// Result kinds and verdicts.
const (
	KindCertificate  = "certificate"
	KindRejection    = "rejection"
	KindReinspection = "reinspection"
	VerdictPass      = "pass"
	VerdictFail      = "fail"
)

// Bounds on what is signed and verified.
const (
	// MaxEnvelopeSize bounds a certificate envelope in bytes.
	MaxEnvelopeSize = 16 << 20
	// MaxRevocationsSize bounds a revocation list envelope in bytes.
	MaxRevocationsSize = 16 << 20
	// MaxSignatures bounds the signatures on one envelope.
	MaxSignatures = 16
	// MaxSubjects bounds a statement's subjects (the artifact and its SBOM).
	MaxSubjects = 8
	// MaxFindings and MaxDisagreements bound a Result's lists.
	MaxFindings      = 20000
	MaxDisagreements = 20000
	// MaxRevocations bounds the entries of a revocation list.
	MaxRevocations = 50000
	// MaxAdvisories bounds the advisory ids of one revocation.
	MaxAdvisories = 256
	// MaxFieldLen bounds names, ids, versions and reasons.
	MaxFieldLen = 1024
	// MaxArtifactSize bounds Artifact.Size (2^53, exact in any JSON reader).
	MaxArtifactSize = 1 << 53
	// MaxClockSkew is how far in the future an Issued time may be.
	MaxClockSkew = 5 * time.Minute
)

// Errors. Every error of Verify and VerifyRevocations wraps one of these
// (or certroot.ErrExpired for an expired trusted root).
var (
	ErrTooLarge    = errors.New("too large")
	ErrMalformed   = errors.New("malformed")
	ErrWrongType   = errors.New("wrong payload, statement or predicate type")
	ErrSignature   = errors.New("not signed by a threshold of the role's keys")
	ErrExpired     = errors.New("expired")
	ErrNotYetValid = errors.New("issued in the future")
	ErrRollback    = errors.New("revocation list version older than the trusted one")
	ErrConflict    = errors.New("revocation list of the trusted version with different content")
	ErrForgotten   = errors.New("revocation list drops a revocation")
)

// VerifierInfo names the verifier that produced a Result.
type VerifierInfo struct {
	ID      string `json:"id"`
	Version string `json:"version"`
}

// DBInfo names the vulnerability database snapshot used.
type DBInfo struct {
	ID     string `json:"id"` // "sha256:<hex>"
	Source string `json:"source"`
}

// PolicyInfo names the policy applied.
type PolicyInfo struct {
	Digest  string `json:"digest"` // "sha256:<hex>"
	Version int    `json:"version"`
}

// ArtifactInfo describes the inspected artifact.
type ArtifactInfo struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// Result is the predicate of a certificate, rejection or re-inspection.
type Result struct {
	// Kind is KindCertificate (Verdict pass), KindRejection (Verdict fail)
	// or KindReinspection (either; Previous names the certificate).
	Kind          string                 `json:"kind"`
	Verdict       string                 `json:"verdict"`
	Verifier      VerifierInfo           `json:"verifier"`
	DB            DBInfo                 `json:"db"`
	Policy        PolicyInfo             `json:"policy"`
	Artifact      ArtifactInfo           `json:"artifact"`
	Components    int                    `json:"components"`
	Findings      []vulnref.Finding      `json:"findings,omitempty"`
	Disagreements []vulnref.Disagreement `json:"disagreements,omitempty"`
	// Previous is the Digest of the certificate a re-inspection refers
	// to, or that a new certificate follows (after a revocation).
	Previous   string    `json:"previous,omitempty"`
	Issued     time.Time `json:"issued"`
	ValidUntil time.Time `json:"valid_until"`
}

// Subject is a signed-for file: the artifact first, then its SBOM if any.
type Subject struct {
	Name   string
	SHA256 string // 64 lowercase hex digits
}

// Certificate is a verified certificate, rejection or re-inspection.
type Certificate struct {
	// Envelope is the DSSE envelope as verified.
	Envelope []byte
	// Digest is "sha256:<hex of Envelope>".
	Digest string
	// Subjects are the statement's subjects, the artifact first.
	Subjects []Subject
	Result   Result
	// Signers are the key ids whose signatures verified, sorted.
	Signers []string
}

// Covers reports whether c is about the artifact with the given sha256
// (hex, optionally prefixed "sha256:"). Only the artifact subject counts,
// not the SBOM.
func (c *Certificate) Covers(artifactSHA256 string) bool {
	if c == nil || len(c.Subjects) == 0 {
		return false
	}
	return c.Subjects[0].SHA256 == normalizeSHA(artifactSHA256)
}

func normalizeSHA(s string) string { return strings.ToLower(strings.TrimPrefix(s, "sha256:")) }

// DigestOf returns the Digest of an envelope's bytes.
func DigestOf(envelope []byte) string {
	sum := sha256.Sum256(envelope)
	return "sha256:" + hex.EncodeToString(sum[:])
}

type subjectJSON struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

type statementJSON struct {
	Type          string        `json:"_type"`
	Subject       []subjectJSON `json:"subject"`
	PredicateType string        `json:"predicateType"`
	Predicate     Result        `json:"predicate"`
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isDigest reports whether s is "sha256:" and 64 lowercase hex digits.
func isDigest(s string) bool { return strings.HasPrefix(s, "sha256:") && isHex64(s[7:]) }

func checkField(what, s string, required bool) error {
	if required && s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > MaxFieldLen {
		return fmt.Errorf("%s longer than %d bytes", what, MaxFieldLen)
	}
	return nil
}

func checkSubjects(subjects []Subject) error {
	if len(subjects) == 0 || len(subjects) > MaxSubjects {
		return fmt.Errorf("%d subjects, want 1 to %d", len(subjects), MaxSubjects)
	}
	names := map[string]bool{}
	for i, s := range subjects {
		if err := checkField(fmt.Sprintf("subject %d name", i), s.Name, true); err != nil {
			return err
		}
		if names[s.Name] {
			return fmt.Errorf("subject name %q given twice", s.Name)
		}
		names[s.Name] = true
		if !isHex64(s.SHA256) {
			return fmt.Errorf("subject %q: sha256 %q is not 64 lowercase hex digits", s.Name, s.SHA256)
		}
	}
	return nil
}

// Validate checks that r is a well-formed Result for the given subjects.
// Times must be in UTC (Sign converts them).
func (r *Result) Validate(subjects []Subject) error {
	if err := checkSubjects(subjects); err != nil {
		return err
	}
	switch {
	case r.Kind == KindCertificate && r.Verdict == VerdictPass:
	case r.Kind == KindRejection && r.Verdict == VerdictFail:
	case r.Kind == KindReinspection && (r.Verdict == VerdictPass || r.Verdict == VerdictFail):
	default:
		return fmt.Errorf("kind %q with verdict %q: a certificate passes, a rejection fails, a re-inspection does either", r.Kind, r.Verdict)
	}
	if r.Kind == KindReinspection {
		if !isDigest(r.Previous) {
			return fmt.Errorf("re-inspection refers to previous %q: want sha256:<64 hex>", r.Previous)
		}
	} else if r.Kind == KindRejection && r.Previous != "" {
		return fmt.Errorf("a %s has no previous certificate", r.Kind)
	} else if r.Previous != "" && !isDigest(r.Previous) {
		// A certificate issued to an artifact whose earlier certificate
		// was revoked (an advisory withdrawn) names the one it follows.
		return fmt.Errorf("certificate follows previous %q: want sha256:<64 hex>", r.Previous)
	}
	need := r.Kind != KindRejection // a rejection may come before any database was consulted
	for _, f := range []struct {
		what, v string
		req     bool
	}{
		{"verifier id", r.Verifier.ID, true}, {"verifier version", r.Verifier.Version, false},
		{"db source", r.DB.Source, false}, {"artifact name", r.Artifact.Name, true},
	} {
		if err := checkField(f.what, f.v, f.req); err != nil {
			return err
		}
	}
	for what, v := range map[string]string{"db id": r.DB.ID, "policy digest": r.Policy.Digest} {
		if (v != "" || need) && !isDigest(v) {
			return fmt.Errorf("%s %q: want sha256:<64 hex>", what, v)
		}
	}
	if r.Policy.Version < 0 || r.Components < 0 {
		return errors.New("negative policy version or component count")
	}
	if r.Artifact.Size < 0 || r.Artifact.Size > MaxArtifactSize {
		return fmt.Errorf("artifact size %d out of range", r.Artifact.Size)
	}
	if r.Artifact.Name != subjects[0].Name {
		return fmt.Errorf("artifact %q is not the first subject %q", r.Artifact.Name, subjects[0].Name)
	}
	if len(r.Findings) > MaxFindings || len(r.Disagreements) > MaxDisagreements {
		return fmt.Errorf("%d findings, %d disagreements: at most %d and %d", len(r.Findings), len(r.Disagreements), MaxFindings, MaxDisagreements)
	}
	for i, f := range r.Findings {
		if err := checkField(fmt.Sprintf("finding %d id", i), f.ID, true); err != nil {
			return err
		}
		switch f.Level {
		case "", vulnref.LevelPresent, vulnref.LevelModuleOnly:
		default:
			return fmt.Errorf("finding %d: level %q: want %q or %q", i, f.Level, vulnref.LevelPresent, vulnref.LevelModuleOnly)
		}
		if len(f.Symbols) > vulnref.MaxFindingSymbols {
			return fmt.Errorf("finding %d: %d symbols, at most %d", i, len(f.Symbols), vulnref.MaxFindingSymbols)
		}
		if f.Level == vulnref.LevelModuleOnly && len(f.Symbols) > 0 {
			return fmt.Errorf("finding %d: module-only with symbols present", i)
		}
	}
	if r.Issued.Location() != time.UTC || r.ValidUntil.Location() != time.UTC {
		return errors.New("times must be in UTC")
	}
	if r.Issued.IsZero() || !r.ValidUntil.After(r.Issued) {
		return fmt.Errorf("validity %s to %s: want a non-zero issue time before the end", r.Issued.Format(time.RFC3339), r.ValidUntil.Format(time.RFC3339))
	}
	return nil
}

// Sign signs a certificate, rejection or re-inspection result about the
// given subjects (the artifact first, then its SBOM if any) with the
// certify key(s) and returns the DSSE envelope. Times are written in UTC.
func Sign(subjects []Subject, r Result, signers ...*keys.Key) ([]byte, error) {
	r.Issued, r.ValidUntil = r.Issued.UTC(), r.ValidUntil.UTC()
	if err := r.Validate(subjects); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	st := statementJSON{Type: StatementType, PredicateType: PredicateType, Predicate: r}
	for _, s := range subjects {
		st.Subject = append(st.Subject, subjectJSON{Name: s.Name, Digest: map[string]string{"sha256": s.SHA256}})
	}
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := checkInToto(payload); err != nil {
		return nil, err
	}
	return signEnvelope(PayloadType, payload, signers, MaxEnvelopeSize)
}

// checkInToto checks payload against the in-toto Statement schema with the
// in-toto library (protojson refuses unknown fields and wrong types) and
// its Validate.
func checkInToto(payload []byte) error {
	var st intoto.Statement
	if err := (protojson.UnmarshalOptions{}).Unmarshal(payload, &st); err != nil {
		return fmt.Errorf("%w: in-toto statement: %v", ErrMalformed, err)
	}
	if err := st.Validate(); err != nil {
		return fmt.Errorf("%w: in-toto statement: %v", ErrMalformed, err)
	}
	if st.GetType() != StatementType {
		return fmt.Errorf("%w: _type %q, want %q", ErrWrongType, st.GetType(), StatementType)
	}
	if st.GetPredicateType() != PredicateType {
		return fmt.Errorf("%w: predicateType %q, want %q", ErrWrongType, st.GetPredicateType(), PredicateType)
	}
	return nil
}

// Verify checks a certificate, rejection or re-inspection envelope against
// the trusted root at time now: signed by a threshold of the root's
// certify keys (and by nothing else), the payload an in-toto Statement v1
// of PredicateType with well-formed subjects and Result, issued no later
// than now+MaxClockSkew, and now no later than ValidUntil (else an error
// wrapping ErrExpired). A rejection verifies; its Verdict is "fail".
func Verify(root *certroot.Root, envelope []byte, now time.Time) (*Certificate, error) {
	payload, signers, err := openEnvelope(root, certroot.RoleCertify, envelope, PayloadType, MaxEnvelopeSize, now)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	var st statementJSON
	if err := decodeStrict(payload, &st); err != nil {
		return nil, fmt.Errorf("certificate: %w: statement: %v", ErrMalformed, err)
	}
	if st.Type != StatementType {
		return nil, fmt.Errorf("certificate: %w: _type %q, want %q", ErrWrongType, st.Type, StatementType)
	}
	if st.PredicateType != PredicateType {
		return nil, fmt.Errorf("certificate: %w: predicateType %q, want %q", ErrWrongType, st.PredicateType, PredicateType)
	}
	if err := checkInToto(payload); err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	var subjects []Subject
	for i, s := range st.Subject {
		if len(s.Digest) != 1 {
			return nil, fmt.Errorf("certificate: %w: subject %d must have exactly a sha256 digest", ErrMalformed, i)
		}
		h, ok := s.Digest["sha256"]
		if !ok {
			return nil, fmt.Errorf("certificate: %w: subject %d has no sha256 digest", ErrMalformed, i)
		}
		subjects = append(subjects, Subject{Name: s.Name, SHA256: h})
	}
	r := st.Predicate
	if err := r.Validate(subjects); err != nil {
		return nil, fmt.Errorf("certificate: %w: %v", ErrMalformed, err)
	}
	if r.Issued.After(now.Add(MaxClockSkew)) {
		return nil, fmt.Errorf("certificate: %w: issued %s, now %s", ErrNotYetValid, r.Issued.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.After(r.ValidUntil) {
		return nil, fmt.Errorf("certificate: %w: valid until %s, now %s", ErrExpired, r.ValidUntil.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return &Certificate{
		Envelope: bytes.Clone(envelope),
		Digest:   DigestOf(envelope),
		Subjects: subjects,
		Result:   r,
		Signers:  slices.Clone(signers),
	}, nil
}

// ReadResult decodes the predicate of an envelope WITHOUT checking any
// signature. It is for the issuer reading back what it stored itself
// (whose signing keys may since have been rotated); a trust decision must
// use Verify.
func ReadResult(envelope []byte) (*Result, error) {
	if len(envelope) > MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: envelope of %d bytes", ErrTooLarge, len(envelope))
	}
	var env dsse.Envelope
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, fmt.Errorf("%w: envelope: %v", ErrMalformed, err)
	}
	payload, err := env.DecodeB64Payload()
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	var st statementJSON
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("%w: statement: %v", ErrMalformed, err)
	}
	if st.PredicateType != PredicateType {
		return nil, fmt.Errorf("%w: predicate type %q", ErrWrongType, st.PredicateType)
	}
	return &st.Predicate, nil
}
