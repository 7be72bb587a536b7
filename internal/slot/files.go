package slot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// errCrashed is returned by every file operation after an injected crash.
var errCrashed = errors.New("slot: simulated crash")

// op runs one durable file-system step. Tests inject a hook that fails a
// chosen step; from then on every later step fails too, as if the
// process had died there (deferred clean-ups included).
func (s *DirSlots) op(name string, fn func() error) error {
	if s.crashed {
		return errCrashed
	}
	if s.hook != nil {
		if err := s.hook(name); err != nil {
			s.crashed = true
			return err
		}
	}
	return fn()
}

func (s *DirSlots) path(name string) string { return filepath.Join(s.root, name) }

// writeAtomic replaces root/name with data: write a temporary file,
// fsync it, rename it over name, fsync the directory.
func (s *DirSlots) writeAtomic(ctx context.Context, name string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tmp := s.path("." + name + ".tmp")
	if err := s.op("write "+name, func() error {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}); err != nil {
		return fmt.Errorf("slot: write %s: %w", name, err)
	}
	if err := s.op("rename "+name, func() error { return os.Rename(tmp, s.path(name)) }); err != nil {
		return fmt.Errorf("slot: replace %s: %w", name, err)
	}
	return s.syncRoot()
}

func (s *DirSlots) syncRoot() error {
	return s.op("sync root", func() error {
		d, err := os.Open(s.root)
		if err != nil {
			return err
		}
		err = d.Sync()
		if cerr := d.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("slot: sync %s: %w", s.root, err)
		}
		return nil
	})
}

func (s *DirSlots) removeAll(name string) error {
	return s.op("remove "+name, func() error {
		if err := os.RemoveAll(s.path(name)); err != nil {
			return fmt.Errorf("slot: remove %s: %w", name, err)
		}
		return nil
	})
}

func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
