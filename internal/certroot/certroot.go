package certroot

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/tufrepo"
)

// Role names.
const (
	RoleRoot    = "root"
	RoleCertify = "certify"
	RoleRevoke  = "revoke"
	RoleLog     = "log"
)

// Roles lists every role of a certification root, in a stable order.
var Roles = []string{RoleRoot, RoleCertify, RoleRevoke, RoleLog}

// OnlineRoles lists the roles whose keys the running service holds.
var OnlineRoles = []string{RoleCertify, RoleRevoke, RoleLog}

// PurposeField is the extra field of a certification root's signed part
// that tells it apart from an OTA repository root; its value is Purpose.
const (
	PurposeField = "ztota_purpose"
	Purpose      = "certification"
)

// Bounds on what Parse accepts.
const (
	// MaxRootSize bounds a root document in bytes.
	MaxRootSize = 1 << 20
	// MaxKeysPerRole bounds the keys one role may list.
	MaxKeysPerRole = 16
	// MaxSignatures bounds the signatures on a root document.
	MaxSignatures = 64
	// MaxChainLength bounds the roots UpdateChain walks in one call.
	MaxChainLength = 1024
)

// Errors. Every error this package returns about a root document wraps one
// of them.
var (
	ErrTooLarge  = errors.New("certification root too large")
	ErrMalformed = errors.New("malformed certification root")
	ErrSignature = errors.New("certification root not signed by a threshold of root keys")
	ErrVersion   = errors.New("certification root version does not increase by exactly one")
	ErrExpired   = errors.New("certification root expired")
)

// Root is a parsed certification root. It is immutable.
type Root struct {
	md  *metadata.Metadata[metadata.RootType]
	raw []byte
	pub map[string]crypto.PublicKey // key id -> public key, every key of every role
}

// RoleSpec is the public keys and threshold of one role, for Build.
type RoleSpec struct {
	Keys      []crypto.PublicKey
	Threshold int
	// Origin is the transparency log's origin (the first line of its
	// checkpoints) that the log role's key speaks for; log role only.
	// Empty builds a root without a pinned origin, as made before origins
	// were pinned (tests of the migration only).
	Origin string
}

// LogOriginField is the extra field of the log role naming the log origin
// the role's key speaks for.
const LogOriginField = "origin"

// DefaultLogOrigin is the origin Init pins unless told otherwise, and the
// certification service's default log name.
const DefaultLogOrigin = "ztota-certd/log"

// MaxOriginLength bounds a log origin.
const MaxOriginLength = 255

// ErrNoLogOrigin is returned for a root that pins no log origin: it was
// made before origins were pinned, and log receipts cannot be checked
// under it until the next root version pins one (Rotate adds it).
var ErrNoLogOrigin = errors.New("certification root pins no transparency-log origin")

// Parse decodes a certification root and checks that it is self-consistent
// (see the package documentation). It does not check any signature: use
// Trust for a root pinned out of band, and Update for every later one.
func Parse(data []byte) (*Root, error) {
	if len(data) > MaxRootSize {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(data), MaxRootSize)
	}
	md, err := tufrepo.Parse[metadata.RootType](data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	r := &Root{md: md, raw: bytes.Clone(data), pub: map[string]crypto.PublicKey{}}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return r, nil
}

func (r *Root) check() error {
	s := &r.md.Signed
	if len(r.md.UnrecognizedFields) != 0 {
		return errors.New("unknown fields beside signed and signatures")
	}
	if s.Type != metadata.ROOT {
		return fmt.Errorf("_type %q, want %q", s.Type, metadata.ROOT)
	}
	if len(s.UnrecognizedFields) != 1 || s.UnrecognizedFields[PurposeField] != Purpose {
		return fmt.Errorf("not a certification root: the signed part must carry %q: %q and no other extra field", PurposeField, Purpose)
	}
	if s.Version < 1 {
		return fmt.Errorf("version %d < 1", s.Version)
	}
	if s.Expires.IsZero() {
		return errors.New("no expiry")
	}
	if len(r.md.Signatures) > MaxSignatures {
		return fmt.Errorf("%d signatures > %d", len(r.md.Signatures), MaxSignatures)
	}
	for _, sig := range r.md.Signatures {
		if len(sig.UnrecognizedFields) != 0 {
			return errors.New("unknown fields in a signature")
		}
	}
	if len(s.Roles) != len(Roles) {
		return fmt.Errorf("%d roles, want exactly %v", len(s.Roles), Roles)
	}
	owner := map[string]string{} // key id -> role
	for _, name := range Roles {
		role, ok := s.Roles[name]
		if !ok || role == nil {
			return fmt.Errorf("role %q missing", name)
		}
		if extra := len(role.UnrecognizedFields); extra != 0 {
			origin, isString := role.UnrecognizedFields[LogOriginField].(string)
			if name != RoleLog || extra != 1 || !isString {
				return fmt.Errorf("role %q: unknown fields", name)
			}
			if err := checkOrigin(origin); err != nil {
				return fmt.Errorf("role %q: %v", name, err)
			}
		}
		n := len(role.KeyIDs)
		if n == 0 || n > MaxKeysPerRole {
			return fmt.Errorf("role %q has %d keys, want 1 to %d", name, n, MaxKeysPerRole)
		}
		if role.Threshold < 1 || role.Threshold > n {
			return fmt.Errorf("role %q: threshold %d must be between 1 and its %d keys", name, role.Threshold, n)
		}
		for _, id := range role.KeyIDs {
			if other, dup := owner[id]; dup {
				return fmt.Errorf("key %s listed twice (roles %q and %q): every key serves one role once", id, other, name)
			}
			owner[id] = name
			pub, err := canonicalKey(id, s.Keys[id])
			if err != nil {
				return fmt.Errorf("role %q: key %s: %v", name, id, err)
			}
			r.pub[id] = pub
		}
	}
	if len(s.Keys) != len(owner) {
		return fmt.Errorf("%d keys listed but %d used by roles", len(s.Keys), len(owner))
	}
	logRole := s.Roles[RoleLog]
	if len(logRole.KeyIDs) != 1 {
		return fmt.Errorf("role %q must have exactly one key", RoleLog)
	}
	if _, ok := r.pub[logRole.KeyIDs[0]].(ed25519.PublicKey); !ok {
		return fmt.Errorf("role %q must use an ed25519 key", RoleLog)
	}
	return nil
}

// checkOrigin checks a log origin: a signed-note name (non-empty, printable,
// no spaces or '+') of at most MaxOriginLength bytes.
func checkOrigin(origin string) error {
	if origin == "" || len(origin) > MaxOriginLength {
		return fmt.Errorf("log origin must be 1 to %d bytes", MaxOriginLength)
	}
	for _, r := range origin {
		if r <= ' ' || r == '+' || r > '~' {
			return fmt.Errorf("log origin %q: only printable ASCII without spaces or '+'", origin)
		}
	}
	return nil
}

// LogOrigin returns the transparency-log origin the root pins for its log
// key, or ErrNoLogOrigin for a root made before origins were pinned.
func (r *Root) LogOrigin() (string, error) {
	origin, _ := r.md.Signed.Roles[RoleLog].UnrecognizedFields[LogOriginField].(string)
	if origin == "" {
		return "", fmt.Errorf("%w (root version %d): rotate the root to pin it", ErrNoLogOrigin, r.Version())
	}
	return origin, nil
}

// canonicalKey checks that k is an ed25519 or ECDSA P-256 key in the exact
// form go-tuf writes, and that id is its TUF key id.
func canonicalKey(id string, k *metadata.Key) (crypto.PublicKey, error) {
	if k == nil {
		return nil, errors.New("not in keys")
	}
	if len(k.UnrecognizedFields) != 0 || len(k.Value.UnrecognizedFields) != 0 {
		return nil, errors.New("unknown fields")
	}
	switch {
	case k.Type == metadata.KeyTypeEd25519 && k.Scheme == metadata.KeySchemeEd25519:
	case k.Type == metadata.KeyTypeECDSA_SHA2_P256 && k.Scheme == metadata.KeySchemeECDSA_SHA2_P256:
	default:
		return nil, fmt.Errorf("key type %q scheme %q: want ed25519 or ecdsa/ecdsa-sha2-nistp256", k.Type, k.Scheme)
	}
	pub, err := k.ToPublicKey()
	if err != nil {
		return nil, err
	}
	if err := keys.CheckPublic(pub); err != nil {
		return nil, err
	}
	canon, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, err
	}
	want, err := canon.ID()
	if err != nil {
		return nil, err
	}
	if want != id {
		return nil, fmt.Errorf("key id is not the key's TUF id %s", want)
	}
	return pub, nil
}

// Trust parses a root obtained out of band (pinned in a device image or a
// configuration file) and checks that a threshold of its own root keys
// signed it. It does not check expiry: the pinned root may be old, and is
// brought up to date with UpdateChain or Update.
func Trust(data []byte) (*Root, error) {
	r, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if err := tufrepo.Verify(r.md, RoleRoot, r.md); err != nil {
		return nil, fmt.Errorf("%w: version %d: %v", ErrSignature, r.Version(), err)
	}
	return r, nil
}

// step checks next against r as TUF does, without expiry.
func (r *Root) step(next []byte) (*Root, error) {
	n, err := Parse(next)
	if err != nil {
		return nil, fmt.Errorf("root after version %d: %w", r.Version(), err)
	}
	if n.Version() != r.Version()+1 {
		return nil, fmt.Errorf("%w: version %d offered after %d", ErrVersion, n.Version(), r.Version())
	}
	if err := tufrepo.VerifyRootUpdate(r.md, n.md); err != nil {
		return nil, fmt.Errorf("%w: version %d: %v", ErrSignature, n.Version(), err)
	}
	return n, nil
}

// Update checks next as the successor of r: version exactly one more,
// signed by a threshold of r's root keys and by a threshold of next's own
// root keys, and not expired at now. It returns the new trusted root.
//
// To catch up over several versions, some of which may have expired since,
// use UpdateChain: TUF checks expiry only on the last root of a chain.
func (r *Root) Update(next []byte, now time.Time) (*Root, error) {
	n, err := r.step(next)
	if err != nil {
		return nil, err
	}
	if n.Expired(now) {
		return nil, fmt.Errorf("%w: version %d expired at %s", ErrExpired, n.Version(), n.Expires().Format(time.RFC3339))
	}
	return n, nil
}

// UpdateChain applies the roots in next (versions r+1, r+2, ... in order)
// one step at a time, each checked as Update does but with expiry checked
// only on the last one. An empty chain checks r's own expiry.
func (r *Root) UpdateChain(next [][]byte, now time.Time) (*Root, error) {
	if len(next) > MaxChainLength {
		return nil, fmt.Errorf("%w: chain of %d roots > %d", ErrTooLarge, len(next), MaxChainLength)
	}
	cur := r
	for _, b := range next {
		n, err := cur.step(b)
		if err != nil {
			return nil, err
		}
		cur = n
	}
	if cur.Expired(now) {
		return nil, fmt.Errorf("%w: version %d expired at %s", ErrExpired, cur.Version(), cur.Expires().Format(time.RFC3339))
	}
	return cur, nil
}

// Version returns the root's version.
func (r *Root) Version() int64 { return r.md.Signed.Version }

// Expires returns the root's expiry time.
func (r *Root) Expires() time.Time { return r.md.Signed.Expires }

// Expired reports whether the root has expired at now.
func (r *Root) Expired(now time.Time) bool { return now.After(r.md.Signed.Expires) }

// Bytes returns the signed document as it was parsed.
func (r *Root) Bytes() []byte { return bytes.Clone(r.raw) }

// KeyIDs returns the TUF key ids of role, sorted; nil for an unknown role.
func (r *Root) KeyIDs(role string) []string {
	ro, ok := r.md.Signed.Roles[role]
	if !ok {
		return nil
	}
	ids := slices.Clone(ro.KeyIDs)
	sort.Strings(ids)
	return ids
}

// Threshold returns how many of role's keys must sign; 0 for an unknown role.
func (r *Root) Threshold(role string) int {
	if ro, ok := r.md.Signed.Roles[role]; ok {
		return ro.Threshold
	}
	return 0
}

// PublicKeys returns role's public keys by key id (ed25519.PublicKey or
// *ecdsa.PublicKey on P-256); nil for an unknown role.
func (r *Root) PublicKeys(role string) map[string]crypto.PublicKey {
	ro, ok := r.md.Signed.Roles[role]
	if !ok {
		return nil
	}
	m := make(map[string]crypto.PublicKey, len(ro.KeyIDs))
	for _, id := range ro.KeyIDs {
		m[id] = r.pub[id]
	}
	return m
}

func (r *Root) spec(role string) RoleSpec {
	var s RoleSpec
	for _, id := range r.KeyIDs(role) {
		s.Keys = append(s.Keys, r.pub[id])
	}
	s.Threshold = r.Threshold(role)
	if role == RoleLog {
		s.Origin, _ = r.LogOrigin()
	}
	return s
}

// Build makes a certification root of the given version with exactly the
// roles of Roles and signs it with signers (which need not be root keys:
// verification is the reader's job). The result is checked with Parse.
// Init and Rotate use it; it is exported for tools and tests that need a
// root shaped differently (several certify keys, a higher threshold).
func Build(version int64, roles map[string]RoleSpec, expires time.Time, signers ...*keys.Key) ([]byte, error) {
	for name := range roles {
		if !slices.Contains(Roles, name) {
			return nil, fmt.Errorf("unknown role %q: a certification root has exactly the roles %v", name, Roles)
		}
	}
	md := metadata.Root(expires.UTC().Truncate(time.Second))
	md.Signed.Version = version
	md.Signed.ConsistentSnapshot = false
	md.Signed.UnrecognizedFields = map[string]any{PurposeField: Purpose}
	md.Signed.Roles = map[string]*metadata.Role{}
	for _, name := range Roles {
		spec, ok := roles[name]
		if !ok || len(spec.Keys) == 0 {
			return nil, fmt.Errorf("role %s has no keys", name)
		}
		type idKey struct {
			id string
			k  *metadata.Key
		}
		var ks []idKey
		for _, pub := range spec.Keys {
			tk, err := metadata.KeyFromPublicKey(pub)
			if err != nil {
				return nil, fmt.Errorf("role %s: %w", name, err)
			}
			id, err := tk.ID()
			if err != nil {
				return nil, err
			}
			ks = append(ks, idKey{id, tk})
		}
		sort.Slice(ks, func(i, j int) bool { return ks[i].id < ks[j].id })
		md.Signed.Roles[name] = &metadata.Role{KeyIDs: []string{}, Threshold: spec.Threshold}
		if spec.Origin != "" {
			if name != RoleLog {
				return nil, fmt.Errorf("role %s: only the log role names an origin", name)
			}
			md.Signed.Roles[name].UnrecognizedFields = map[string]any{LogOriginField: spec.Origin}
		}
		for _, k := range ks {
			if err := md.Signed.AddKey(k.k, name); err != nil {
				return nil, err
			}
		}
	}
	data, err := tufrepo.Sign(md, signers...)
	if err != nil {
		return nil, err
	}
	if _, err := Parse(data); err != nil {
		return nil, err
	}
	return data, nil
}
