// Package release is the integrator's side of publishing: it describes an
// artifact as an image-repository target with ztota's custom metadata,
// signs the next version of the image targets metadata with the offline
// targets key, and uploads artifact and metadata to the server.
//
// The current targets metadata is fetched from the server but trusted only
// after its signature verifies against the image root the integrator holds,
// so a lying server cannot smuggle targets into the integrator's signature.
package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
}

// Result says what was published.
type Result struct {
	Target         string
	SHA256         string
	Length         int64
	TargetsVersion int64
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
	cur, err := c.ImageTargets(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("fetching the image targets: %w", err)
	}
	prev, err := tufrepo.Parse[metadata.TargetsType](cur)
	if err != nil {
		return Result{}, err
	}
	if err := verifyOwn(prev, key); err != nil {
		return Result{}, err
	}
	next := tufrepo.NextTargets(prev, time.Now().Add(o.Expires))
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
	if err := c.PublishImageTargets(ctx, data); err != nil {
		return Result{}, fmt.Errorf("publishing the targets metadata: %w", err)
	}
	return Result{Target: path, SHA256: sha, Length: n, TargetsVersion: next.Signed.Version}, nil
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
