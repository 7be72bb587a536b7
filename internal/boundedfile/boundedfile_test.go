package boundedfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestReadRefusesOneByteOverTheBound writes a file of exactly the bound
// and one of one byte more: the first is read whole, the second is
// ErrTooLarge, and a missing file stays fs.ErrNotExist.
func TestReadRefusesOneByteOverTheBound(t *testing.T) {
	dir := t.TempDir()
	at := filepath.Join(dir, "at")
	over := filepath.Join(dir, "over")
	if err := os.WriteFile(at, bytes.Repeat([]byte("a"), 16), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(over, bytes.Repeat([]byte("a"), 17), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(at, 16); err != nil || len(b) != 16 {
		t.Fatalf("file at the bound: %d bytes, %v; want 16, nil", len(b), err)
	}
	if _, err := Read(over, 16); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("file over the bound: %v, want ErrTooLarge", err)
	}
	if _, err := Read(filepath.Join(dir, "missing"), 16); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
	}
}
