// Package keyset lays out the keys of a ztota deployment on disk and makes
// them: the image repository's root and targets keys (offline, kept by the
// integrator), the director's root key (offline, kept by the operator), and
// the online keys the server holds.
//
// Layout of a keys directory made by Init:
//
//	offline/image-root-<i>.key      image root keys (threshold RootThreshold)
//	offline/image-targets.key       image targets key (signs releases)
//	offline/image-targets-signed.json  the last image targets it signed
//	offline/director-root-<i>.key   director root keys
//	online/image-snapshot.key  online/image-timestamp.key
//	online/director-targets.key online/director-snapshot.key online/director-timestamp.key
//	online/image-root.json          image root, version 1 (also what devices pin)
//	online/image-targets.json       empty image targets, version 1, signed offline
//	online/director-root.json       director root, version 1 (also what devices pin)
//	offline/tls-ca.key, online/tls/{ca.pem,server.pem,server.key}   TLS (see TLSFiles)
//
// The server needs only online/; devices need only the two root files.
package keyset

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/tufrepo"
)

// File names inside a keys directory.
const (
	OfflineDir        = "offline"
	OnlineDir         = "online"
	ImageRootFile     = "image-root.json"
	ImageTargetsFile  = "image-targets.json"
	DirectorRootFile  = "director-root.json"
	ImageTargetsKey   = "image-targets.key"
	ImageSnapshotKey  = "image-snapshot.key"
	ImageTimestampKey = "image-timestamp.key"
	DirTargetsKey     = "director-targets.key"
	DirSnapshotKey    = "director-snapshot.key"
	DirTimestampKey   = "director-timestamp.key"
	// ImageTargetsRecord (relative to the keys directory) is the last
	// image targets document this keys directory signed: the initial one,
	// then every release and re-sign (see internal/release).
	ImageTargetsRecord = OfflineDir + "/image-targets-signed.json"
)

// Options for Init.
type Options struct {
	Alg           string // keys.Ed25519 (default) or keys.ECDSAP256
	RootKeys      int    // number of root keys per repository (default 1)
	RootThreshold int    // default 1
	RootExpiry    time.Duration
	TargetsExpiry time.Duration
	Now           time.Time
	// TLSHosts are names and addresses the server certificate is for,
	// besides localhost, 127.0.0.1 and ::1.
	TLSHosts []string
}

// RootKeyFile names the i-th root key (1-based) of repo ("image" or "director").
func RootKeyFile(repo string, i int) string { return fmt.Sprintf("%s-root-%d.key", repo, i) }

// Init makes a new key set in dir, which must not hold one already.
func Init(dir string, o Options) error {
	if o.RootKeys == 0 {
		o.RootKeys = 1
	}
	if o.RootThreshold == 0 {
		o.RootThreshold = 1
	}
	if o.RootThreshold > o.RootKeys {
		return fmt.Errorf("root threshold %d is more than the %d root keys", o.RootThreshold, o.RootKeys)
	}
	if o.RootExpiry == 0 {
		o.RootExpiry = 365 * 24 * time.Hour
	}
	if o.TargetsExpiry == 0 {
		o.TargetsExpiry = 90 * 24 * time.Hour
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if _, err := os.Stat(filepath.Join(dir, OnlineDir, ImageRootFile)); err == nil {
		return fmt.Errorf("%s already holds a key set: choose an empty directory", dir)
	}
	off, on := filepath.Join(dir, OfflineDir), filepath.Join(dir, OnlineDir)
	for _, d := range []string{off, on} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	gen := func(path string) (*keys.Key, error) {
		k, err := keys.Generate(o.Alg)
		if err != nil {
			return nil, err
		}
		return k, keys.Save(path, k)
	}
	genN := func(repo string) ([]*keys.Key, error) {
		var ks []*keys.Key
		for i := 1; i <= o.RootKeys; i++ {
			k, err := gen(filepath.Join(off, RootKeyFile(repo, i)))
			if err != nil {
				return nil, err
			}
			ks = append(ks, k)
		}
		return ks, nil
	}
	imgRoot, err := genN("image")
	if err != nil {
		return err
	}
	dirRoot, err := genN("director")
	if err != nil {
		return err
	}
	named := map[string]*keys.Key{}
	for _, f := range []string{ImageSnapshotKey, ImageTimestampKey, DirTargetsKey, DirSnapshotKey, DirTimestampKey} {
		if named[f], err = gen(filepath.Join(on, f)); err != nil {
			return err
		}
	}
	if named[ImageTargetsKey], err = gen(filepath.Join(off, ImageTargetsKey)); err != nil {
		return err
	}
	rootExp := o.Now.Add(o.RootExpiry)
	ir, err := tufrepo.NewRoot(1, map[string]tufrepo.RoleSpec{
		tufrepo.Root:      {Keys: imgRoot, Threshold: o.RootThreshold},
		tufrepo.Targets:   {Keys: []*keys.Key{named[ImageTargetsKey]}, Threshold: 1},
		tufrepo.Snapshot:  {Keys: []*keys.Key{named[ImageSnapshotKey]}, Threshold: 1},
		tufrepo.Timestamp: {Keys: []*keys.Key{named[ImageTimestampKey]}, Threshold: 1},
	}, rootExp)
	if err != nil {
		return err
	}
	irb, err := tufrepo.Sign(ir, imgRoot...)
	if err != nil {
		return err
	}
	dr, err := tufrepo.NewRoot(1, map[string]tufrepo.RoleSpec{
		tufrepo.Root:      {Keys: dirRoot, Threshold: o.RootThreshold},
		tufrepo.Targets:   {Keys: []*keys.Key{named[DirTargetsKey]}, Threshold: 1},
		tufrepo.Snapshot:  {Keys: []*keys.Key{named[DirSnapshotKey]}, Threshold: 1},
		tufrepo.Timestamp: {Keys: []*keys.Key{named[DirTimestampKey]}, Threshold: 1},
	}, rootExp)
	if err != nil {
		return err
	}
	drb, err := tufrepo.Sign(dr, dirRoot...)
	if err != nil {
		return err
	}
	it := tufrepo.NextTargets(nil, o.Now.Add(o.TargetsExpiry))
	itb, err := tufrepo.Sign(it, named[ImageTargetsKey])
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{ImageRootFile: irb, DirectorRootFile: drb, ImageTargetsFile: itb} {
		if err := keys.WriteFileAtomic(filepath.Join(on, name), data, 0o644); err != nil {
			return err
		}
	}
	if err := keys.WriteFileAtomic(filepath.Join(dir, ImageTargetsRecord), itb, 0o600); err != nil {
		return err
	}
	return initTLS(dir, o.TLSHosts, o.Now)
}

// Online is what the server holds.
type Online struct {
	ImageSnapshot, ImageTimestamp                        *keys.Key
	DirectorTargets, DirectorSnapshot, DirectorTimestamp *keys.Key
}

// LoadOnline reads the online keys from dir (a keys directory's online/
// folder, or a server's copy of it).
func LoadOnline(dir string) (Online, error) {
	var o Online
	var err error
	for f, dst := range map[string]**keys.Key{
		ImageSnapshotKey: &o.ImageSnapshot, ImageTimestampKey: &o.ImageTimestamp,
		DirTargetsKey: &o.DirectorTargets, DirSnapshotKey: &o.DirectorSnapshot, DirTimestampKey: &o.DirectorTimestamp,
	} {
		if *dst, err = keys.Load(filepath.Join(dir, f)); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return o, fmt.Errorf("online key %s missing in %s: pass the online/ folder made by 'ztota keys init'", f, dir)
			}
			return o, err
		}
	}
	return o, nil
}

// OnlineFiles lists the files of online/ that a server copies.
var OnlineFiles = []string{ImageSnapshotKey, ImageTimestampKey, DirTargetsKey, DirSnapshotKey, DirTimestampKey, ImageRootFile, ImageTargetsFile, DirectorRootFile}
