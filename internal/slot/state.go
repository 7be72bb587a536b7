package slot

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"unicode/utf8"
)

// Bounds on what the state file and Stage accept.
const (
	StateVersion     = 1
	MaxStateBytes    = 64 << 10
	MaxBootsLimit    = 100
	MaxArtifactBytes = 1 << 40
	maxTargetLen     = 1024
	maxNameLen       = 256
	maxReasonLen     = 1024
)

// stateFile is the on-disk form of State.
type stateFile struct {
	Version int `json:"version"`
	State
}

// ParseState parses a state file strictly: bounded size, valid UTF-8, no
// duplicate or unknown keys, version 1, and the invariants of [State].
func ParseState(data []byte) (State, error) {
	if len(data) > MaxStateBytes {
		return State{}, fmt.Errorf("larger than %d bytes", MaxStateBytes)
	}
	var f stateFile
	if err := decodeStrict(data, &f); err != nil {
		return State{}, err
	}
	if f.Version != StateVersion {
		return State{}, fmt.Errorf("version %d, want %d", f.Version, StateVersion)
	}
	if err := f.State.validate(); err != nil {
		return State{}, err
	}
	if f.Slots == nil {
		f.Slots = map[string]Meta{}
	}
	return f.State, nil
}

// MarshalState is the inverse of ParseState.
func MarshalState(st State) ([]byte, error) {
	if err := st.validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(stateFile{Version: StateVersion, State: st}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func (st State) validate() error {
	for _, s := range []string{st.Active, st.Pending, st.RolledBack} {
		if s != "" && !validSlot(s) {
			return fmt.Errorf("slot name %q: want %q or %q", s, A, B)
		}
	}
	if st.Pending != "" && st.Pending == st.Active {
		return fmt.Errorf("slot %q is both active and pending", st.Pending)
	}
	if st.MaxBoots < 1 || st.MaxBoots > MaxBootsLimit {
		return fmt.Errorf("max_boots %d out of range 1..%d", st.MaxBoots, MaxBootsLimit)
	}
	if st.BootCount < 0 || st.BootCount > MaxBootsLimit+1 {
		return fmt.Errorf("boot_count %d out of range", st.BootCount)
	}
	if st.Pending == "" && st.BootCount != 0 {
		return fmt.Errorf("boot_count %d without a pending slot", st.BootCount)
	}
	if len(st.RollbackReason) > maxReasonLen || !utf8.ValidString(st.RollbackReason) {
		return fmt.Errorf("rollback_reason too long or not UTF-8")
	}
	for name, m := range st.Slots {
		if !validSlot(name) {
			return fmt.Errorf("slot name %q: want %q or %q", name, A, B)
		}
		if err := m.validate(); err != nil {
			return fmt.Errorf("slot %s: %w", name, err)
		}
	}
	for _, s := range []string{st.Active, st.Pending} {
		if _, ok := st.Slots[s]; s != "" && !ok {
			return fmt.Errorf("slot %q is named but holds nothing", s)
		}
	}
	return nil
}

func (m Meta) validate() error {
	switch {
	case len(m.Target) > maxTargetLen || len(m.Name) > maxNameLen || len(m.Version) > maxNameLen:
		return fmt.Errorf("target, name or version too long")
	case !utf8.ValidString(m.Target) || !utf8.ValidString(m.Name) || !utf8.ValidString(m.Version):
		return fmt.Errorf("target, name or version not UTF-8")
	case !isHexDigest(m.SHA256):
		return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", m.SHA256)
	case m.Length < 1 || m.Length > MaxArtifactBytes:
		return fmt.Errorf("length %d out of range 1..%d", m.Length, int64(MaxArtifactBytes))
	}
	return CheckArtifactType(m.ArtifactType)
}

func isHexDigest(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func (st State) clone() State {
	st.Slots = maps.Clone(st.Slots)
	if st.Slots == nil {
		st.Slots = map[string]Meta{}
	}
	return st
}

// The transitions below are pure: they take a state and return the next.

// inactive names the slot Stage writes into.
func inactive(st State) string {
	if st.Active == "" {
		return A
	}
	return Other(st.Active)
}

// counted records one more boot of the pending slot and reports whether
// the counter ran out.
func counted(st State) (State, bool) {
	st = st.clone()
	st.BootCount++
	return st, st.BootCount > st.MaxBoots
}

// rolledBack abandons the pending slot.
func rolledBack(st State, reason string) State {
	st = st.clone()
	st.RolledBack, st.RollbackReason = st.Pending, boundReason(reason)
	st.Pending, st.BootCount = "", 0
	return st
}

// committed makes the pending slot active.
func committed(st State) State {
	st = st.clone()
	st.Active, st.Pending, st.BootCount = st.Pending, "", 0
	st.RolledBack, st.RollbackReason = "", ""
	return st
}

// pending marks the inactive slot boot-once.
func pending(st State) State {
	st = st.clone()
	st.Pending, st.BootCount = inactive(st), 0
	st.RolledBack, st.RollbackReason = "", ""
	return st
}

func boundReason(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > maxReasonLen {
		s = strings.ToValidUTF8(s[:maxReasonLen], "")
	}
	return s
}
