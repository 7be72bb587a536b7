package webhook

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
)

// TestTamperedWebhookFailsVerify signs a body and checks that the body,
// the signature, another key and malformed headers are each refused.
func TestTamperedWebhookFailsVerify(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	body := []byte(`{"event":"repair.opened","seq":1}`)
	h := Sign(priv, body)
	if err := Verify(pub, body, h); err != nil {
		t.Fatalf("genuine: %v", err)
	}
	tampered := []byte(`{"event":"repair.closed","seq":1}`)
	sig := []byte(h)
	sig[len(sig)-3] ^= 1
	for name, c := range map[string]struct {
		pub  ed25519.PublicKey
		body []byte
		h    string
	}{
		"body":      {pub, tampered, h},
		"signature": {pub, body, string(sig)},
		"other key": {other, body, h},
		"no prefix": {pub, body, h[len("ed25519="):]},
		"empty":     {pub, body, ""},
		"short key": {pub[:10], body, h},
		"not b64":   {pub, body, "ed25519=!!!"},
	} {
		if err := Verify(c.pub, c.body, c.h); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: got %v, want ErrBadSignature", name, err)
		}
	}
	if KeyID(pub) == KeyID(other) || len(KeyID(pub)) != 64 {
		t.Fatal("key ids")
	}
}
