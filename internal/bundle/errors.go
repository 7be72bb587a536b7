package bundle

import (
	"errors"
	"fmt"
)

var (
	// ErrUnsafeEntry is wrapped by every [UnsafeEntryError].
	ErrUnsafeEntry = errors.New("bundle: unsafe entry refused; rebuild the bundle with plain relative files, directories and contained symlinks")
	// ErrLimit is wrapped by every [LimitError].
	ErrLimit = errors.New("bundle: size limit exceeded; shrink the bundle or raise the device's bundle limits")
	// ErrFormat reports input that is not a tar or tar.gz archive.
	ErrFormat = errors.New("bundle: not a valid tar or tar.gz archive; build the bundle with tar (optionally gzip)")
	// ErrDestination reports a destination that is not a new or empty directory.
	ErrDestination = errors.New("bundle: destination must be a new or empty directory")
)

// UnsafeEntryError names an archive entry that was refused and why.
type UnsafeEntryError struct {
	Name   string // entry name as found in the archive (may be invalid UTF-8)
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("bundle: unsafe entry %q: %s", e.Name, e.Reason)
}

func (e *UnsafeEntryError) Unwrap() error { return ErrUnsafeEntry }

// LimitError names the limit that was exceeded.
type LimitError struct {
	Limit string // which field of [Limits]
	Max   int64  // its value
	Name  string // entry being read when the limit was hit, if any
}

func (e *LimitError) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("bundle: entry %q exceeds %s (%d): %v", e.Name, e.Limit, e.Max, ErrLimit)
	}
	return fmt.Sprintf("bundle: archive exceeds %s (%d): %v", e.Limit, e.Max, ErrLimit)
}

func (e *LimitError) Unwrap() error { return ErrLimit }

func unsafeEntry(name, reason string) error {
	return &UnsafeEntryError{Name: name, Reason: reason}
}
