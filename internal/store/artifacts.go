package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ztota/ztota/internal/atomicfile"
)

// ArtifactPath returns where an artifact with the given hex sha256 lives.
func (s *Store) ArtifactPath(sha string) string {
	return filepath.Join(s.dir, "artifacts", "sha256", sha)
}

// PutArtifact streams r (at most length bytes) into the content-addressed
// store and checks it hashes to wantSHA (hex). Nothing is kept on mismatch.
func (s *Store) PutArtifact(ctx context.Context, r io.Reader, length int64, wantSHA string) error {
	if _, err := hex.DecodeString(wantSHA); err != nil || len(wantSHA) != 64 {
		return fmt.Errorf("%w: sha256 %q is not 64 hex digits", ErrConflict, wantSHA)
	}
	final := s.ArtifactPath(wantSHA)
	if fi, err := os.Stat(final); err == nil && fi.Size() == length {
		// Already stored: the body is drained, and a sender's broken or
		// stalled body is its fault, as for a first upload.
		if n, err := io.Copy(io.Discard, io.LimitReader(r, length)); err != nil {
			return fmt.Errorf("%w: received %d of %d bytes: %v", ErrIncomplete, n, length, err)
		}
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(final), ".upload-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	src := &readErrRecorder{r: io.LimitReader(r, length+1)}
	n, err := io.Copy(io.MultiWriter(tmp, h), src)
	if err != nil {
		if src.err != nil {
			return fmt.Errorf("%w: received %d of %d bytes: %v", ErrIncomplete, n, length, src.err)
		}
		return fmt.Errorf("storing artifact: %w", err)
	}
	if n != length {
		return fmt.Errorf("%w: artifact is %d bytes, metadata says %d", ErrConflict, n, length)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != wantSHA {
		return fmt.Errorf("%w: artifact sha256 %s, metadata says %s", ErrConflict, got, wantSHA)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	// Rename and fsync the directory: a published artifact must survive a
	// crash once its row is written.
	if err := atomicfile.Rename(tmp.Name(), final); err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT OR IGNORE INTO artifacts (sha256, length, created) VALUES (?,?,?)`, wantSHA, length, unix(time.Now()))
	return err
}

// readErrRecorder remembers a read error, so that a sender's broken body
// is told apart from a failing disk.
type readErrRecorder struct {
	r   io.Reader
	err error
}

func (e *readErrRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}
