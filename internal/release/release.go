// Package release is the integrator's side of publishing: it describes an
// artifact as an image-repository target with ztota's custom metadata,
// signs the next version of the image targets metadata with the offline
// targets key, and uploads artifact and metadata to the server.
//
// The current targets metadata is fetched from the server but extended only
// if it carries a signature by the integrator's own current targets key, so
// a lying server cannot smuggle targets into the integrator's signature.
// Every targets document the integrator signs is also kept in the keys
// directory (offline/image-targets-signed.json); when the server's current
// targets are not signed by the current key (an attacker holding a retired,
// compromised key put a document there), the next version is built from
// that record instead, and the server's foreign targets are dropped.
//
// Resign is the second half of a targets key rotation: it re-signs the
// current targets with the new key (co-signed by the retired one, so the
// server accepts them under the old root and devices under either root)
// before the new root is sent.
package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/apiclient"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/tufrepo"
)

// Options of a release.
type Options struct {
	Artifact string // path of the artifact file
	Meta     tufrepo.ImageMeta
	KeysDir  string // the keys directory made by "ztota keys init"
	Expires  time.Duration
	// Certificate is the certifier's bundle for the artifact (envelope +
	// kind + log receipt); when set it is uploaded before the targets
	// metadata, so a server that refuses it publishes nothing.
	Certificate []byte
}

// Result says what was published.
type Result struct {
	Target         string
	SHA256         string
	Length         int64
	TargetsVersion int64
	// Certificate says what became of Options.Certificate: the stored
	// certificate's digest, or that the server has no certifier root.
	Certificate string
	// Dropped lists targets the server listed that this keys directory
	// never signed (they were not signed by the current targets key and
	// are left out of the new version).
	Dropped []string
}

// HashFile returns the sha256 and length of a file.
func HashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Publish signs and uploads a release.
func Publish(ctx context.Context, c *apiclient.Client, o Options) (Result, error) {
	if o.Meta.ArtifactType == "" {
		o.Meta.ArtifactType = tufrepo.ArtifactBundle
	}
	if o.Meta.Module == "" {
		o.Meta.Module = o.Meta.Name
	}
	if err := o.Meta.Validate(); err != nil {
		return Result{}, err
	}
	if o.Expires == 0 {
		o.Expires = 90 * 24 * time.Hour
	}
	key, err := keys.Load(filepath.Join(o.KeysDir, keyset.OfflineDir, keyset.ImageTargetsKey))
	if err != nil {
		return Result{}, fmt.Errorf("the image targets key: %w (use the keys directory made by 'ztota keys init')", err)
	}
	sha, n, err := HashFile(o.Artifact)
	if err != nil {
		return Result{}, err
	}
	prev, err := serverTargets(ctx, c)
	if err != nil {
		return Result{}, err
	}
	base := prev
	var dropped []string
	if err := verifyOwn(prev, key); err != nil {
		// Not signed by our current key: build on what we signed last,
		// if that is signed by the current key; never on the server's.
		rec, rerr := loadRecord(o.KeysDir)
		if rerr != nil || verifyOwn(rec, key) != nil {
			return Result{}, fmt.Errorf("%w; after 'ztota keys rotate --repo image --role targets', run 'ztota keys publish --repo image' first", err)
		}
		base, dropped = rec, foreign(prev, rec)
	}
	if o.Meta.Backup, err = resolveBackup(base, o.Meta); err != nil {
		return Result{}, err
	}
	next := tufrepo.NextTargets(base, time.Now().Add(o.Expires))
	next.Signed.Version = prev.Signed.Version + 1
	shaBytes, _ := hex.DecodeString(sha)
	path := tufrepo.TargetPath(o.Meta.Name, o.Meta.Version, filepath.Base(o.Artifact))
	tf, err := tufrepo.TargetFile(path, n, shaBytes, tufrepo.ImageCustom(o.Meta))
	if err != nil {
		return Result{}, err
	}
	next.Signed.Targets[path] = tf
	data, err := tufrepo.Sign(next, key)
	if err != nil {
		return Result{}, err
	}
	if err := c.UploadArtifact(ctx, o.Artifact, sha); err != nil {
		return Result{}, fmt.Errorf("uploading the artifact: %w", err)
	}
	var certNote string
	if o.Certificate != nil {
		cb, err := c.PutCertificate(ctx, sha, o.Certificate)
		switch {
		case apiclient.IsNoCertifier(err):
			certNote = "not uploaded: the server has no certifier root and does not gate releases"
		case err != nil:
			return Result{}, fmt.Errorf("uploading the certificate: %w", err)
		default:
			certNote = fmt.Sprintf("%s, valid until %s", cb.CertDigest, cb.ValidUntil.Format(time.RFC3339))
		}
	}
	if err := c.PublishImageTargets(ctx, data); err != nil {
		return Result{}, fmt.Errorf("publishing the targets metadata: %w", err)
	}
	if err := saveRecord(o.KeysDir, data); err != nil {
		return Result{}, fmt.Errorf("published, but keeping a copy of the signed targets: %w", err)
	}
	return Result{Target: path, SHA256: sha, Length: n, TargetsVersion: next.Signed.Version, Dropped: dropped, Certificate: certNote}, nil
}

// resolveBackup turns the backup named by m.Backup (a target path, or
// NAME@VERSION) into the target path of a release already signed into base:
// of the same module, not this release, supporting every hardware id this
// release supports (a device of any of them may have to switch to it).
func resolveBackup(base *metadata.Metadata[metadata.TargetsType], m tufrepo.ImageMeta) (string, error) {
	if m.Backup == "" {
		return "", nil
	}
	self := m.Name + "@" + m.Version
	var found []string
	for path, tf := range base.Signed.Targets {
		bm, err := tufrepo.ParseImageMeta(tf)
		if err != nil {
			continue
		}
		if path == m.Backup || bm.Name+"@"+bm.Version == m.Backup {
			if bm.Name+"@"+bm.Version == self {
				return "", fmt.Errorf("backup %s: a release cannot be its own backup", m.Backup)
			}
			if bm.Module != m.Module {
				return "", fmt.Errorf("backup %s is a release of module %q, not %q: a backup must be of the same module", m.Backup, bm.Module, m.Module)
			}
			for _, hw := range m.HardwareIDs {
				if !bm.Supports(hw) {
					return "", fmt.Errorf("backup %s does not support hardware %q, which this release supports", m.Backup, hw)
				}
			}
			found = append(found, path)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("backup %s: no such release in the image targets (release the backup first, then the release that designates it)", m.Backup)
	case 1:
		return found[0], nil
	}
	sort.Strings(found)
	return "", fmt.Errorf("backup %s names several targets (%v): give the target path", m.Backup, found)
}

// verifyOwn checks that the server's current targets carry a signature by
// our own targets key (the one we are about to sign the next version with).
func verifyOwn(t *metadata.Metadata[metadata.TargetsType], key *keys.Key) error {
	id, err := key.ID()
	if err != nil {
		return err
	}
	tk, err := key.TUF()
	if err != nil {
		return err
	}
	root := metadata.Root(time.Now().Add(time.Hour))
	if err := root.Signed.AddKey(tk, metadata.TARGETS); err != nil {
		return err
	}
	if err := root.VerifyDelegate(metadata.TARGETS, t); err != nil {
		return fmt.Errorf("the server's current image targets are not signed by the targets key %s: refusing to extend them (%v)", id[:12], err)
	}
	return nil
}

// serverTargets fetches and parses the server's current image targets.
func serverTargets(ctx context.Context, c *apiclient.Client) (*metadata.Metadata[metadata.TargetsType], error) {
	cur, err := c.ImageTargets(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetching the image targets: %w", err)
	}
	return tufrepo.Parse[metadata.TargetsType](cur)
}

// currentImageRoot reads and parses the keys directory's current image root.
func currentImageRoot(keysDir string) ([]byte, *metadata.Metadata[metadata.RootType], error) {
	rootb, err := keyset.CurrentRoot(keysDir, "image")
	if err != nil {
		return nil, nil, err
	}
	root, err := tufrepo.Parse[metadata.RootType](rootb)
	if err != nil {
		return nil, nil, err
	}
	return rootb, root, nil
}

func loadRecord(dir string) (*metadata.Metadata[metadata.TargetsType], error) {
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(keyset.ImageTargetsRecord)))
	if err != nil {
		return nil, err
	}
	return tufrepo.Parse[metadata.TargetsType](b)
}

func saveRecord(dir string, data []byte) error {
	return keys.WriteFileAtomic(filepath.Join(dir, filepath.FromSlash(keyset.ImageTargetsRecord)), data, 0o600)
}

// foreign lists the targets of t that rec does not hold with the same
// length and hashes.
func foreign(t, rec *metadata.Metadata[metadata.TargetsType]) []string {
	var out []string
	for p, tf := range t.Signed.Targets {
		r, ok := rec.Signed.Targets[p]
		if !ok || r.Length != tf.Length || !r.Hashes.Equal(tf.Hashes) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// ResignResult says what Resign did.
type ResignResult struct {
	// Resigned is false when the server's targets already verify under
	// the keys directory's current image root.
	Resigned       bool
	TargetsVersion int64
	Targets        []string // the targets of the re-signed version
	Dropped        []string // server targets left out (never signed by this keys directory)
	FromRecord     bool     // built from the keys directory's record, not the server's copy
}

// ErrNoTrustedTargets: neither the server's current image targets nor a
// record in the keys directory carries a signature by a targets key this
// keys directory holds, so there is nothing it can vouch for.
var ErrNoTrustedTargets = errors.New("no image targets signed by a key of this keys directory to re-sign")

// Resign re-signs the server's current image targets with the current
// targets key of keysDir after "ztota keys rotate --repo image --role
// targets", before the new root is sent. The new version lists the
// targets the integrator signed last (the record in the keys directory;
// without one, the server's copy if a key of this directory signed it),
// so the releases devices run stay listed. It is signed by the new key, so
// that devices accept it under the new root, and co-signed by the newest
// retired targets key, so that the server, still under the old root,
// accepts it. It does nothing when the server's targets already verify
// under the keys directory's current root and carry the current key's
// signature (run again after an interrupted publish).
func Resign(ctx context.Context, c *apiclient.Client, keysDir string, expires time.Duration) (ResignResult, error) {
	if expires == 0 {
		expires = 90 * 24 * time.Hour
	}
	_, root, err := currentImageRoot(keysDir)
	if err != nil {
		return ResignResult{}, err
	}
	prev, err := serverTargets(ctx, c)
	if err != nil {
		return ResignResult{}, err
	}
	verifies := tufrepo.Verify(root, tufrepo.Targets, prev) == nil
	key, err := keys.Load(filepath.Join(keysDir, keyset.OfflineDir, keyset.ImageTargetsKey))
	if verifies && (errors.Is(err, fs.ErrNotExist) || err == nil && verifyOwn(prev, key) == nil) {
		// Nothing to do (or a keys directory without the targets key,
		// publishing a root that leaves the targets role alone).
		return ResignResult{TargetsVersion: prev.Signed.Version, Targets: names(prev)}, nil
	}
	if err != nil {
		return ResignResult{}, fmt.Errorf("the image targets key: %w", err)
	}
	id, err := key.ID()
	if err != nil {
		return ResignResult{}, err
	}
	if !slices.Contains(root.Signed.Roles[tufrepo.Targets].KeyIDs, id) {
		return ResignResult{}, fmt.Errorf("the image targets key %s of %s is not one image root v%d names", id[:12], keysDir, root.Signed.Version)
	}
	retired, err := keyset.RetiredTargetsKeys(keysDir)
	if err != nil {
		return ResignResult{}, err
	}
	// Ours: signed by a targets key this directory holds or held, or
	// verifying under its current root (which, after AddImageTargetsKey,
	// still lists a lost key).
	signedByUs := func(t *metadata.Metadata[metadata.TargetsType]) bool {
		if tufrepo.Verify(root, tufrepo.Targets, t) == nil {
			return true
		}
		for _, k := range append([]*keys.Key{key}, retired...) {
			if verifyOwn(t, k) == nil {
				return true
			}
		}
		return false
	}
	var res ResignResult
	base := prev
	if rec, err := loadRecord(keysDir); err == nil && signedByUs(rec) {
		base, res.FromRecord, res.Dropped = rec, true, foreign(prev, rec)
	} else if !signedByUs(prev) {
		return ResignResult{}, fmt.Errorf("%w: the server's version %d is not signed by it and %s holds no record", ErrNoTrustedTargets, prev.Signed.Version, keyset.ImageTargetsRecord)
	}
	next := tufrepo.NextTargets(base, time.Now().Add(expires))
	next.Signed.Version = prev.Signed.Version + 1
	signers := []*keys.Key{key}
	if len(retired) > 0 {
		signers = append(signers, retired[0])
	}
	data, err := tufrepo.Sign(next, signers...)
	if err != nil {
		return ResignResult{}, err
	}
	if err := c.PublishImageTargets(ctx, data); err != nil {
		return ResignResult{}, fmt.Errorf("publishing the re-signed targets: %w", err)
	}
	if err := saveRecord(keysDir, data); err != nil {
		return ResignResult{}, fmt.Errorf("published, but keeping a copy of the signed targets: %w", err)
	}
	res.Resigned, res.TargetsVersion, res.Targets = true, next.Signed.Version, names(next)
	return res, nil
}

func names(t *metadata.Metadata[metadata.TargetsType]) []string {
	out := make([]string, 0, len(t.Signed.Targets))
	for p := range t.Signed.Targets {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// PublishImageRoot sends a new image root (the keys directory's current
// one) and keeps the server's image targets verifiable throughout: if they
// verify under the new root, the root goes first and the targets are then
// re-signed if the current targets key did not sign them (the first step
// of replacing a lost key); otherwise they are re-signed first (co-signed
// by the retired key, so the server accepts them under the old root) and
// the root follows. Sending a root the server already has is harmless.
func PublishImageRoot(ctx context.Context, c *apiclient.Client, keysDir string, rootb []byte) (ResignResult, error) {
	next, err := tufrepo.Parse[metadata.RootType](rootb)
	if err != nil {
		return ResignResult{}, err
	}
	prev, err := serverTargets(ctx, c)
	if err != nil {
		return ResignResult{}, err
	}
	if tufrepo.Verify(next, tufrepo.Targets, prev) == nil {
		if err := c.PublishRoot(ctx, "image", rootb); err != nil {
			return ResignResult{}, err
		}
		return Resign(ctx, c, keysDir, 0)
	}
	res, err := Resign(ctx, c, keysDir, 0)
	if err != nil {
		if len(next.Signed.Roles[tufrepo.Targets].KeyIDs) == 1 {
			if r, _ := keyset.RetiredTargetsKeys(keysDir); len(r) == 0 {
				err = fmt.Errorf("%w (no retired targets key to co-sign with: if the old key is lost, use 'ztota keys rotate --repo image --role targets --old-key-lost')", err)
			}
		}
		return ResignResult{}, err
	}
	return res, c.PublishRoot(ctx, "image", rootb)
}

// ReplaceLostTargetsKey replaces an image targets key the integrator no
// longer has, in two root versions: the first lists a new key beside the
// lost one (the current targets still verify, so the server takes it),
// the targets are re-signed by the new key from the keys directory's
// record, and the second root drops the lost key. Devices walk both
// roots in one refresh. If it stops half-way, running it again resumes
// (while the current root still lists two targets keys); after the second
// root was made, "ztota keys publish --repo image" finishes.
func ReplaceLostTargetsKey(ctx context.Context, c *apiclient.Client, keysDir, alg string) (ResignResult, error) {
	rootb, root, err := currentImageRoot(keysDir)
	if err != nil {
		return ResignResult{}, err
	}
	if len(root.Signed.Roles[tufrepo.Targets].KeyIDs) < 2 {
		if rootb, err = keyset.AddImageTargetsKey(keysDir, alg, time.Time{}); err != nil {
			return ResignResult{}, err
		}
	}
	res, err := PublishImageRoot(ctx, c, keysDir, rootb)
	if err != nil {
		return ResignResult{}, fmt.Errorf("publishing the image root that adds the new targets key: %w (run the same command again to resume)", err)
	}
	last, err := keyset.DropOldImageTargetsKeys(keysDir, time.Time{})
	if err != nil {
		return ResignResult{}, err
	}
	if _, err := PublishImageRoot(ctx, c, keysDir, last); err != nil {
		return ResignResult{}, fmt.Errorf("publishing the image root that drops the lost targets key: %w (finish with 'ztota keys publish --repo image')", err)
	}
	return res, nil
}
