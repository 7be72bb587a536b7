package keys

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"filippo.io/edwards25519"
)

// ErrWeakKey is a public key that must not be trusted: not a point of the
// curve, a non-canonical encoding, or a point of small order. For a
// small-order ed25519 key (the identity point 01 00..00 among them) a
// signature made without any private key verifies on many messages.
var ErrWeakKey = errors.New("weak or malformed public key")

// CheckEd25519Public refuses ed25519 public keys that are not 32 bytes,
// not the canonical encoding of a point on the curve, or of small order
// (the eight points of the 8-torsion subgroup, in any encoding).
func CheckEd25519Public(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: ed25519 key of %d bytes, want %d", ErrWeakKey, len(pub), ed25519.PublicKeySize)
	}
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return fmt.Errorf("%w: not an ed25519 curve point", ErrWeakKey)
	}
	// SetBytes accepts non-canonical encodings (y >= p, or x = 0 with
	// the sign bit set); only the canonical one is a key.
	if !bytes.Equal(p.Bytes(), pub) {
		return fmt.Errorf("%w: non-canonical ed25519 point encoding", ErrWeakKey)
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return fmt.Errorf("%w: ed25519 point of small order", ErrWeakKey)
	}
	return nil
}
