// Package attest signs and verifies what the ztota certification service
// issues: certificates (an artifact passed inspection), rejections (it
// failed), re-inspection results (an earlier certificate checked again
// against newer vulnerability data) and revocation lists.
//
// # Certificates, rejections, re-inspections
//
// Each is an in-toto Statement v1 (_type "https://in-toto.io/Statement/v1")
// whose subjects are the artifact (first) and, when one was supplied, its
// SBOM, each named with its sha256 digest; predicateType is PredicateType
// and the predicate is a Result. The statement is the payload of a DSSE
// envelope (payloadType "application/vnd.in-toto+json") signed by keys of
// the certification root's "certify" role; every signature carries the
// signing key's TUF key id as listed in that root.
//
// Verify accepts an envelope only if a threshold of the certify role's keys
// signed it, every signature present is a valid one by a distinct certify
// key (a signature by another role's key, such as the revoke key, is
// refused: keys are never shared between roles), the statement is well
// formed and the certificate is inside its validity window. A rejection
// verifies like a certificate: its Verdict is "fail".
//
// # Canonical form
//
// A certificate is identified by Digest, the sha256 of its envelope bytes,
// so those bytes must not be malleable by anyone without a certify key.
// Verify accepts only the exact encoding Sign produces: the envelope and
// the statement must re-encode to the same bytes (no extra whitespace,
// duplicate or case-variant keys, or alternative base64), signatures are
// sorted by key id, and ECDSA signatures must be DER with a low S value.
// What remains is that a holder of an envelope signed by more keys than
// the threshold may drop the surplus signatures; ztota signs with exactly
// the keys it is given, and revocations can name the artifact rather than
// one certificate (see RevocationList.Lookup).
//
// # Revocation lists
//
// A RevocationList is signed JSON in a DSSE envelope with payloadType
// "application/vnd.ztota.revocations+json", by the "revoke" role. Lists
// carry a version; VerifyRevocations, given the previously trusted list,
// refuses a lower version (ErrRollback), the same version with different
// content (ErrConflict), and a newer list that drops any entry of the
// previous one (ErrForgotten): a revocation, once published, is never
// withdrawn. An expired list is refused with ErrExpired.
//
// # Other payloads
//
// SignPayload and VerifyPayload sign and check any other payload type (a
// webhook event, say) with the same envelope rules and any role of the
// root. They refuse the certificate and revocation payload types, so a
// generic payload can never pass for either: DSSE signs the payload type
// together with the payload.
//
// # Bounds
//
// Sizes (MaxEnvelopeSize, MaxRevocationsSize), counts (MaxSignatures,
// MaxSubjects, MaxFindings, MaxDisagreements, MaxRevocations,
// MaxAdvisories), field lengths (MaxFieldLen) and clock skew (MaxClockSkew)
// are named constants. Every error wraps one of the package's Err values,
// or certroot.ErrExpired when the trusted root itself has expired.
package attest
