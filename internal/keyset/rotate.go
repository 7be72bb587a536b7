package keyset

import (
	"fmt"
	"os"
	"path/filepath"
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
