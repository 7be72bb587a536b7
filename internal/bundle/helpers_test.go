package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// ent is one archive entry for the test archive builder.
type ent struct {
	typ  byte
	name string
	body string
	link string
	mode int64
	size int64 // declared size when it differs from len(body); -1 means len(body)
}

func file(name, body string) ent { return ent{typ: tar.TypeReg, name: name, body: body, mode: 0o644} }
func dir(name string) ent        { return ent{typ: tar.TypeDir, name: name, mode: 0o755} }
func symlink(name, to string) ent {
	return ent{typ: tar.TypeSymlink, name: name, link: to, mode: 0o777}
}
func hardlink(name, to string) ent      { return ent{typ: tar.TypeLink, name: name, link: to, mode: 0o644} }
func special(typ byte, name string) ent { return ent{typ: typ, name: name, mode: 0o644} }

func buildTar(t testing.TB, format tar.Format, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: e.mode, Format: format}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("write header %q: %v", e.name, err)
		}
		if e.body != "" {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// extractTo extracts b into a fresh "out" directory under a temp parent,
// and checks that nothing appeared in the parent besides "out".
func extractTo(t *testing.T, b []byte, lim Limits) (string, Stats, error) {
	t.Helper()
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	st, err := Extract(context.Background(), bytes.NewReader(b), out, lim)
	names, rerr := os.ReadDir(parent)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(names) != 1 || names[0].Name() != "out" {
		t.Fatalf("extraction wrote outside its destination: %v", names)
	}
	return out, st, err
}

// wantUnsafe extracts and demands an UnsafeEntryError.
func wantUnsafe(t *testing.T, b []byte) *UnsafeEntryError {
	t.Helper()
	_, _, err := extractTo(t, b, Limits{})
	var ue *UnsafeEntryError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnsafeEntry) {
		t.Fatalf("Extract error = %v, want an UnsafeEntryError", err)
	}
	return ue
}

func wantLimit(t *testing.T, b []byte, lim Limits, which string) {
	t.Helper()
	_, _, err := extractTo(t, b, lim)
	var le *LimitError
	if !errors.As(err, &le) || !errors.Is(err, ErrLimit) {
		t.Fatalf("Extract error = %v, want a LimitError", err)
	}
	if le.Limit != which {
		t.Fatalf("limit hit = %q, want %q", le.Limit, which)
	}
}
