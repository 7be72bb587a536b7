package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/strictjson"
)

// keySV is a dsse.SignerVerifier over an ed25519 or ECDSA P-256 key whose
// KeyID is the key's TUF key id.
type keySV struct {
	priv crypto.Signer // nil when only verifying
	pub  crypto.PublicKey
	id   string
}

// NewSignerVerifier returns a DSSE signer (and verifier) for k, with the
// key's TUF key id as KeyID. ed25519 signs the DSSE pre-authentication
// encoding directly; ECDSA P-256 signs its SHA-256, as ASN.1 DER with a
// low S value.
func NewSignerVerifier(k *keys.Key) (dsse.SignerVerifier, error) {
	if k == nil {
		return nil, errors.New("nil key")
	}
	switch p := k.Private.(type) {
	case ed25519.PrivateKey:
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() {
			return nil, errors.New("ECDSA key not on P-256")
		}
	default:
		return nil, fmt.Errorf("unsupported private key type %T", k.Private)
	}
	id, err := k.ID()
	if err != nil {
		return nil, err
	}
	return &keySV{priv: k.Private, pub: k.Public(), id: id}, nil
}

// NewVerifier returns a DSSE verifier for an ed25519 or ECDSA P-256 public
// key with the given key id. It checks that keyID is the key's TUF id.
func NewVerifier(keyID string, pub crypto.PublicKey) (dsse.Verifier, error) {
	tk, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if err := keys.CheckPublic(pub); err != nil {
		return nil, err
	}
	id, err := tk.ID()
	if err != nil {
		return nil, err
	}
	if id != keyID {
		return nil, fmt.Errorf("key id %s is not the key's TUF id %s", keyID, id)
	}
	return &keySV{pub: pub, id: id}, nil
}

type ecdsaSig struct{ R, S *big.Int }

var p256HalfN = new(big.Int).Rsh(elliptic.P256().Params().N, 1)

// Sign implements dsse.Signer.
func (s *keySV) Sign(_ context.Context, data []byte) ([]byte, error) {
	switch p := s.priv.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(p, data), nil
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(data)
		der, err := ecdsa.SignASN1(rand.Reader, p, h[:])
		if err != nil {
			return nil, err
		}
		var sig ecdsaSig
		if _, err := asn1.Unmarshal(der, &sig); err != nil {
			return nil, err
		}
		if sig.S.Cmp(p256HalfN) > 0 {
			sig.S.Sub(p.Curve.Params().N, sig.S)
		}
		return asn1.Marshal(sig)
	default:
		return nil, errors.New("verify-only key cannot sign")
	}
}

// Verify implements dsse.Verifier.
func (s *keySV) Verify(_ context.Context, data, sig []byte) error {
	switch p := s.pub.(type) {
	case ed25519.PublicKey:
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(p, data, sig) {
			return errors.New("ed25519 signature does not verify")
		}
		return nil
	case *ecdsa.PublicKey:
		var v ecdsaSig
		rest, err := asn1.Unmarshal(sig, &v)
		if err != nil || len(rest) != 0 || v.R == nil || v.S == nil {
			return errors.New("ECDSA signature is not one DER sequence of two integers")
		}
		if again, err := asn1.Marshal(v); err != nil || !bytes.Equal(again, sig) {
			return errors.New("ECDSA signature is not canonical DER")
		}
		n := p.Curve.Params().N
		if v.R.Sign() <= 0 || v.S.Sign() <= 0 || v.R.Cmp(n) >= 0 || v.S.Cmp(p256HalfN) > 0 {
			return errors.New("ECDSA signature values out of range (S must be low)")
		}
		h := sha256.Sum256(data)
		if !ecdsa.Verify(p, h[:], v.R, v.S) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	default:
		return fmt.Errorf("unsupported public key type %T", s.pub)
	}
}

// KeyID implements dsse.Signer and dsse.Verifier: the TUF key id.
func (s *keySV) KeyID() (string, error) { return s.id, nil }

// Public implements dsse.Verifier.
func (s *keySV) Public() crypto.PublicKey { return s.pub }

// signEnvelope signs payload with every key and returns the canonical
// envelope bytes (signatures sorted by key id).
func signEnvelope(payloadType string, payload []byte, signers []*keys.Key, limit int) ([]byte, error) {
	if len(signers) == 0 {
		return nil, errors.New("no signing key given")
	}
	if len(signers) > MaxSignatures {
		return nil, fmt.Errorf("%w: %d signing keys > %d", ErrTooLarge, len(signers), MaxSignatures)
	}
	svs := make([]dsse.Signer, 0, len(signers))
	seen := map[string]bool{}
	for _, k := range signers {
		sv, err := NewSignerVerifier(k)
		if err != nil {
			return nil, err
		}
		id, _ := sv.KeyID()
		if seen[id] {
			return nil, fmt.Errorf("key %s given twice", id)
		}
		seen[id] = true
		svs = append(svs, sv)
	}
	es, err := dsse.NewEnvelopeSigner(svs...)
	if err != nil {
		return nil, err
	}
	env, err := es.SignPayload(context.Background(), payloadType, payload)
	if err != nil {
		return nil, err
	}
	sort.Slice(env.Signatures, func(i, j int) bool { return env.Signatures[i].KeyID < env.Signatures[j].KeyID })
	data, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%w: envelope of %d bytes > %d", ErrTooLarge, len(data), limit)
	}
	return data, nil
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields and trailing data, and then insists that v re-encodes to exactly
// data, so that only the one encoding Sign produces is accepted.
func decodeStrict(data []byte, v any) error {
	if err := strictjson.Decode(data, v); err != nil {
		return err
	}
	again, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, data) {
		return errors.New("not in canonical form (whitespace, key order or spelling, duplicate keys, or number and time formats differ from what ztota writes)")
	}
	return nil
}

// decodeB64 decodes standard padded base64 and refuses every other form
// (the decoder alone skips newlines), so the text is the only encoding of
// the bytes.
func decodeB64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if base64.StdEncoding.EncodeToString(b) != s {
		return nil, errors.New("not canonical standard base64")
	}
	return b, nil
}

// openEnvelope parses a canonical envelope, checks its payload type, and
// checks that a threshold of role's keys signed it and that every
// signature is a valid one by a distinct key of that role. It returns the
// payload and the signing key ids.
func openEnvelope(root *certroot.Root, role string, data []byte, payloadType string, limit int, now time.Time) ([]byte, []string, error) {
	if root == nil {
		return nil, nil, errors.New("no trusted certification root")
	}
	if root.Expired(now) {
		return nil, nil, fmt.Errorf("%w: version %d expired at %s; update it first", certroot.ErrExpired, root.Version(), root.Expires().Format(time.RFC3339))
	}
	if len(data) > limit {
		return nil, nil, fmt.Errorf("%w: envelope of %d bytes > %d", ErrTooLarge, len(data), limit)
	}
	var env dsse.Envelope
	if err := decodeStrict(data, &env); err != nil {
		return nil, nil, fmt.Errorf("%w: envelope: %v", ErrMalformed, err)
	}
	if env.PayloadType != payloadType {
		return nil, nil, fmt.Errorf("%w: payloadType %q, want %q", ErrWrongType, env.PayloadType, payloadType)
	}
	payload, err := decodeB64(env.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: payload is not standard base64: %v", ErrMalformed, err)
	}
	n := len(env.Signatures)
	if n == 0 || n > MaxSignatures {
		return nil, nil, fmt.Errorf("%w: %d signatures, want 1 to %d", ErrSignature, n, MaxSignatures)
	}
	roleKeys := root.PublicKeys(role)
	var ids []string
	for i, s := range env.Signatures {
		if _, err := decodeB64(s.Sig); err != nil {
			return nil, nil, fmt.Errorf("%w: signature %d is not standard base64: %v", ErrMalformed, i, err)
		}
		if i > 0 && s.KeyID <= env.Signatures[i-1].KeyID {
			return nil, nil, fmt.Errorf("%w: signatures not sorted by distinct key ids", ErrMalformed)
		}
		if _, ok := roleKeys[s.KeyID]; !ok {
			return nil, nil, fmt.Errorf("%w: signature by key %q, which is not a %s key of root version %d", ErrSignature, s.KeyID, role, root.Version())
		}
		ids = append(ids, s.KeyID)
	}
	var vs []dsse.Verifier
	for id, pub := range roleKeys {
		v, err := NewVerifier(id, pub)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: root key %s: %v", ErrSignature, id, err)
		}
		vs = append(vs, v)
	}
	ev, err := dsse.NewMultiEnvelopeVerifier(root.Threshold(role), vs...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s role: %v", ErrSignature, role, err)
	}
	accepted, err := ev.Verify(context.Background(), &env)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s threshold %d: %v", ErrSignature, role, root.Threshold(role), err)
	}
	if len(accepted) != n {
		return nil, nil, fmt.Errorf("%w: %d of %d signatures do not verify", ErrSignature, n-len(accepted), n)
	}
	return payload, ids, nil
}
