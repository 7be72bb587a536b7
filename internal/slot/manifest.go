package slot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"unicode/utf8"

	"github.com/ztota/ztota/internal/bundle"
)

// Manifest bounds.
const (
	ManifestVersion  = 1
	MaxManifestBytes = 32 << 20
	maxManifestItems = 1 << 18
)

// Manifest lists what Stage wrote into a slot.
type Manifest struct {
	Version        int             `json:"version"`
	Slot           string          `json:"slot"`
	ArtifactSHA256 string          `json:"artifact_sha256"`
	Entries        []ManifestEntry `json:"entries"`
}

// ManifestEntry is one path of a slot.
type ManifestEntry struct {
	Path   string      `json:"path"`             // cleaned, relative, slash-separated
	Type   string      `json:"type"`             // "file", "dir" or "symlink"
	Mode   fs.FileMode `json:"mode,omitempty"`   // permission bits (file, dir)
	Size   int64       `json:"size,omitempty"`   // bytes (file)
	SHA256 string      `json:"sha256,omitempty"` // lowercase hex (file)
	Target string      `json:"target,omitempty"` // link target (symlink)
}

func manifestFrom(slot, artifact string, entries []bundle.Entry) Manifest {
	m := Manifest{Version: ManifestVersion, Slot: slot, ArtifactSHA256: artifact, Entries: make([]ManifestEntry, 0, len(entries))}
	for _, e := range entries {
		m.Entries = append(m.Entries, ManifestEntry{Path: e.Name, Type: string(e.Type), Mode: e.Mode, Size: e.Size, SHA256: e.SHA256, Target: e.Target})
	}
	return m
}

// ParseManifest parses a manifest strictly: bounded size and entry count,
// no duplicate or unknown keys, clean unique relative paths, known types.
func ParseManifest(data []byte) (Manifest, error) {
	if len(data) > MaxManifestBytes {
		return Manifest{}, fmt.Errorf("larger than %d bytes", MaxManifestBytes)
	}
	var m Manifest
	if err := decodeStrict(data, &m); err != nil {
		return Manifest{}, err
	}
	if m.Version != ManifestVersion {
		return Manifest{}, fmt.Errorf("version %d, want %d", m.Version, ManifestVersion)
	}
	if !validSlot(m.Slot) {
		return Manifest{}, fmt.Errorf("slot name %q", m.Slot)
	}
	if !isHexDigest(m.ArtifactSHA256) {
		return Manifest{}, fmt.Errorf("artifact_sha256 is not 64 lowercase hex digits")
	}
	if len(m.Entries) > maxManifestItems {
		return Manifest{}, fmt.Errorf("more than %d entries", maxManifestItems)
	}
	seen := make(map[string]bool, len(m.Entries))
	for _, e := range m.Entries {
		if e.Path == "" || e.Path == "." || path.Clean(e.Path) != e.Path || path.IsAbs(e.Path) ||
			e.Path == ".." || len(e.Path) >= 3 && e.Path[:3] == "../" || !utf8.ValidString(e.Path) {
			return Manifest{}, fmt.Errorf("entry path %q is not clean and relative", e.Path)
		}
		if seen[e.Path] {
			return Manifest{}, fmt.Errorf("duplicate entry %q", e.Path)
		}
		seen[e.Path] = true
		if e.Mode&^0o777 != 0 {
			return Manifest{}, fmt.Errorf("entry %q: mode %o has more than permission bits", e.Path, e.Mode)
		}
		switch e.Type {
		case string(bundle.TypeFile):
			if !isHexDigest(e.SHA256) || e.Size < 0 || e.Target != "" {
				return Manifest{}, fmt.Errorf("file entry %q needs sha256 and size only", e.Path)
			}
		case string(bundle.TypeDir):
			if e.SHA256 != "" || e.Size != 0 || e.Target != "" {
				return Manifest{}, fmt.Errorf("dir entry %q carries file fields", e.Path)
			}
		case string(bundle.TypeSymlink):
			if e.Target == "" || e.SHA256 != "" || e.Size != 0 || e.Mode != 0 {
				return Manifest{}, fmt.Errorf("symlink entry %q needs a target only", e.Path)
			}
		default:
			return Manifest{}, fmt.Errorf("entry %q: unknown type %q", e.Path, e.Type)
		}
	}
	return m, nil
}

func marshalManifest(m Manifest) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// verifyTree checks that the tree at dir holds exactly the manifest's
// entries. It reads through an os.Root, never follows symlinks, and
// hashes every file.
func verifyTree(ctx context.Context, slot, dir string, m Manifest) error {
	tampered := func(p, reason string) error { return &TamperedError{Slot: slot, Path: p, Reason: reason} }
	fi, err := os.Lstat(dir)
	if err != nil {
		return tampered("", fmt.Sprintf("slot directory: %v", err))
	}
	if !fi.IsDir() {
		return tampered("", "slot directory is not a directory")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return tampered("", fmt.Sprintf("open slot directory: %v", err))
	}
	defer root.Close()
	want := make(map[string]ManifestEntry, len(m.Entries))
	for _, e := range m.Entries {
		want[e.Path] = e
	}
	seen := 0
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		e, ok := want[p]
		if !ok {
			return tampered(p, "not in the manifest")
		}
		seen++
		info, err := root.Lstat(p)
		if err != nil {
			return tampered(p, err.Error())
		}
		mode := info.Mode()
		switch {
		case e.Type == string(bundle.TypeDir) && mode.IsDir(),
			e.Type == string(bundle.TypeFile) && mode.IsRegular(),
			e.Type == string(bundle.TypeSymlink) && mode&fs.ModeSymlink != 0:
		default:
			return tampered(p, fmt.Sprintf("is %v, manifest says %s", mode.Type(), e.Type))
		}
		if e.Type != string(bundle.TypeSymlink) && mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != e.Mode {
			return tampered(p, fmt.Sprintf("mode %v, manifest says %v", mode.Perm(), e.Mode))
		}
		switch e.Type {
		case string(bundle.TypeSymlink):
			target, err := root.Readlink(p)
			if err != nil || target != e.Target {
				return tampered(p, "symlink target changed")
			}
		case string(bundle.TypeFile):
			if info.Size() != e.Size {
				return tampered(p, fmt.Sprintf("size %d, manifest says %d", info.Size(), e.Size))
			}
			if sum, err := hashFile(ctx, root, p); err != nil {
				return tampered(p, err.Error())
			} else if sum != e.SHA256 {
				return tampered(p, "content changed (sha256 differs)")
			}
		}
		return nil
	})
	var te *TamperedError
	switch {
	case errors.As(err, &te), ctx.Err() != nil:
		return err
	case err != nil:
		return tampered("", err.Error())
	case seen != len(want):
		for p := range want {
			if _, err := root.Lstat(p); err != nil {
				return tampered(p, "missing")
			}
		}
		return tampered("", "entries missing")
	}
	return nil
}

func hashFile(ctx context.Context, root *os.Root, p string) (string, error) {
	f, err := root.OpenFile(p, os.O_RDONLY|noFollow, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
