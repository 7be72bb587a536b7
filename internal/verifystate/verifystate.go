// Package verifystate is the state an offline certificate verifier keeps
// between runs, so that what it has seen can never be taken back: the
// newest certifier revocation list it verified and the newest
// transparency-log checkpoint. With it, an older (still unexpired)
// revocation list that does not yet revoke a certificate is refused
// (attest.ErrRollback), and so is a log checkpoint that is not proved
// consistent with the recorded one (certverify.ErrLogInconsistent).
//
// The file is JSON, read with the one strict decoder and written with
// atomicfile, under an exclusive lock (Update), and it only moves forward:
// a list of a lower version or a smaller checkpoint never replaces a
// recorded one (ErrBackwards). `ztota verify --state FILE` uses it; the
// device agent can keep the same state.
//
//	{"format": 1,
//	 "revocations": {"version": 2, "issued": ..., "expires": ..., "entries": [...]},
//	 "checkpoint": {"origin": "ztota-certd/log", "size": 12, "hash": "<base64>"}}
package verifystate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ztota/ztota/internal/atomicfile"
	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/boundedfile"
	"github.com/ztota/ztota/internal/certverify"
	"github.com/ztota/ztota/internal/strictjson"
	"github.com/ztota/ztota/internal/translog"
)

// Format is the state file's format version.
const Format = 1

// MaxSize bounds a state file: one revocation list and a checkpoint.
const MaxSize = attest.MaxRevocationsSize + 64<<10

// Errors a caller may tell apart.
var (
	// ErrBackwards is an attempt to record an older list or checkpoint
	// than the recorded one.
	ErrBackwards = errors.New("verifier state only moves forward")
	// ErrCorrupt is a state file that cannot be read as a state.
	ErrCorrupt = errors.New("verifier state file is corrupt")
)

// Checkpoint is a recorded log checkpoint (translog.Checkpoint with JSON
// names).
type Checkpoint struct {
	Origin string    `json:"origin"`
	Size   int64     `json:"size"`
	Hash   tlog.Hash `json:"hash"`
}

// State is what a verifier has seen.
type State struct {
	Format      int                    `json:"format"`
	Revocations *attest.RevocationList `json:"revocations,omitempty"`
	Checkpoint  *Checkpoint            `json:"checkpoint,omitempty"`
}

// Load reads the state at path; a missing file is the empty state.
func Load(path string) (*State, error) {
	data, err := boundedfile.Read(path, MaxSize)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &State{Format: Format}, nil
	case errors.Is(err, boundedfile.ErrTooLarge):
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	case err != nil:
		return nil, err
	}
	return parse(data)
}

func parse(data []byte) (*State, error) {
	var s State
	if err := strictjson.DecodeUnique(data, &s, 16); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if s.Format != Format {
		return nil, fmt.Errorf("%w: format %d, want %d", ErrCorrupt, s.Format, Format)
	}
	if l := s.Revocations; l != nil && l.Version < 1 {
		return nil, fmt.Errorf("%w: revocation list version %d", ErrCorrupt, l.Version)
	}
	if c := s.Checkpoint; c != nil && (c.Origin == "" || c.Size < 0) {
		return nil, fmt.Errorf("%w: checkpoint of origin %q and size %d", ErrCorrupt, c.Origin, c.Size)
	}
	return &s, nil
}

// Apply makes o check against the recorded state: the recorded list and
// checkpoint become o's previous ones.
func (s *State) Apply(o *certverify.Options) {
	o.PrevRevocations = s.Revocations
	if c := s.Checkpoint; c != nil {
		o.PrevCheckpoint = &translog.Checkpoint{Origin: c.Origin, Size: c.Size, Hash: c.Hash}
	}
}

// Advance records what rep verified (certverify fills it as far as the
// checks passed, also when a later check failed). It refuses to move
// backwards: a lower list version or a smaller checkpoint of the same log
// is ErrBackwards, as is a checkpoint of another log.
func (s *State) Advance(rep *certverify.Report) error {
	if rep == nil {
		return nil
	}
	l, c := rep.Revocations, rep.NewestCheckpoint
	if l != nil && s.Revocations != nil && l.Version < s.Revocations.Version {
		return fmt.Errorf("%w: revocation list version %d after version %d", ErrBackwards, l.Version, s.Revocations.Version)
	}
	if p := s.Checkpoint; c != nil && p != nil && (c.Origin != p.Origin || c.Size < p.Size) {
		return fmt.Errorf("%w: checkpoint %s/%d after %s/%d", ErrBackwards, c.Origin, c.Size, p.Origin, p.Size)
	}
	if l != nil {
		s.Revocations = l
	}
	if c != nil {
		s.Checkpoint = &Checkpoint{Origin: c.Origin, Size: c.Size, Hash: c.Hash}
	}
	return nil
}

func (s *State) marshal() ([]byte, error) {
	s.Format = Format
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Update runs fn on the state at path under an exclusive lock and writes
// the state back (atomically, directory fsynced) if fn changed it, also
// when fn returns an error: a verification that failed may still have
// verified a newer revocation list (the one that revokes the certificate).
// fn's error is returned.
func Update(path string, fn func(s *State) error) error {
	unlock, err := lock(path)
	if err != nil {
		return fmt.Errorf("verifier state: %w", err)
	}
	defer unlock()
	s, err := Load(path)
	if err != nil {
		return fmt.Errorf("verifier state: %w", err)
	}
	before, err := s.marshal()
	if err != nil {
		return err
	}
	ferr := fn(s)
	after, err := s.marshal()
	if err != nil {
		return err
	}
	if !bytes.Equal(before, after) {
		if err := atomicfile.WriteFile(path, after, 0o600); err != nil {
			return errors.Join(ferr, fmt.Errorf("verifier state: %w", err))
		}
	}
	return ferr
}
