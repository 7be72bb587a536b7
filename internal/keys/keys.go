// Package keys generates, stores and loads the signing keys of ztota's
// update repositories and devices.
//
// A key file is a small JSON document, written with mode 0600:
//
//	{"type": "ed25519", "private": "<base64 of the PKCS#8 DER private key>"}
//
// type is "ed25519" (the default) or "ecdsa-p256". Key files are parsed
// strictly: unknown fields, trailing data, a type that does not match the
// encoded key, or a file larger than MaxFileSize are refused.
package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/atomicfile"
	"github.com/ztota/ztota/internal/boundedfile"
)

// Algorithms a key may use.
const (
	Ed25519   = "ed25519"
	ECDSAP256 = "ecdsa-p256"
)

// MaxFileSize bounds what Load reads from a key file.
const MaxFileSize = 16 << 10

// ErrBadKeyFile is wrapped by every error about a malformed key file.
var ErrBadKeyFile = errors.New("malformed key file")

// Key is a private signing key with its algorithm.
type Key struct {
	Alg     string
	Private crypto.Signer
}

// Generate makes a new key of the given algorithm ("" means ed25519).
func Generate(alg string) (*Key, error) {
	switch alg {
	case "", Ed25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return &Key{Alg: Ed25519, Private: priv}, nil
	case ECDSAP256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return &Key{Alg: ECDSAP256, Private: priv}, nil
	default:
		return nil, fmt.Errorf("unknown key algorithm %q: use %q or %q", alg, Ed25519, ECDSAP256)
	}
}

// Public returns the public half.
func (k *Key) Public() crypto.PublicKey { return k.Private.Public() }

// TUF returns the key as TUF metadata describes it.
func (k *Key) TUF() (*metadata.Key, error) { return metadata.KeyFromPublicKey(k.Public()) }

// ID returns the TUF key id (hex sha256 of the canonical public key).
func (k *Key) ID() (string, error) {
	tk, err := k.TUF()
	if err != nil {
		return "", err
	}
	return tk.ID()
}

// Signer returns a signer usable with go-tuf's metadata.Sign.
func (k *Key) Signer() (signature.Signer, error) {
	switch p := k.Private.(type) {
	case ed25519.PrivateKey:
		return signature.LoadED25519Signer(p)
	case *ecdsa.PrivateKey:
		return signature.LoadECDSASigner(p, crypto.SHA256)
	default:
		return nil, fmt.Errorf("unsupported private key type %T", k.Private)
	}
}

type fileFormat struct {
	Type    string `json:"type"`
	Private []byte `json:"private"`
}

// Marshal encodes the key in the key file format.
func (k *Key) Marshal() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(fileFormat{Type: k.Alg, Private: der}, "", "  ")
}

// Parse decodes a key file.
func Parse(data []byte) (*Key, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadKeyFile, MaxFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileFormat
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the key object", ErrBadKeyFile)
	}
	priv, err := x509.ParsePKCS8PrivateKey(f.Private)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	}
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		if f.Type != Ed25519 {
			return nil, fmt.Errorf("%w: type %q but the key is ed25519", ErrBadKeyFile, f.Type)
		}
		return &Key{Alg: Ed25519, Private: p}, nil
	case *ecdsa.PrivateKey:
		if f.Type != ECDSAP256 || p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: type %q but the key is ECDSA on another curve", ErrBadKeyFile, f.Type)
		}
		return &Key{Alg: ECDSAP256, Private: p}, nil
	default:
		return nil, fmt.Errorf("%w: unsupported key type %T", ErrBadKeyFile, priv)
	}
}

// Load reads a key file.
func Load(path string) (*Key, error) {
	data, err := boundedfile.Read(path, MaxFileSize)
	if errors.Is(err, boundedfile.ErrTooLarge) {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", path, ErrBadKeyFile, MaxFileSize)
	}
	if err != nil {
		return nil, err
	}
	k, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// Save writes the key file atomically with mode 0600. It refuses to
// overwrite an existing file.
func Save(path string, k *Key) error {
	data, err := k.Marshal()
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s already exists: refusing to overwrite a key", path)
	}
	return WriteFileAtomic(path, data, 0o600)
}

// WriteFileAtomic writes data to a temporary file beside path, fsyncs it,
// renames it over path and fsyncs the directory: atomicfile.WriteFile,
// kept under this name for its many callers.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return atomicfile.WriteFile(path, data, perm)
}

// CheckPublic accepts only the public keys ztota signs with: ed25519 of
// the right size and ECDSA on P-256.
func CheckPublic(pub crypto.PublicKey) error {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return CheckEd25519Public(p)
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return errors.New("ECDSA key not on P-256")
		}
		// ECDH validates the point: on the curve, not the identity.
		if _, err := p.ECDH(); err != nil {
			return fmt.Errorf("%w: ECDSA P-256 point: %v", ErrWeakKey, err)
		}
	default:
		return fmt.Errorf("unsupported public key type %T", pub)
	}
	return nil
}
