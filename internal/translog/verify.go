package translog

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ztota/ztota/internal/keys"
)

// Limits on what the log accepts and what verifiers read.
const (
	// MaxKindLength bounds the length of an entry kind.
	MaxKindLength = 64
	// MaxEntrySize bounds the data of one entry.
	MaxEntrySize = 4 << 20
	// MaxCheckpointSize bounds a signed checkpoint note (body and
	// signature lines, including any cosignatures).
	MaxCheckpointSize = 16 << 10
	// MaxProofHashes bounds the number of hashes in an inclusion or
	// consistency proof. A tree of up to 2^63 entries needs fewer.
	MaxProofHashes = 128
)

// Kinds of entries the certification service logs. Append accepts any kind
// that passes ValidKind; these are the ones ztota uses.
const (
	KindCertificate    = "certificate"
	KindRejection      = "rejection"
	KindReinspection   = "reinspection"
	KindRevocationList = "revocation-list"
	KindVulnDBSnapshot = "vulndb-snapshot"
)

// Errors wrapped by the verification functions.
var (
	// ErrBadCheckpoint is wrapped by every error about a malformed or
	// wrongly signed checkpoint.
	ErrBadCheckpoint = errors.New("bad checkpoint")
	// ErrBadProof is wrapped by every error about a proof that does not
	// verify.
	ErrBadProof = errors.New("bad proof")
)

// emptyTreeHash is the RFC 6962 hash of the empty tree (SHA-256 of nothing).
var emptyTreeHash = tlog.Hash(sha256.Sum256(nil))

// ValidKind reports whether kind may name an entry: 1 to MaxKindLength
// characters from [a-z0-9.-], starting with a letter or digit. A kind never
// contains a newline, which makes the leaf encoding unambiguous.
func ValidKind(kind string) error {
	if kind == "" || len(kind) > MaxKindLength {
		return fmt.Errorf("entry kind must be 1 to %d characters, got %d", MaxKindLength, len(kind))
	}
	for i := 0; i < len(kind); i++ {
		c := kind[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (i > 0 && (c == '.' || c == '-'))
		if !ok {
			return fmt.Errorf("entry kind %q: character %q at %d is not allowed (use a-z, 0-9, '.', '-', starting with a letter or digit)", kind, c, i)
		}
	}
	return nil
}

// LeafData returns the canonical encoding of an entry that the log hashes:
// the kind, one newline, then the data bytes unchanged.
func LeafData(kind string, data []byte) []byte {
	b := make([]byte, 0, len(kind)+1+len(data))
	b = append(b, kind...)
	b = append(b, '\n')
	return append(b, data...)
}

// LeafHash returns the Merkle leaf hash of an entry:
// tlog.RecordHash(LeafData(kind, data)), that is
// SHA-256(0x00 || kind || "\n" || data) as in RFC 6962.
func LeafHash(kind string, data []byte) tlog.Hash {
	return tlog.RecordHash(LeafData(kind, data))
}

// Checkpoint is the content of a signed checkpoint: the log's origin, its
// size (number of entries) and the root hash of the tree of that size.
type Checkpoint struct {
	Origin string
	Size   int64
	Hash   tlog.Hash
}

// Text returns the checkpoint body that is signed:
// "<origin>\n<size>\n<base64 root hash>\n".
func (c Checkpoint) Text() []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", c.Origin, c.Size, c.Hash)
}

// parseCheckpointText parses a checkpoint body strictly: exactly three
// lines, a decimal size without sign or leading zeros, and a canonical
// base64 hash. Extension lines are refused because this log never writes
// them.
func parseCheckpointText(text string) (Checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return Checkpoint{}, fmt.Errorf("%w: body must be exactly three lines (origin, size, hash), got %d", ErrBadCheckpoint, len(lines)-1)
	}
	if lines[0] == "" {
		return Checkpoint{}, fmt.Errorf("%w: empty origin line", ErrBadCheckpoint)
	}
	size, err := parseDecimal(lines[1])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: size line: %v", ErrBadCheckpoint, err)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize || base64.StdEncoding.EncodeToString(raw) != lines[2] {
		return Checkpoint{}, fmt.Errorf("%w: root hash line is not %d bytes in canonical base64", ErrBadCheckpoint, tlog.HashSize)
	}
	cp := Checkpoint{Origin: lines[0], Size: size}
	copy(cp.Hash[:], raw)
	if size == 0 && cp.Hash != emptyTreeHash {
		return Checkpoint{}, fmt.Errorf("%w: size 0 with a root hash other than the empty tree's", ErrBadCheckpoint)
	}
	return cp, nil
}

// parseDecimal parses a non-negative int64 written in canonical decimal:
// digits only, no sign, no leading zeros, at most 19 digits.
func parseDecimal(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty number")
	}
	if len(s) > 19 {
		return 0, fmt.Errorf("number %.20q… longer than 19 digits", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%q has leading zeros", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return n, nil
}

// SignerFromKey makes a note signer and verifier for an ed25519 key under
// name, and returns the verifier key text ("<name>+<hash>+<base64 key>")
// that verifiers configure. name is the log's origin: Open requires the
// origin to equal the signer's name, and VerifyCheckpoint requires the
// checkpoint's origin to equal the verifier's name.
func SignerFromKey(k ed25519.PrivateKey, name string) (note.Signer, note.Verifier, string, error) {
	if len(k) != ed25519.PrivateKeySize {
		return nil, nil, "", fmt.Errorf("translog: ed25519 private key has %d bytes, want %d", len(k), ed25519.PrivateKeySize)
	}
	pub := k.Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return nil, nil, "", fmt.Errorf("translog: verifier key: %w", err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, nil, "", fmt.Errorf("translog: log name %q: %w (a name is non-empty, without spaces or '+')", name, err)
	}
	seed := append([]byte{1}, k.Seed()...) // 1 is note's ed25519 algorithm byte
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, verifier.KeyHash(), base64.StdEncoding.EncodeToString(seed))
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, nil, "", fmt.Errorf("translog: signer key: %w", err)
	}
	return signer, verifier, vkey, nil
}

// SignerFromKeysKey is SignerFromKey for a key loaded with package keys.
// Checkpoints are signed with ed25519 only; other algorithms are refused.
func SignerFromKeysKey(k *keys.Key, name string) (note.Signer, note.Verifier, string, error) {
	if k == nil {
		return nil, nil, "", errors.New("translog: no key")
	}
	priv, ok := k.Private.(ed25519.PrivateKey)
	if !ok {
		return nil, nil, "", fmt.Errorf("translog: checkpoints are signed with ed25519 keys; this key is %s", k.Alg)
	}
	return SignerFromKey(priv, name)
}

// signCheckpoint signs cp as a note.
func signCheckpoint(cp Checkpoint, s note.Signer) ([]byte, error) {
	signed, err := note.Sign(&note.Note{Text: string(cp.Text())}, s)
	if err != nil {
		return nil, fmt.Errorf("translog: signing checkpoint: %w", err)
	}
	return signed, nil
}

// VerifyCheckpoint checks that signed is a checkpoint note signed by v and
// returns its content. The checkpoint's origin must equal v.Name(): a key
// speaks for exactly one log. Signatures by other keys (for example
// witness cosignatures) are allowed alongside and ignored.
func VerifyCheckpoint(signed []byte, v note.Verifier) (Checkpoint, error) {
	if v == nil {
		return Checkpoint{}, fmt.Errorf("%w: no verifier given", ErrBadCheckpoint)
	}
	if len(signed) > MaxCheckpointSize {
		return Checkpoint{}, fmt.Errorf("%w: %d bytes, larger than %d", ErrBadCheckpoint, len(signed), MaxCheckpointSize)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			var by []string
			for _, sig := range unverified.Note.UnverifiedSigs {
				by = append(by, fmt.Sprintf("%s+%08x", sig.Name, sig.Hash))
			}
			return Checkpoint{}, fmt.Errorf("%w: not signed by the log key %s+%08x (signed by %s)", ErrBadCheckpoint, v.Name(), v.KeyHash(), strings.Join(by, ", "))
		case errors.As(err, &invalid):
			return Checkpoint{}, fmt.Errorf("%w: signature by %s+%08x does not verify", ErrBadCheckpoint, v.Name(), v.KeyHash())
		default:
			return Checkpoint{}, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
		}
	}
	cp, err := parseCheckpointText(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if cp.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("%w: origin %q is not the log %q that the key speaks for", ErrBadCheckpoint, cp.Origin, v.Name())
	}
	return cp, nil
}

// VerifyInclusion checks that proof shows the entry (kind, data) at index
// in the tree described by cp. The leaf hash is LeafHash(kind, data).
func VerifyInclusion(cp Checkpoint, index int64, kind string, data []byte, proof tlog.RecordProof) error {
	if err := ValidKind(kind); err != nil {
		return fmt.Errorf("%w: %v", ErrBadProof, err)
	}
	if index < 0 || index >= cp.Size {
		return fmt.Errorf("%w: index %d is not in a tree of size %d", ErrBadProof, index, cp.Size)
	}
	if len(proof) > MaxProofHashes {
		return fmt.Errorf("%w: inclusion proof has %d hashes, more than %d", ErrBadProof, len(proof), MaxProofHashes)
	}
	if err := tlog.CheckRecord(proof, cp.Size, cp.Hash, index, LeafHash(kind, data)); err != nil {
		return fmt.Errorf("%w: %s entry %d is not in the tree of size %d with root %s: %v", ErrBadProof, kind, index, cp.Size, cp.Hash, err)
	}
	return nil
}

// VerifyConsistency checks that proof shows the tree of newer extends the
// tree of older: every entry of older is in newer, unchanged and in the
// same place. Both checkpoints must be of the same log.
func VerifyConsistency(older, newer Checkpoint, proof tlog.TreeProof) error {
	if older.Origin != newer.Origin {
		return fmt.Errorf("%w: checkpoints of different logs %q and %q", ErrBadProof, older.Origin, newer.Origin)
	}
	if older.Size < 0 || older.Size > newer.Size {
		return fmt.Errorf("%w: older size %d is above newer size %d", ErrBadProof, older.Size, newer.Size)
	}
	if len(proof) > MaxProofHashes {
		return fmt.Errorf("%w: consistency proof has %d hashes, more than %d", ErrBadProof, len(proof), MaxProofHashes)
	}
	if older.Size == 0 {
		// Every tree extends the empty tree.
		if older.Hash != emptyTreeHash {
			return fmt.Errorf("%w: older checkpoint has size 0 but a root hash other than the empty tree's", ErrBadProof)
		}
		if len(proof) != 0 {
			return fmt.Errorf("%w: consistency with the empty tree takes an empty proof, got %d hashes", ErrBadProof, len(proof))
		}
		return nil
	}
	if err := tlog.CheckTree(proof, newer.Size, newer.Hash, older.Size, older.Hash); err != nil {
		return fmt.Errorf("%w: tree of size %d (root %s) does not extend tree of size %d (root %s): %v",
			ErrBadProof, newer.Size, newer.Hash, older.Size, older.Hash, err)
	}
	return nil
}

// Receipt is what a certificate carries to prove it was logged: its index,
// a signed checkpoint of a tree holding it and the inclusion proof against
// that checkpoint. A verifier checks it offline with VerifyReceipt.
type Receipt struct {
	Index      int64            `json:"index"`
	Checkpoint []byte           `json:"checkpoint"`
	Proof      tlog.RecordProof `json:"proof"`
}

// VerifyReceipt checks that r proves the entry (kind, data) is in the log
// that v speaks for, and returns the checkpoint it was proved against.
// A verifier that has seen a later checkpoint should also check that
// checkpoint is consistent with the returned one (Client.Update).
func VerifyReceipt(r Receipt, v note.Verifier, kind string, data []byte) (Checkpoint, error) {
	cp, err := VerifyCheckpoint(r.Checkpoint, v)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("receipt: %w", err)
	}
	if err := VerifyInclusion(cp, r.Index, kind, data, r.Proof); err != nil {
		return Checkpoint{}, fmt.Errorf("receipt: %w", err)
	}
	return cp, nil
}
