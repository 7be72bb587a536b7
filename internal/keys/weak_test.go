package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"
)

// smallOrder are the encodings of the eight points of the ed25519
// 8-torsion subgroup, and non-canonical encodings of some of them.
var smallOrder = map[string]string{
	"identity":                   "0100000000000000000000000000000000000000000000000000000000000000",
	"order 2":                    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"order 4":                    "0000000000000000000000000000000000000000000000000000000000000000",
	"order 4, sign set":          "0000000000000000000000000000000000000000000000000000000000000080",
	"order 8 a":                  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
	"order 8 b":                  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
	"order 8 c":                  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
	"order 8 d":                  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
	"identity, y = p+1":          "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"identity, sign set":         "0100000000000000000000000000000000000000000000000000000000000080",
	"order 4, y = p":             "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"order 2, y = p-1, sign set": "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
}

// TestSmallOrderEd25519KeysAreRefused performs attack 6: with the
// identity point as a device key, the trivial signature R = identity,
// S = 0 verifies on any message, so anyone can sign as the device. Every
// small-order key and non-canonical encoding is refused with ErrWeakKey;
// a real key passes.
func TestSmallOrderEd25519KeysAreRefused(t *testing.T) {
	identity, _ := hex.DecodeString(smallOrder["identity"])
	trivial := make([]byte, ed25519.SignatureSize)
	trivial[0] = 1 // R = encoding of the identity, S = 0
	for _, msg := range []string{"ztota-request-v1\ndev-1\nPOST\n/v1/devices/dev-1/reports\n0\n", "anything at all"} {
		if !ed25519.Verify(ed25519.PublicKey(identity), []byte(msg), trivial) {
			t.Fatal("the trivial signature does not verify under the identity key; the attack premise changed")
		}
	}
	for name, h := range smallOrder {
		k, _ := hex.DecodeString(h)
		if err := CheckEd25519Public(k); !errors.Is(err, ErrWeakKey) {
			t.Errorf("%s (%s): %v, want ErrWeakKey", name, h, err)
		}
		if err := CheckPublic(ed25519.PublicKey(k)); !errors.Is(err, ErrWeakKey) {
			t.Errorf("CheckPublic %s: %v, want ErrWeakKey", name, err)
		}
	}
	off := make([]byte, 32)
	off[0] = 2 // y = 2 is not on the curve
	if err := CheckEd25519Public(off); !errors.Is(err, ErrWeakKey) {
		t.Errorf("off-curve y=2: %v, want ErrWeakKey", err)
	}
	for _, n := range []int{0, 31, 33} {
		if err := CheckEd25519Public(make([]byte, n)); !errors.Is(err, ErrWeakKey) {
			t.Errorf("%d bytes: %v, want ErrWeakKey", n, err)
		}
	}
	for i := 0; i < 64; i++ {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		if err := CheckEd25519Public(pub); err != nil {
			t.Fatalf("a generated key %x was refused: %v", pub, err)
		}
	}
}

// TestECDSAKeyOffTheCurveIsRefused checks that an ECDSA P-256 public key
// whose point is not on the curve (an invalid-curve attack's input) is
// refused where ECDSA keys are accepted.
func TestECDSAKeyOffTheCurveIsRefused(t *testing.T) {
	k, err := Generate(ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	pub := *(k.Public().(*ecdsa.PublicKey))
	if err := CheckPublic(&pub); err != nil {
		t.Fatalf("a generated P-256 key: %v", err)
	}
	bad := pub
	bad.Y = new(big.Int).Add(pub.Y, big.NewInt(1))
	if err := CheckPublic(&bad); !errors.Is(err, ErrWeakKey) {
		t.Fatalf("point off the curve: %v, want ErrWeakKey", err)
	}
}
