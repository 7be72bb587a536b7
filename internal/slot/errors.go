package slot

import (
	"errors"
	"fmt"
)

var (
	// ErrDigestMismatch: the artifact bytes differ from the verified digest or length.
	ErrDigestMismatch = errors.New("slot: artifact bytes differ from the verified digest; the file changed after verification, download and verify it again")
	// ErrUnsupported: the artifact type cannot be installed by this backend.
	ErrUnsupported = errors.New("slot: unsupported artifact type; this device installs only \"bundle\" artifacts")
	// ErrPending: an update is already pending.
	ErrPending = errors.New("slot: an update is pending; Boot and Commit or Rollback it first")
	// ErrNoPending: there is no pending update to commit or roll back.
	ErrNoPending = errors.New("slot: no update is pending")
	// ErrNotInstalled: the slot holds nothing staged.
	ErrNotInstalled = errors.New("slot: slot holds no staged artifact; Stage one first")
	// ErrTampered is wrapped by every [TamperedError].
	ErrTampered = errors.New("slot: slot contents differ from what was staged")
	// ErrBadState is wrapped by every [StateError].
	ErrBadState = errors.New("slot: invalid slot state")
	// ErrBadMeta: the metadata passed to Stage is invalid.
	ErrBadMeta = errors.New("slot: invalid artifact metadata")
)

// TamperedError names the first difference Verify found.
type TamperedError struct {
	Slot, Path, Reason string
}

func (e *TamperedError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("slot %s: %s: %v; stage the release again", e.Slot, e.Reason, ErrTampered)
	}
	return fmt.Sprintf("slot %s: %q: %s: %v; stage the release again", e.Slot, e.Path, e.Reason, ErrTampered)
}

func (e *TamperedError) Unwrap() error { return ErrTampered }

// StateError reports a state or manifest file that cannot be used.
type StateError struct {
	File   string
	Reason string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("slot: %s: %s: %v", e.File, e.Reason, ErrBadState)
}

func (e *StateError) Unwrap() error { return ErrBadState }

// CheckArtifactType returns nil for the artifact types this package can
// install ("bundle", or "" meaning bundle) and ErrUnsupported otherwise.
func CheckArtifactType(t string) error {
	if t == "" || t == ArtifactBundle {
		return nil
	}
	return fmt.Errorf("%w (got %q)", ErrUnsupported, t)
}
