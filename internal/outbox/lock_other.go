//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package outbox

import (
	"fmt"
	"os"
)

// lockDir opens the lock file. Without flock, only one process must use
// the directory.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("outbox: opening lock file: %w", err)
	}
	return f, nil
}
