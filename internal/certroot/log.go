package certroot

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/ztota/ztota/internal/keys"
)

// noteAlgEd25519 is the algorithm byte signed notes put before an ed25519 key.
const noteAlgEd25519 = 1

// LogVerifierKey returns the signed-note verifier key text
// ("<name>+<hash>+<key>") of the log role's ed25519 key, for
// note.NewVerifier. name is the log's name as its checkpoints carry it.
func (r *Root) LogVerifierKey(name string) (string, error) {
	ids := r.KeyIDs(RoleLog)
	if len(ids) != 1 {
		return "", fmt.Errorf("root version %d has %d log keys, want 1", r.Version(), len(ids))
	}
	pub, ok := r.pub[ids[0]].(ed25519.PublicKey)
	if !ok {
		return "", fmt.Errorf("root version %d: the log key is not ed25519", r.Version())
	}
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return "", fmt.Errorf("log verifier key for %q: %w", name, err)
	}
	if _, err := note.NewVerifier(vkey); err != nil {
		return "", fmt.Errorf("log verifier key for %q: %w", name, err)
	}
	return vkey, nil
}

// PinnedLogVerifierKey returns the verifier key text of the log role's key
// under the origin the root pins. Receipts and checkpoints are checked with
// it, never with an origin read from the checkpoint itself. A root that
// pins no origin yields ErrNoLogOrigin.
func (r *Root) PinnedLogVerifierKey() (string, error) {
	origin, err := r.LogOrigin()
	if err != nil {
		return "", err
	}
	return r.LogVerifierKey(origin)
}

// LogSigner returns a signed-note signer named name over the ed25519 key k
// (the online log key), matching LogVerifierKey(name) of a root that lists
// k as its log key.
func LogSigner(name string, k *keys.Key) (note.Signer, error) {
	priv, ok := k.Private.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the log key must be ed25519, not %s", k.Alg)
	}
	vkey, err := note.NewEd25519VerifierKey(name, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("log signer for %q: %w", name, err)
	}
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("unexpected verifier key form %q", vkey)
	}
	seed := append([]byte{noteAlgEd25519}, priv.Seed()...)
	return note.NewSigner("PRIVATE+KEY+" + parts[0] + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(seed))
}
