package fetch

import (
	"errors"
	"io"
	"os"
	"testing"
)

func TestHashFileDetectsByteChangedAfterDownload(t *testing.T) {
	data, want := artifact(100 << 10)
	m := newMirror(t, honest(data))
	dst := tempDst(t, nil)
	if _, err := Download(t.Context(), dst, want, fast(newClient(t), m.URL)); err != nil {
		t.Fatal(err)
	}
	if err := HashFile(t.Context(), dst, want); err != nil {
		t.Fatalf("fresh download: %v", err)
	}

	// Another writer flips one byte through its own descriptor.
	other, err := os.OpenFile(dst.Name(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.WriteAt([]byte{data[77777] ^ 0x01}, 77777); err != nil {
		t.Fatal(err)
	}
	if err := HashFile(t.Context(), dst, want); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("after one flipped byte: %v, want ErrHashMismatch", err)
	}

	other.WriteAt(data[77777:77778], 77777)
	if _, err := other.WriteAt([]byte{0}, want.Length); err != nil {
		t.Fatal(err)
	}
	if err := HashFile(t.Context(), dst, want); !errors.Is(err, ErrTooLong) {
		t.Fatalf("after an appended byte: %v, want ErrTooLong", err)
	}
	if err := other.Truncate(want.Length - 1); err != nil {
		t.Fatal(err)
	}
	if err := HashFile(t.Context(), dst, want); !errors.Is(err, ErrShort) {
		t.Fatalf("after truncation: %v, want ErrShort", err)
	}
}

func TestHashFileReadsTheDescriptorNotThePath(t *testing.T) {
	data, want := artifact(10 << 10)
	dst := tempDst(t, data)
	if _, err := dst.Seek(123, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	// Swap a different file in at the same path after the check.
	evil := bytes0(len(data))
	tmp := dst.Name() + ".evil"
	if err := os.WriteFile(tmp, evil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst.Name()); err != nil {
		t.Fatal(err)
	}
	if err := HashFile(t.Context(), dst, want); err != nil {
		t.Fatalf("HashFile followed the path to the swapped file: %v", err)
	}
	if off, _ := dst.Seek(0, io.SeekCurrent); off != 123 {
		t.Errorf("HashFile moved the file offset to %d", off)
	}
}

func TestHashFileStopsOnCancel(t *testing.T) {
	data, want := artifact(1 << 20)
	dst := tempDst(t, data)
	ctx, cancel := contextCanceled(t)
	cancel()
	if err := HashFile(ctx, dst, want); err == nil || IsTransient(err) {
		t.Fatalf("cancelled HashFile: %v", err)
	}
}

func bytes0(n int) []byte { return make([]byte, n) }
