package slot

import (
	"context"
	"os"
	"time"
)

// Slot names. Every backend has exactly two slots.
const (
	A = "a"
	B = "b"
)

// ArtifactBundle is the only artifact type installed today: a tar or
// tar.gz application bundle (see package bundle).
const ArtifactBundle = "bundle"

// Meta describes what a slot holds. It is recorded when the slot is staged.
type Meta struct {
	Target         string    `json:"target"`          // TUF target path (≤ 1024 bytes)
	Name           string    `json:"name"`            // release name (≤ 256 bytes)
	Version        string    `json:"version"`         // release version (≤ 256 bytes)
	ReleaseCounter uint64    `json:"release_counter"` // anti-rollback counter of the release
	SHA256         string    `json:"sha256"`          // lowercase hex digest of the artifact, 64 characters
	Length         int64     `json:"length"`          // artifact bytes (1 ≤ Length ≤ MaxArtifactBytes)
	ArtifactType   string    `json:"artifact_type"`   // "bundle"; empty means "bundle" on Stage
	InstalledAt    time.Time `json:"installed_at"`    // set by Stage when zero
}

// State is the persistent A/B state.
//
// Invariants (checked when parsing): Active and Pending are "", "a" or
// "b"; they differ unless both are empty; a named slot has a Slots entry;
// BootCount is 0 unless Pending is set.
type State struct {
	Active    string          `json:"active"`     // committed slot, "" before the first commit
	Pending   string          `json:"pending"`    // slot on trial (boot-once), "" if none
	BootCount int             `json:"boot_count"` // boots of Pending so far (0 ≤ BootCount ≤ MaxBoots+1)
	MaxBoots  int             `json:"max_boots"`  // boots a pending slot gets before automatic rollback
	Slots     map[string]Meta `json:"slots"`      // contents of the staged slots
	// RolledBack is the slot last rolled back from, with the reason; they
	// let an agent restarted after a rollback still report it. SetPending
	// clears them.
	RolledBack     string `json:"rolled_back,omitempty"`
	RollbackReason string `json:"rollback_reason,omitempty"`
}

// BootDecision is what [Slots.Boot] decided.
type BootDecision struct {
	Slot      string // slot to run; "" when nothing is installed yet
	Dir       string // its directory (directory slots), else ""
	Meta      Meta   // its contents
	Trial     bool   // Slot is pending: health-check it, then Commit or Rollback
	BootCount int    // boots of the pending slot, this one included
	// RolledBack says this call rolled a pending slot back (boot counter
	// exhausted, or the slot failed verification); From and Reason say
	// which and why. Slot is then the active slot.
	RolledBack bool
	From       string
	Reason     string
}

// Slots is an A/B installation target. Directory slots ([DirSlots]) hold
// application bundles; bootloader-backed image slots can implement the
// same interface. Methods are safe to call from one process at a time.
//
// Life of an update: Stage into Inactive, SetPending, restart, Boot
// (which counts the boot and may roll back), health check, then Commit
// or Rollback. A crash at any instant leaves a state from which Boot
// returns a slot that verifies.
type Slots interface {
	// State returns the persistent state.
	State(ctx context.Context) (State, error)
	// Inactive names the slot Stage writes into.
	Inactive(ctx context.Context) (string, error)
	// Stage writes the verified artifact into the inactive slot. src is the
	// artifact file, read from offset 0 and never re-opened by path; Stage
	// hashes exactly the bytes it installs and refuses them with
	// ErrDigestMismatch, leaving the slot empty, when they differ from
	// meta.SHA256 or meta.Length. Refused while an update is pending.
	Stage(ctx context.Context, src *os.File, meta Meta) error
	// SetPending marks the staged inactive slot boot-once with BootCount 0.
	SetPending(ctx context.Context) error
	// Boot is called at every (re)start. With a pending slot it persists
	// BootCount+1 before anything else; past MaxBoots, or when the pending
	// slot fails verification, it rolls back. It verifies the slot it
	// returns.
	Boot(ctx context.Context) (BootDecision, error)
	// Commit makes the pending slot active.
	Commit(ctx context.Context) error
	// Rollback abandons the pending slot; the active slot stays.
	Rollback(ctx context.Context, reason string) error
	// Verify checks a slot's contents against what was staged.
	Verify(ctx context.Context, slot string) error
	// Dir is the directory a slot runs from, "" if it has none.
	Dir(slot string) string
}

// Other returns the other slot name, or "" for an invalid name.
func Other(slot string) string {
	switch slot {
	case A:
		return B
	case B:
		return A
	}
	return ""
}

func validSlot(s string) bool { return s == A || s == B }
