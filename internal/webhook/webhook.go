// Package webhook signs and verifies the server's repair webhooks: an
// ed25519 signature over the exact request body, with the server's
// dedicated webhook key, carried in headers:
//
//	X-Ztota-Signature: ed25519=<base64 standard encoding of the signature>
//	X-Ztota-Key-Id:    <hex sha256 of the public key, as the server's GET /v1/webhook-key names it>
//
// A receiver pins the public key (GET /v1/webhook-key once, out of band),
// checks the signature over the body bytes it read with Verify before
// parsing them, and uses the body's "seq" as its idempotency key: the
// server delivers each event at least once, in order of seq.
package webhook

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Headers of a signed webhook.
const (
	SignatureHeader = "X-Ztota-Signature"
	KeyIDHeader     = "X-Ztota-Key-Id"
	EventHeader     = "X-Ztota-Event"
	SeqHeader       = "X-Ztota-Seq"
)

// MaxBody bounds a webhook body (senders and receivers).
const MaxBody = 1 << 20

const prefix = "ed25519="

// ErrBadSignature is a webhook whose signature header is malformed or
// does not verify over the body.
var ErrBadSignature = errors.New("webhook signature does not verify")

// KeyID names a public key: the hex sha256 of its bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}

// Sign returns the signature header value for body.
func Sign(priv ed25519.PrivateKey, body []byte) string {
	return prefix + base64.StdEncoding.EncodeToString(ed25519.Sign(priv, body))
}

// Verify checks the signature header value over the exact body bytes
// with the pinned public key.
func Verify(pub ed25519.PublicKey, body []byte, header string) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: the pinned key is not an ed25519 public key", ErrBadSignature)
	}
	if len(body) > MaxBody {
		return fmt.Errorf("%w: body of %d bytes, at most %d", ErrBadSignature, len(body), MaxBody)
	}
	enc, ok := strings.CutPrefix(header, prefix)
	if !ok || len(enc) > 2*base64.StdEncoding.EncodedLen(ed25519.SignatureSize) {
		return fmt.Errorf("%w: header %s must be %s<base64>", ErrBadSignature, SignatureHeader, prefix)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(enc)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: the signature is not %d bytes of base64", ErrBadSignature, ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, body, sig) {
		return ErrBadSignature
	}
	return nil
}
