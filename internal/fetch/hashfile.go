package fetch

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
)

const chunkSize = 64 << 10

// HashFile re-verifies the artifact in f by reading the same open
// descriptor from offset 0 (with ReadAt: f's file offset is not used or
// moved). It never re-opens a path, so what it checks is what the caller
// holds: call it after writing, and install from the same descriptor, to
// defend against time-of-check-to-time-of-use. It returns nil, or an error
// matching ErrShort, ErrTooLong or ErrHashMismatch. f is not changed.
func HashFile(ctx context.Context, f *os.File, want Want) error {
	if f == nil {
		return invalid("HashFile needs an open file, got nil")
	}
	if err := want.validate(); err != nil {
		return err
	}
	h := sha256.New()
	n, err := hashAt(ctx, f, want.Length+1, h)
	switch {
	case err != nil:
		return err
	case n > want.Length:
		return fmt.Errorf("%w: %s holds more than %d bytes; it changed after download, download it again", ErrTooLong, f.Name(), want.Length)
	case n < want.Length:
		return fmt.Errorf("%w: %s holds %d of %d bytes; it changed after download, download it again", ErrShort, f.Name(), n, want.Length)
	}
	if got := h.Sum(nil); subtle.ConstantTimeCompare(got, want.SHA256) != 1 {
		return fmt.Errorf("%w: %s has sha256 %x, signed %x; it changed after download, download it again", ErrHashMismatch, f.Name(), got, want.SHA256)
	}
	return nil
}

// hashAt feeds bytes [0, limit) of r to h and returns how many there were
// (fewer at end of file). It checks ctx between chunks.
func hashAt(ctx context.Context, r io.ReaderAt, limit int64, h hash.Hash) (int64, error) {
	buf := make([]byte, chunkSize)
	var off int64
	for off < limit {
		if err := ctx.Err(); err != nil {
			return off, fmt.Errorf("fetch: hashing interrupted: %w", context.Cause(ctx))
		}
		n, err := r.ReadAt(buf[:min(int64(len(buf)), limit-off)], off)
		h.Write(buf[:n])
		off += int64(n)
		if errors.Is(err, io.EOF) {
			return off, nil
		}
		if err != nil {
			return off, local("fetch: reading the destination at byte %d: %w; check the slot storage", off, err)
		}
	}
	return off, nil
}
