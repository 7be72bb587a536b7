package slot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// artifact is a bundle file on disk with the metadata a verifier would pass.
type artifact struct {
	path string
	meta Meta
}

type tent struct {
	typ              byte
	name, body, link string
	mode             int64
}

func buildBundle(t testing.TB, ents ...tent) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range ents {
		hdr := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: e.mode}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(raw.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return z.Bytes()
}

// appBundle is a small module of the given version.
func appBundle(t testing.TB, version string) []byte {
	return buildBundle(t,
		tent{typ: tar.TypeDir, name: "bin/", mode: 0o755},
		tent{typ: tar.TypeReg, name: "bin/app", body: "#!/bin/sh\necho " + version + "\n", mode: 0o755},
		tent{typ: tar.TypeReg, name: "etc/app.conf", body: "version=" + version + "\n", mode: 0o644},
		tent{typ: tar.TypeSymlink, name: "current", link: "bin/app"},
	)
}

func writeArtifact(t testing.TB, dir, version string, data []byte) artifact {
	t.Helper()
	p := filepath.Join(dir, "app-"+version+".tar.gz")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return artifact{path: p, meta: Meta{
		Target: "app/" + version + "/app.tar.gz", Name: "app", Version: version, ReleaseCounter: 1,
		SHA256: hex.EncodeToString(sum[:]), Length: int64(len(data)), ArtifactType: ArtifactBundle,
	}}
}

func newArtifact(t testing.TB, version string) artifact {
	return writeArtifact(t, t.TempDir(), version, appBundle(t, version))
}

func stage(ctx context.Context, s *DirSlots, a artifact) error {
	f, err := os.Open(a.path)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.Stage(ctx, f, a.meta)
}

func mustOpen(t testing.TB, root string, maxBoots int) *DirSlots {
	t.Helper()
	s, err := OpenDir(context.Background(), root, maxBoots)
	if err != nil {
		t.Fatalf("OpenDir: %v", err)
	}
	return s
}

// installed returns slots under a fresh root with v1 committed in slot a.
func installed(t testing.TB, maxBoots int, v1 artifact) (string, *DirSlots) {
	t.Helper()
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "slots")
	s := mustOpen(t, root, maxBoots)
	must(t, stage(ctx, s, v1))
	must(t, s.SetPending(ctx))
	d, err := s.Boot(ctx)
	must(t, err)
	if !d.Trial || d.Slot != A {
		t.Fatalf("first boot = %+v, want a trial of slot a", d)
	}
	must(t, s.Commit(ctx))
	return root, s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// copyTree copies a slot root, preserving modes and symlinks.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case info.IsDir():
			if err := os.Mkdir(to, 0o755); err != nil {
				return err
			}
			return os.Chmod(to, info.Mode().Perm())
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(to, b, 0o600); err != nil {
				return err
			}
			return os.Chmod(to, info.Mode().Perm())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
