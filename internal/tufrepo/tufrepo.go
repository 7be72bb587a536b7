// Package tufrepo builds and signs the TUF metadata of ztota's two kinds of
// repository: the image repository (root and targets signed offline by the
// integrator, snapshot and timestamp online by the server) and the director
// repositories (one per device under a shared root; targets, snapshot and
// timestamp signed online). Director timestamp, snapshot and targets name
// their device (DeviceField, BindDevice, CheckDevice).
//
// Everything here is pure: functions take metadata and keys and return new
// metadata or signed bytes; storage and serving belong to the server.
//
// Versions only go up: Next* functions always produce version = previous+1.
// Snapshot lists targets.json by version, length and sha256; timestamp lists
// snapshot.json the same way, so a mix of repository states is refused by
// the client.
package tufrepo

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/keys"
)

// Top-level role names.
const (
	Root      = metadata.ROOT
	Targets   = metadata.TARGETS
	Snapshot  = metadata.SNAPSHOT
	Timestamp = metadata.TIMESTAMP
)

// Roles lists the top-level roles in a stable order.
var Roles = []string{Root, Targets, Snapshot, Timestamp}

// MaxMetadataSize bounds any metadata document this package parses.
const MaxMetadataSize = 4 << 20

// Errors.
var (
	ErrVersion   = errors.New("metadata version does not increase by exactly one")
	ErrSignature = errors.New("metadata not signed by a threshold of the role's keys")
	ErrExpired   = errors.New("metadata expired")
	ErrTooLarge  = errors.New("metadata too large")
	ErrMalformed = errors.New("malformed metadata")
)

// RoleSpec is the keys and threshold of one role.
type RoleSpec struct {
	Keys      []*keys.Key
	Threshold int
}

// NewRoot builds a root document of the given version (1 for a new
// repository) with consistent snapshots on.
func NewRoot(version int64, roles map[string]RoleSpec, expires time.Time) (*metadata.Metadata[metadata.RootType], error) {
	root := metadata.Root(expires.UTC().Truncate(time.Second))
	root.Signed.Version = version
	for _, name := range Roles {
		spec, ok := roles[name]
		if !ok || len(spec.Keys) == 0 {
			return nil, fmt.Errorf("role %s has no keys", name)
		}
		if spec.Threshold < 1 || spec.Threshold > len(spec.Keys) {
			return nil, fmt.Errorf("role %s: threshold %d must be between 1 and its %d keys", name, spec.Threshold, len(spec.Keys))
		}
		for _, k := range spec.Keys {
			tk, err := k.TUF()
			if err != nil {
				return nil, err
			}
			if err := root.Signed.AddKey(tk, name); err != nil {
				return nil, err
			}
		}
		root.Signed.Roles[name].Threshold = spec.Threshold
	}
	return root, nil
}

// Sign replaces md's signatures with signatures by each key and returns
// the signed document's bytes.
func Sign[T metadata.Roles](md *metadata.Metadata[T], signers ...*keys.Key) ([]byte, error) {
	md.ClearSignatures()
	for _, k := range signers {
		s, err := k.Signer()
		if err != nil {
			return nil, err
		}
		if _, err := md.Sign(s); err != nil {
			return nil, err
		}
	}
	return md.ToBytes(false)
}

// Parse decodes a metadata document of type T, bounded in size.
func Parse[T metadata.Roles](data []byte) (*metadata.Metadata[T], error) {
	if len(data) > MaxMetadataSize {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(data), MaxMetadataSize)
	}
	var zero T
	md, err := fromBytes[T](data)
	if err != nil {
		return nil, fmt.Errorf("%w: %T: %v", ErrMalformed, zero, err)
	}
	return md, nil
}

func fromBytes[T metadata.Roles](data []byte) (*metadata.Metadata[T], error) {
	var m metadata.Metadata[T]
	return m.FromBytes(data)
}

// Verify checks that md is signed by a threshold of role's keys in root.
func Verify(root *metadata.Metadata[metadata.RootType], role string, md any) error {
	if err := root.VerifyDelegate(role, md); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrSignature, role, err)
	}
	return nil
}

// VerifyRootUpdate checks a new root against the trusted one as TUF
// clients do: version exactly one more, signed by a threshold of the old
// root's root keys and by a threshold of its own root keys.
func VerifyRootUpdate(trusted, next *metadata.Metadata[metadata.RootType]) error {
	if next.Signed.Version != trusted.Signed.Version+1 {
		return fmt.Errorf("%w: root %d after %d", ErrVersion, next.Signed.Version, trusted.Signed.Version)
	}
	if err := Verify(trusted, Root, next); err != nil {
		return fmt.Errorf("new root not signed by the old root's threshold: %w", err)
	}
	if err := Verify(next, Root, next); err != nil {
		return fmt.Errorf("new root not signed by its own threshold: %w", err)
	}
	return nil
}

// MetaFile describes a signed document for snapshot or timestamp.
func MetaFile(version int64, data []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(data)
	mf := metadata.MetaFile(version)
	mf.Length = int64(len(data))
	mf.Hashes = metadata.Hashes{"sha256": sum[:]}
	return mf
}

// NextSnapshot returns the snapshot that lists the given targets bytes.
// prev may be nil for the first one.
func NextSnapshot(prev *metadata.Metadata[metadata.SnapshotType], targetsVersion int64, targets []byte, expires time.Time) *metadata.Metadata[metadata.SnapshotType] {
	s := metadata.Snapshot(expires.UTC().Truncate(time.Second))
	if prev != nil {
		s.Signed.Version = prev.Signed.Version + 1
	}
	s.Signed.Meta = map[string]*metadata.MetaFiles{"targets.json": MetaFile(targetsVersion, targets)}
	return s
}

// NextTimestamp returns the timestamp that lists the given snapshot bytes.
func NextTimestamp(prev *metadata.Metadata[metadata.TimestampType], snapshotVersion int64, snapshot []byte, expires time.Time) *metadata.Metadata[metadata.TimestampType] {
	t := metadata.Timestamp(expires.UTC().Truncate(time.Second))
	if prev != nil {
		t.Signed.Version = prev.Signed.Version + 1
	}
	t.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": MetaFile(snapshotVersion, snapshot)}
	return t
}

// NextTargets returns a copy of prev (or an empty targets document) with
// the version one higher and the given expiry.
func NextTargets(prev *metadata.Metadata[metadata.TargetsType], expires time.Time) *metadata.Metadata[metadata.TargetsType] {
	t := metadata.Targets(expires.UTC().Truncate(time.Second))
	if prev != nil {
		t.Signed.Version = prev.Signed.Version + 1
		for p, tf := range prev.Signed.Targets {
			c := *tf
			t.Signed.Targets[p] = &c
		}
	}
	return t
}

// TargetFile describes an artifact of the given length and sha256 with
// custom metadata.
func TargetFile(path string, length int64, sha []byte, custom any) (*metadata.TargetFiles, error) {
	tf := metadata.TargetFile()
	tf.Path = path
	tf.Length = length
	tf.Hashes = metadata.Hashes{"sha256": sha}
	if custom != nil {
		raw, err := json.Marshal(custom)
		if err != nil {
			return nil, err
		}
		rm := json.RawMessage(raw)
		tf.Custom = &rm
	}
	return tf, nil
}

// SHA256 returns the target's sha256, or an error if it has none.
func SHA256(tf *metadata.TargetFiles) ([]byte, error) {
	h, ok := tf.Hashes["sha256"]
	if !ok || len(h) != sha256.Size {
		return nil, fmt.Errorf("%w: target %s has no sha256", ErrMalformed, tf.Path)
	}
	return h, nil
}
