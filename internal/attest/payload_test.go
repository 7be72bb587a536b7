package attest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/keys"
)

func TestSignPayload(t *testing.T) {
	f := newFixture(t, keys.ECDSAP256, 1, 1)
	const typ = "application/vnd.ztota.event+json"
	body := []byte(`{"seq":1}`)
	env, err := SignPayload(typ, body, f.certify[0])
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyPayload(f.root, certroot.RoleCertify, typ, env, now)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("VerifyPayload: %q, %v", got, err)
	}
	if _, err := VerifyPayload(f.root, certroot.RoleRevoke, typ, env, now); !errors.Is(err, ErrSignature) {
		t.Fatalf("checked against the revoke role: %v, want ErrSignature", err)
	}
	if _, err := VerifyPayload(f.root, certroot.RoleCertify, "application/other", env, now); !errors.Is(err, ErrWrongType) {
		t.Fatalf("other payload type: %v, want ErrWrongType", err)
	}
	if _, err := VerifyPayload(f.root, certroot.RoleCertify, typ, env[:len(env)-2], now); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: %v, want ErrMalformed", err)
	}
	// The reserved types cannot be signed or checked generically, so a raw
	// payload never passes for a certificate or revocation list.
	for _, reserved := range []string{PayloadType, RevocationsPayloadType, "", " x"} {
		if _, err := SignPayload(reserved, body, f.certify[0]); !errors.Is(err, ErrWrongType) {
			t.Errorf("SignPayload(%q): %v, want ErrWrongType", reserved, err)
		}
		if _, err := VerifyPayload(f.root, certroot.RoleCertify, reserved, f.sign(t, certResult()), now); !errors.Is(err, ErrWrongType) {
			t.Errorf("VerifyPayload(%q): %v, want ErrWrongType", reserved, err)
		}
	}
	// And a generic envelope is not a certificate.
	if _, err := Verify(f.root, env, now); !errors.Is(err, ErrWrongType) {
		t.Fatalf("event envelope as certificate: %v, want ErrWrongType", err)
	}
}

func TestReadResultDecodesWithoutVerifying(t *testing.T) {
	f := newFixture(t, keys.Ed25519, 1, 1)
	r, err := ReadResult(f.sign(t, certResult()))
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != KindCertificate || r.Verdict != VerdictPass {
		t.Fatalf("read %+v", r)
	}
	for _, bad := range [][]byte{nil, []byte("{"), []byte(`{"payload":"!!"}`), []byte(`{"payload":"e30="}`)} {
		if _, err := ReadResult(bad); err == nil {
			t.Errorf("ReadResult(%q) accepted", bad)
		}
	}
}
