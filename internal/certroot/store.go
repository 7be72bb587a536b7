package certroot

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ztota/ztota/internal/atomicfile"
	"github.com/ztota/ztota/internal/boundedfile"
	"github.com/ztota/ztota/internal/keys"
)

// Names inside a trust directory.
const (
	OfflineDir      = "offline"
	OnlineDir       = "online"
	RootsDir        = "root"
	CurrentRootFile = "root.json"
)

// DefaultExpires is how long a new root is valid when no duration is given.
const DefaultExpires = 365 * 24 * time.Hour

// RootKeyFile names the i-th (1-based) offline root key.
func RootKeyFile(i int) string { return fmt.Sprintf("root-%d.key", i) }

// OnlineKeyFile names an online role's key file.
func OnlineKeyFile(role string) string { return role + ".key" }

// VersionFile names the file of root version v under RootsDir.
func VersionFile(v int64) string { return fmt.Sprintf("%d.root.json", v) }

// Options for Init.
type Options struct {
	// Alg is the algorithm of the root, certify and revoke keys:
	// keys.Ed25519 (the default) or keys.ECDSAP256. The log key is always
	// ed25519, as signed notes require.
	Alg string
	// RootKeys is how many root keys to make (default 1); RootThreshold how
	// many must sign the next root (default 1).
	RootKeys, RootThreshold int
	// Expires is how long root version 1 is valid (default DefaultExpires).
	Expires time.Duration
	// Now is the current time (default time.Now()).
	Now time.Time
	// LogOrigin is the transparency log's origin pinned in the log role
	// (default DefaultLogOrigin).
	LogOrigin string
}

// Init makes a new trust directory in dir (see the package documentation
// for the layout). It refuses a directory that already holds any part of
// one.
func Init(dir string, o Options) error {
	if o.RootKeys == 0 {
		o.RootKeys = 1
	}
	if o.RootThreshold == 0 {
		o.RootThreshold = 1
	}
	if o.RootKeys < 1 || o.RootKeys > MaxKeysPerRole {
		return fmt.Errorf("root keys %d: want 1 to %d", o.RootKeys, MaxKeysPerRole)
	}
	if o.RootThreshold < 1 || o.RootThreshold > o.RootKeys {
		return fmt.Errorf("root threshold %d must be between 1 and the %d root keys", o.RootThreshold, o.RootKeys)
	}
	if o.Expires == 0 {
		o.Expires = DefaultExpires
	}
	if o.Expires < 0 {
		return fmt.Errorf("negative root validity %s", o.Expires)
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.LogOrigin == "" {
		o.LogOrigin = DefaultLogOrigin
	}
	if err := checkOrigin(o.LogOrigin); err != nil {
		return err
	}
	if _, err := keys.Generate(o.Alg); err != nil {
		return err
	}
	for _, name := range []string{CurrentRootFile, RootsDir, OfflineDir, OnlineDir} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return fmt.Errorf("%s already holds %s: refusing to overwrite a trust directory", dir, name)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	off, on, rd := filepath.Join(dir, OfflineDir), filepath.Join(dir, OnlineDir), filepath.Join(dir, RootsDir)
	for _, d := range []string{off, on} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(rd, 0o755); err != nil {
		return err
	}
	gen := func(path, alg string) (*keys.Key, error) {
		k, err := keys.Generate(alg)
		if err != nil {
			return nil, err
		}
		return k, keys.Save(path, k)
	}
	var rootKeys []*keys.Key
	var rootPubs []crypto.PublicKey
	for i := 1; i <= o.RootKeys; i++ {
		k, err := gen(filepath.Join(off, RootKeyFile(i)), o.Alg)
		if err != nil {
			return err
		}
		rootKeys = append(rootKeys, k)
		rootPubs = append(rootPubs, k.Public())
	}
	specs := map[string]RoleSpec{RoleRoot: {Keys: rootPubs, Threshold: o.RootThreshold}}
	for _, role := range OnlineRoles {
		alg := o.Alg
		if role == RoleLog {
			alg = keys.Ed25519
		}
		k, err := gen(filepath.Join(on, OnlineKeyFile(role)), alg)
		if err != nil {
			return err
		}
		specs[role] = RoleSpec{Keys: []crypto.PublicKey{k.Public()}, Threshold: 1}
	}
	specs[RoleLog] = RoleSpec{Keys: specs[RoleLog].Keys, Threshold: 1, Origin: o.LogOrigin}
	data, err := Build(1, specs, o.Now.Add(o.Expires), rootKeys...)
	if err != nil {
		return err
	}
	if _, err := Trust(data); err != nil {
		return fmt.Errorf("new root does not verify: %w", err)
	}
	if err := keys.WriteFileAtomic(filepath.Join(rd, VersionFile(1)), data, 0o644); err != nil {
		return err
	}
	return keys.WriteFileAtomic(filepath.Join(dir, CurrentRootFile), data, 0o644)
}

// RotateOptions says what changes in the next root.
type RotateOptions struct {
	// Alg is the algorithm of new root, certify and revoke keys (default
	// ed25519); a new log key is always ed25519.
	Alg string
	// RootKeys, when > 0, replaces the root keys with this many new ones.
	RootKeys int
	// RootThreshold is the next root's root threshold; 0 keeps the current
	// one.
	RootThreshold int
	// Roles lists online roles (certify, revoke, log) that get a new key,
	// replacing their current keys, with threshold 1.
	Roles []string
	// Expires is how long the next root is valid from Now (default
	// DefaultExpires).
	Expires time.Duration
	// Now is the current time (default time.Now()).
	Now time.Time
	// LogOrigin pins the log origin in a root that has none yet (a root
	// made before origins were pinned); empty means DefaultLogOrigin. A
	// pinned origin is kept: LogOrigin may only repeat it, since a new
	// origin is a new log whose checkpoints verifiers could not relate to
	// the ones they recorded.
	LogOrigin string
}

// LoadCurrent reads and trusts dir's current root (its own threshold is
// checked, not its history: a client follows the history with Update).
func LoadCurrent(dir string) (*Root, error) {
	path := filepath.Join(dir, CurrentRootFile)
	data, err := boundedfile.Read(path, MaxRootSize)
	if errors.Is(err, boundedfile.ErrTooLarge) {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLarge, MaxRootSize)
	}
	if err != nil {
		return nil, err
	}
	return Trust(data)
}

// Rotate makes the next root version in dir: new root keys and/or new keys
// for some online roles, as o says, signed by a threshold of the current
// root keys (read from offline/) and by a threshold of the next root's own
// keys. With nothing to change it re-signs the root with a later expiry.
// It writes root/<N>.root.json and root.json and returns the new root.
//
// New key files are written before the root that names them; replaced ones
// are kept (see the package documentation), never deleted.
func Rotate(dir string, o RotateOptions) ([]byte, error) {
	if o.Expires == 0 {
		o.Expires = DefaultExpires
	}
	if o.Expires < 0 {
		return nil, fmt.Errorf("negative root validity %s", o.Expires)
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.RootKeys < 0 || o.RootKeys > MaxKeysPerRole {
		return nil, fmt.Errorf("root keys %d: want 0 (keep) or 1 to %d", o.RootKeys, MaxKeysPerRole)
	}
	for i, role := range o.Roles {
		if !slices.Contains(OnlineRoles, role) {
			return nil, fmt.Errorf("role %q cannot be re-keyed: choose from %v (root keys change with RootKeys)", role, OnlineRoles)
		}
		if slices.Contains(o.Roles[:i], role) {
			return nil, fmt.Errorf("role %q given twice", role)
		}
	}
	if _, err := keys.Generate(o.Alg); err != nil {
		return nil, err
	}
	cur, err := LoadCurrent(dir)
	if err != nil {
		return nil, err
	}
	v := cur.Version() + 1
	off, on := filepath.Join(dir, OfflineDir), filepath.Join(dir, OnlineDir)
	vfile := filepath.Join(dir, RootsDir, VersionFile(v))
	if _, err := os.Lstat(vfile); err == nil {
		return nil, fmt.Errorf("%s already exists: refusing to overwrite root version %d", vfile, v)
	}

	// The current root keys held here.
	rootIDs := cur.KeyIDs(RoleRoot)
	var held []*keys.Key
	var heldFiles []string
	for i := 1; i <= MaxKeysPerRole; i++ {
		p := filepath.Join(off, RootKeyFile(i))
		k, err := keys.Load(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		heldFiles = append(heldFiles, p)
		if id, err := k.ID(); err == nil && slices.Contains(rootIDs, id) {
			held = append(held, k)
		}
	}
	if len(held) < cur.Threshold(RoleRoot) {
		return nil, fmt.Errorf("only %d of root version %d's keys are in %s; signing its successor needs %d", len(held), cur.Version(), off, cur.Threshold(RoleRoot))
	}

	specs := map[string]RoleSpec{}
	for _, role := range Roles {
		specs[role] = cur.spec(role)
	}
	signers := held
	var newRoot []*keys.Key
	if o.RootKeys > 0 {
		var pubs []crypto.PublicKey
		for i := 0; i < o.RootKeys; i++ {
			k, err := keys.Generate(o.Alg)
			if err != nil {
				return nil, err
			}
			newRoot = append(newRoot, k)
			pubs = append(pubs, k.Public())
		}
		specs[RoleRoot] = RoleSpec{Keys: pubs, Threshold: specs[RoleRoot].Threshold}
		signers = append(slices.Clone(held), newRoot...)
	}
	if o.RootThreshold != 0 {
		specs[RoleRoot] = RoleSpec{Keys: specs[RoleRoot].Keys, Threshold: o.RootThreshold}
	}
	if t, n := specs[RoleRoot].Threshold, len(specs[RoleRoot].Keys); t < 1 || t > n {
		return nil, fmt.Errorf("root threshold %d must be between 1 and the %d root keys: set RootThreshold", t, n)
	}
	newOnline := map[string]*keys.Key{}
	for _, role := range o.Roles {
		alg := o.Alg
		if role == RoleLog {
			alg = keys.Ed25519
		}
		k, err := keys.Generate(alg)
		if err != nil {
			return nil, err
		}
		newOnline[role] = k
		specs[role] = RoleSpec{Keys: []crypto.PublicKey{k.Public()}, Threshold: 1, Origin: specs[role].Origin}
	}
	// Migration: a root made before log origins were pinned gets one now.
	log := specs[RoleLog]
	switch {
	case log.Origin == "" && o.LogOrigin == "":
		log.Origin = DefaultLogOrigin
	case log.Origin == "":
		if err := checkOrigin(o.LogOrigin); err != nil {
			return nil, err
		}
		log.Origin = o.LogOrigin
	case o.LogOrigin != "" && o.LogOrigin != log.Origin:
		return nil, fmt.Errorf("root version %d pins the log origin %q; it cannot change to %q", cur.Version(), log.Origin, o.LogOrigin)
	}
	specs[RoleLog] = log

	data, err := Build(v, specs, o.Now.Add(o.Expires), signers...)
	if err != nil {
		return nil, err
	}
	if _, err := cur.Update(data, o.Now); err != nil {
		return nil, fmt.Errorf("the new root does not verify against version %d: %w", cur.Version(), err)
	}

	// Persist: new keys first (staged), then the versioned root, then swap
	// the key files, then the current root.
	stage := filepath.Join(off, fmt.Sprintf(".next-%d", v))
	if len(newRoot) > 0 {
		if err := os.Mkdir(stage, 0o700); err != nil {
			return nil, fmt.Errorf("staging new root keys: %w (remove %s if a rotation was interrupted)", err, stage)
		}
		for i, k := range newRoot {
			if err := keys.Save(filepath.Join(stage, RootKeyFile(i+1)), k); err != nil {
				return nil, err
			}
		}
	}
	staged := func(role string) string {
		return filepath.Join(on, fmt.Sprintf("%s.next-%d", OnlineKeyFile(role), v))
	}
	for _, role := range o.Roles {
		if err := keys.Save(staged(role), newOnline[role]); err != nil {
			return nil, err
		}
	}
	if err := keys.WriteFileAtomic(vfile, data, 0o644); err != nil {
		return nil, err
	}
	if len(newRoot) > 0 {
		retired := filepath.Join(off, fmt.Sprintf("retired-%d", cur.Version()))
		if err := os.MkdirAll(retired, 0o700); err != nil {
			return nil, err
		}
		for _, p := range heldFiles {
			if err := atomicfile.Rename(p, filepath.Join(retired, filepath.Base(p))); err != nil {
				return nil, err
			}
		}
		for i := range newRoot {
			if err := atomicfile.Rename(filepath.Join(stage, RootKeyFile(i+1)), filepath.Join(off, RootKeyFile(i+1))); err != nil {
				return nil, err
			}
		}
		if err := os.Remove(stage); err != nil {
			return nil, err
		}
	}
	for _, role := range o.Roles {
		kf := filepath.Join(on, OnlineKeyFile(role))
		if _, err := os.Lstat(kf); err == nil {
			if err := atomicfile.Rename(kf, fmt.Sprintf("%s.retired-%d", kf, cur.Version())); err != nil {
				return nil, err
			}
		}
		if err := atomicfile.Rename(staged(role), kf); err != nil {
			return nil, err
		}
	}
	if err := keys.WriteFileAtomic(filepath.Join(dir, CurrentRootFile), data, 0o644); err != nil {
		return nil, err
	}
	return data, nil
}

// Online is the keys the running certification service holds.
type Online struct {
	Certify, Revoke, Log *keys.Key
}

// LoadOnline reads the online keys from dir: a trust directory made by
// Init, or a copy of its online/ folder.
func LoadOnline(dir string) (Online, error) {
	if fi, err := os.Stat(filepath.Join(dir, OnlineDir)); err == nil && fi.IsDir() {
		dir = filepath.Join(dir, OnlineDir)
	}
	var o Online
	for _, x := range []struct {
		role string
		dst  **keys.Key
	}{{RoleCertify, &o.Certify}, {RoleRevoke, &o.Revoke}, {RoleLog, &o.Log}} {
		k, err := keys.Load(filepath.Join(dir, OnlineKeyFile(x.role)))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return Online{}, fmt.Errorf("online key %s missing in %s: pass a trust directory made by Init or its %s/ folder", OnlineKeyFile(x.role), dir, OnlineDir)
			}
			return Online{}, err
		}
		*x.dst = k
	}
	if _, ok := o.Log.Private.(ed25519.PrivateKey); !ok {
		return Online{}, fmt.Errorf("%s: the log key must be ed25519, not %s", filepath.Join(dir, OnlineKeyFile(RoleLog)), o.Log.Alg)
	}
	return o, nil
}

// CheckOnline reports whether each online key belongs to its role in r,
// so a service does not start signing with keys its root does not name.
func (r *Root) CheckOnline(o Online) error {
	for _, x := range []struct {
		role string
		k    *keys.Key
	}{{RoleCertify, o.Certify}, {RoleRevoke, o.Revoke}, {RoleLog, o.Log}} {
		if x.k == nil {
			return fmt.Errorf("no %s key", x.role)
		}
		id, err := x.k.ID()
		if err != nil {
			return err
		}
		if !slices.Contains(r.KeyIDs(x.role), id) {
			return fmt.Errorf("the %s key %s is not a %s key of root version %d", x.role, id, x.role, r.Version())
		}
	}
	return nil
}
