// Package boundedfile is the one way ztota reads a whole file whose size
// it does not control (a configuration, a state file, a certificate, a
// key, cached metadata): it reads at most the caller's bound plus one byte
// and refuses the file when there is more, so that a huge or endless file
// (a FIFO, a device node, a runaway writer) costs no more than the bound.
package boundedfile

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge is a file holding more bytes than its reader allows.
var ErrTooLarge = errors.New("file too large")

// Read returns the whole content of the file at path, which must hold at
// most max bytes; a larger file is an error wrapping ErrTooLarge. Errors
// opening the file are returned unwrapped, so that a missing file still
// satisfies errors.Is(err, fs.ErrNotExist).
func Read(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: %w (larger than %d bytes)", path, ErrTooLarge, max)
	}
	return data, nil
}
