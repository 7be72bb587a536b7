package keyset

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/tufrepo"
)

// CurrentRootFile is where a keys directory keeps the newest root of repo
// after a rotation ("image" or "director").
func CurrentRootFile(dir, repo string) string {
	return filepath.Join(dir, OfflineDir, repo+"-root-current.json")
}

// CurrentRoot returns the newest root of repo a keys directory knows: the
// one the last rotation made, or the initial one.
func CurrentRoot(dir, repo string) ([]byte, error) { return currentRoot(dir, repo) }

func currentRoot(dir, repo string) ([]byte, error) {
	b, err := os.ReadFile(CurrentRootFile(dir, repo))
	if os.IsNotExist(err) {
		return os.ReadFile(filepath.Join(dir, OnlineDir, repo+"-root.json"))
	}
	return b, err
}

// RotateOptions says what the next root looks like.
type RotateOptions struct {
	Repo      string // "image" or "director"
	NewKeys   int    // number of new root keys (replacing the old ones)
	Threshold int
	Alg       string
	Expiry    time.Duration
	Now       time.Time
}

// Rotate replaces the root keys of a repository, as TUF specifies: the new
// root (version+1) is signed by a threshold of the old root keys and by a
// threshold of the new ones. The old key files are kept under
// offline/retired-<version>/. It returns the signed new root.
func Rotate(dir string, o RotateOptions) ([]byte, error) {
	if o.Repo != "image" && o.Repo != "director" {
		return nil, fmt.Errorf("repository must be image or director, not %q", o.Repo)
	}
	if o.NewKeys <= 0 {
		o.NewKeys = 1
	}
	if o.Threshold <= 0 {
		o.Threshold = 1
	}
	if o.Threshold > o.NewKeys {
		return nil, fmt.Errorf("threshold %d is more than the %d new root keys", o.Threshold, o.NewKeys)
	}
	if o.Expiry == 0 {
		o.Expiry = 365 * 24 * time.Hour
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	cur, err := currentRoot(dir, o.Repo)
	if err != nil {
		return nil, err
	}
	old, err := tufrepo.Parse[metadata.RootType](cur)
	if err != nil {
		return nil, err
	}
	off := filepath.Join(dir, OfflineDir)
	var oldKeys []*keys.Key
	for i := 1; ; i++ {
		k, err := keys.Load(filepath.Join(off, RootKeyFile(o.Repo, i)))
		if os.IsNotExist(err) {
			break
		}
		if err != nil {
			return nil, err
		}
		oldKeys = append(oldKeys, k)
	}
	if len(oldKeys) < old.Signed.Roles[tufrepo.Root].Threshold {
		return nil, fmt.Errorf("only %d old root keys in %s; the current root needs %d to sign a rotation", len(oldKeys), off, old.Signed.Roles[tufrepo.Root].Threshold)
	}
	var newKeys []*keys.Key
	for i := 0; i < o.NewKeys; i++ {
		k, err := keys.Generate(o.Alg)
		if err != nil {
			return nil, err
		}
		newKeys = append(newKeys, k)
	}
	next := metadata.Root(o.Now.Add(o.Expiry).UTC().Truncate(time.Second))
	next.Signed.Version = old.Signed.Version + 1
	next.Signed.ConsistentSnapshot = old.Signed.ConsistentSnapshot
	for _, role := range tufrepo.Roles {
		if role == tufrepo.Root {
			continue
		}
		r := old.Signed.Roles[role]
		for _, id := range r.KeyIDs {
			if err := next.Signed.AddKey(old.Signed.Keys[id], role); err != nil {
				return nil, err
			}
		}
		next.Signed.Roles[role].Threshold = r.Threshold
	}
	for _, k := range newKeys {
		tk, err := k.TUF()
		if err != nil {
			return nil, err
		}
		if err := next.Signed.AddKey(tk, tufrepo.Root); err != nil {
			return nil, err
		}
	}
	next.Signed.Roles[tufrepo.Root].Threshold = o.Threshold
	data, err := tufrepo.Sign(next, append(append([]*keys.Key{}, oldKeys...), newKeys...)...)
	if err != nil {
		return nil, err
	}
	if err := tufrepo.VerifyRootUpdate(old, next); err != nil {
		return nil, err
	}
	retired := filepath.Join(off, fmt.Sprintf("retired-%s-%d", o.Repo, old.Signed.Version))
	if err := os.MkdirAll(retired, 0o700); err != nil {
		return nil, err
	}
	for i := range oldKeys {
		name := RootKeyFile(o.Repo, i+1)
		if err := os.Rename(filepath.Join(off, name), filepath.Join(retired, name)); err != nil {
			return nil, err
		}
	}
	for i, k := range newKeys {
		if err := keys.Save(filepath.Join(off, RootKeyFile(o.Repo, i+1)), k); err != nil {
			return nil, err
		}
	}
	if err := keys.WriteFileAtomic(CurrentRootFile(dir, o.Repo), data, 0o644); err != nil {
		return nil, err
	}
	return data, nil
}

// RoleKeyFile is the key file of a non-root role of repo, relative to a
// keys directory: the image targets key is offline, every other one online.
func RoleKeyFile(repo, role string) string {
	if repo == "image" && role == tufrepo.Targets {
		return filepath.Join(OfflineDir, ImageTargetsKey)
	}
	return filepath.Join(OnlineDir, repo+"-"+role+".key")
}

// RotateRole replaces the key of one non-root role (targets, snapshot or
// timestamp) of a repository: a new key is made, the new root (version+1)
// lists it instead of the old one and is signed by a threshold of the
// current root keys. The old key file is kept as <file>.retired-<version>.
// This is how a compromised online key is recovered from, including a
// fast-forward attack: clients drop metadata the new key did not sign.
//
// The image targets key is offline (the integrator's): its new key file
// replaces offline/image-targets.key and the old one is kept as
// offline/image-targets.key.retired-<version>, which release.Resign uses to
// co-sign the re-signed targets so that the server accepts them under the
// old root before the new root is published.
func RotateRole(dir, repo, role, alg string, now time.Time) ([]byte, error) {
	return rotateRole(dir, repo, role, alg, now, false)
}

// AddImageTargetsKey is the first step of replacing an image targets key
// that is lost (not leaked): the new root lists a new key beside the old
// one, so that the current targets, which only the lost key signed, still
// verify and the server accepts the root; targets re-signed by the new
// key alone then verify too. DropOldImageTargetsKeys is the second step.
// The new key replaces offline/image-targets.key (an old file, if any, is
// kept as …retired-<version>).
func AddImageTargetsKey(dir, alg string, now time.Time) ([]byte, error) {
	return rotateRole(dir, "image", tufrepo.Targets, alg, now, true)
}

// DropOldImageTargetsKeys makes the next image root, whose targets role
// lists only the key in offline/image-targets.key: the second step after
// AddImageTargetsKey, once the targets are re-signed with that key.
func DropOldImageTargetsKeys(dir string, now time.Time) ([]byte, error) {
	k, err := keys.Load(filepath.Join(dir, RoleKeyFile("image", tufrepo.Targets)))
	if err != nil {
		return nil, err
	}
	id, err := k.ID()
	if err != nil {
		return nil, err
	}
	data, _, err := nextRoot(dir, "image", now, func(next *metadata.Metadata[metadata.RootType]) error {
		ids := next.Signed.Roles[tufrepo.Targets].KeyIDs
		if !slices.Contains(ids, id) {
			return fmt.Errorf("the current image root does not list the targets key %s of %s", id[:12], dir)
		}
		for _, old := range append([]string{}, ids...) {
			if old == id {
				continue
			}
			if err := next.Signed.RevokeKey(old, tufrepo.Targets); err != nil {
				return err
			}
		}
		next.Signed.Roles[tufrepo.Targets].Threshold = 1
		return nil
	})
	if err != nil {
		return nil, err
	}
	return data, keys.WriteFileAtomic(CurrentRootFile(dir, "image"), data, 0o644)
}

// nextRoot makes the next version of repo's current root, changed by
// mutate and signed by the current root keys; it writes nothing.
func nextRoot(dir, repo string, now time.Time, mutate func(*metadata.Metadata[metadata.RootType]) error) ([]byte, int64, error) {
	if now.IsZero() {
		now = time.Now()
	}
	cur, err := currentRoot(dir, repo)
	if err != nil {
		return nil, 0, err
	}
	old, err := tufrepo.Parse[metadata.RootType](cur)
	if err != nil {
		return nil, 0, err
	}
	off := filepath.Join(dir, OfflineDir)
	var rootKeys []*keys.Key
	for i := 1; ; i++ {
		k, err := keys.Load(filepath.Join(off, RootKeyFile(repo, i)))
		if os.IsNotExist(err) {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		rootKeys = append(rootKeys, k)
	}
	if len(rootKeys) < old.Signed.Roles[tufrepo.Root].Threshold {
		return nil, 0, fmt.Errorf("only %d root keys in %s; the current root needs %d", len(rootKeys), off, old.Signed.Roles[tufrepo.Root].Threshold)
	}
	next, err := tufrepo.Parse[metadata.RootType](cur)
	if err != nil {
		return nil, 0, err
	}
	next.Signed.Version = old.Signed.Version + 1
	if exp := now.Add(365 * 24 * time.Hour).UTC().Truncate(time.Second); exp.After(next.Signed.Expires) {
		next.Signed.Expires = exp
	}
	if err := mutate(next); err != nil {
		return nil, 0, err
	}
	data, err := tufrepo.Sign(next, rootKeys...)
	if err != nil {
		return nil, 0, err
	}
	if err := tufrepo.VerifyRootUpdate(old, next); err != nil {
		return nil, 0, err
	}
	return data, old.Signed.Version, nil
}

func rotateRole(dir, repo, role, alg string, now time.Time, keepOld bool) ([]byte, error) {
	if repo != "image" && repo != "director" {
		return nil, fmt.Errorf("repository must be image or director, not %q", repo)
	}
	if role != tufrepo.Targets && role != tufrepo.Snapshot && role != tufrepo.Timestamp {
		return nil, fmt.Errorf("role must be targets, snapshot or timestamp, not %q (root keys rotate with the root role)", role)
	}
	nk, err := keys.Generate(alg)
	if err != nil {
		return nil, err
	}
	tk, err := nk.TUF()
	if err != nil {
		return nil, err
	}
	data, oldVersion, err := nextRoot(dir, repo, now, func(next *metadata.Metadata[metadata.RootType]) error {
		if !keepOld {
			for _, id := range append([]string{}, next.Signed.Roles[role].KeyIDs...) {
				if err := next.Signed.RevokeKey(id, role); err != nil {
					return err
				}
			}
		}
		if err := next.Signed.AddKey(tk, role); err != nil {
			return err
		}
		next.Signed.Roles[role].Threshold = 1
		return nil
	})
	if err != nil {
		return nil, err
	}
	kf := filepath.Join(dir, RoleKeyFile(repo, role))
	if _, err := os.Stat(kf); err == nil {
		if err := os.Rename(kf, fmt.Sprintf("%s.retired-%d", kf, oldVersion)); err != nil {
			return nil, err
		}
	}
	if err := keys.Save(kf, nk); err != nil {
		return nil, err
	}
	if err := keys.WriteFileAtomic(CurrentRootFile(dir, repo), data, 0o644); err != nil {
		return nil, err
	}
	return data, nil
}

// RetiredTargetsKeys returns the image targets keys a keys directory
// retired by rotations, newest first.
func RetiredTargetsKeys(dir string) ([]*keys.Key, error) {
	base := filepath.Join(dir, RoleKeyFile("image", tufrepo.Targets))
	matches, err := filepath.Glob(base + ".retired-*")
	if err != nil {
		return nil, err
	}
	type retired struct {
		v int64
		k *keys.Key
	}
	var rs []retired
	for _, m := range matches {
		v, err := strconv.ParseInt(strings.TrimPrefix(m, base+".retired-"), 10, 64)
		if err != nil {
			continue
		}
		k, err := keys.Load(m)
		if err != nil {
			return nil, err
		}
		rs = append(rs, retired{v, k})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].v > rs[j].v })
	out := make([]*keys.Key, len(rs))
	for i, r := range rs {
		out[i] = r.k
	}
	return out, nil
}
