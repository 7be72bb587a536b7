package attest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/keys"
)

// FuzzVerify feeds arbitrary envelope bytes to Verify and
// VerifyRevocations. They must never panic, every error must wrap one of
// the package's errors, and whatever verifies must be exactly what the
// certify (or revoke) key signed.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f, keys.ECDSAP256, 2, 1)
	cert := fx.sign(f, certResult(), fx.certify[0])
	both := fx.sign(f, certResult(), fx.certify...)
	rej := certResult()
	rej.Kind, rej.Verdict = KindRejection, VerdictFail
	rev, err := SignRevocations(revList(1, revA, revB), fx.revoke)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{cert, both, fx.sign(f, rej, fx.certify[1]), rev, []byte("{}"), []byte(`{"payloadType":"","payload":"","signatures":[]}`)} {
		f.Add(seed)
	}
	known := []error{ErrTooLarge, ErrMalformed, ErrWrongType, ErrSignature, ErrExpired, ErrNotYetValid}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Verify(fx.root, data, now)
		if err == nil {
			if c.Digest != DigestOf(data) || !bytes.Equal(c.Envelope, data) {
				t.Fatal("digest or envelope of a verified certificate differ from the input")
			}
			if !c.Covers(c.Subjects[0].SHA256) || len(c.Signers) == 0 {
				t.Fatal("verified certificate does not cover its own artifact or has no signer")
			}
			// Re-signing the verified content gives a payload the
			// verifier also accepts (the accepted form is the signed form).
			env, err := Sign(c.Subjects, c.Result, fx.certify[0])
			if err != nil {
				t.Fatalf("re-signing verified content: %v", err)
			}
			if _, err := Verify(fx.root, env, now); err != nil {
				t.Fatalf("re-signed content does not verify: %v", err)
			}
		} else if !isKnown(err, known) {
			t.Fatalf("Verify error wraps no package error: %v", err)
		}
		l, err := VerifyRevocations(fx.root, data, nil, now)
		if err == nil {
			if _, err := SignRevocations(*l, fx.revoke); err != nil {
				t.Fatalf("re-signing a verified list: %v", err)
			}
		} else if !isKnown(err, known) {
			t.Fatalf("VerifyRevocations error wraps no package error: %v", err)
		}
	})
}

func isKnown(err error, known []error) bool {
	for _, k := range known {
		if errors.Is(err, k) {
			return true
		}
	}
	return errors.Is(err, certroot.ErrExpired)
}

// TestFuzzSeedsVerify makes sure the fuzz seeds exercise the accepting
// path, so FuzzVerify's checks on verified input run at all.
func TestFuzzSeedsVerify(t *testing.T) {
	fx := newFixture(t, keys.Ed25519, 2, 1)
	env := fx.sign(t, certResult(), fx.certify...)
	if _, err := Verify(fx.root, env, now); err != nil {
		t.Fatal(err)
	}
	// Base64 of the canonical envelope payload decodes to what was signed.
	p, err := base64.StdEncoding.DecodeString(envelopeMap(t, env).get("payload").(string))
	if err != nil || !bytes.Contains(p, []byte(PredicateType)) {
		t.Fatalf("payload %q: %v", p, err)
	}
}
