// Package diskspace tells how many bytes a file system can still take, so
// that the agent and the server refuse an install or an upload early and
// clearly instead of failing half-way through with a full disk.
package diskspace

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrInsufficient is wrapped by Check's error when space is short.
var ErrInsufficient = errors.New("not enough free disk space")

// Func reports the bytes available to an unprivileged writer in dir.
type Func func(dir string) (uint64, error)

// Free is the real Func, from statfs(2).
func Free(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Check returns an error wrapping ErrInsufficient when dir has less than
// need bytes free (free is Free when nil).
func Check(free Func, dir string, need uint64) error {
	if free == nil {
		free = Free
	}
	have, err := free(dir)
	if err != nil {
		return err
	}
	if have < need {
		return fmt.Errorf("%w in %s: need %d bytes, %d free; free some space and retry", ErrInsufficient, dir, need, have)
	}
	return nil
}
