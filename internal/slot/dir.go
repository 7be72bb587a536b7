package slot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ztota/ztota/internal/boundedfile"
	"github.com/ztota/ztota/internal/bundle"
)

// File names under the root of directory slots.
const (
	stateName  = "state.json"
	prevName   = "state.json.prev"
	stagingPfx = ".staging-"
)

func manifestName(slot string) string { return slot + ".manifest.json" }

// DirSlots keeps two application-bundle slots as directories under one
// root; see the package documentation for the layout and the crash
// argument.
type DirSlots struct {
	root     string
	maxBoots int
	lim      bundle.Limits
	now      func() time.Time

	mu      sync.Mutex
	hook    func(op string) error // tests: fail the named step
	crashed bool
}

var _ Slots = (*DirSlots)(nil)

// DirOption configures OpenDir.
type DirOption func(*DirSlots)

// WithLimits sets the bounds applied to staged bundles (default
// bundle.DefaultLimits).
func WithLimits(lim bundle.Limits) DirOption { return func(s *DirSlots) { s.lim = lim } }

// OpenDir opens (creating if needed) directory slots under root, removes
// what a crash left half-done (staging directories, temporary files) and
// checks that the state file can be read. maxBoots (1..100) is how many
// boots a pending slot gets before Boot rolls it back.
func OpenDir(ctx context.Context, root string, maxBoots int, opts ...DirOption) (*DirSlots, error) {
	if maxBoots < 1 || maxBoots > MaxBootsLimit {
		return nil, fmt.Errorf("slot: maxBoots %d out of range 1..%d; pick a small number such as 3", maxBoots, MaxBootsLimit)
	}
	if root == "" {
		return nil, errors.New("slot: empty root directory; configure where the slots live")
	}
	s := &DirSlots{root: root, maxBoots: maxBoots, lim: bundle.DefaultLimits, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("slot: create %s: %w", root, err)
	}
	if fi, err := os.Lstat(root); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("slot: %s is not a directory", root)
	}
	if err := s.cleanup(ctx); err != nil {
		return nil, err
	}
	if _, _, err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// cleanup removes leftovers of an interrupted Stage or state write.
func (s *DirSlots) cleanup(ctx context.Context) error {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return fmt.Errorf("slot: read %s: %w", s.root, err)
	}
	removed := false
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, stagingPfx) || strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".tmp") {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := s.removeAll(n); err != nil {
				return err
			}
			removed = true
		}
	}
	if removed {
		return s.syncRoot()
	}
	return nil
}

// load reads the state, falling back to the previous state file when
// the current one is missing or corrupt. It returns the state and the
// bytes to keep as the previous state on the next save.
func (s *DirSlots) load() (State, []byte, error) {
	cur, curErr := s.readState(stateName)
	if curErr == nil {
		return cur.st, cur.raw, nil
	}
	prev, prevErr := s.readState(prevName)
	if prevErr == nil {
		return prev.st, prev.raw, nil
	}
	if notExist(curErr) && notExist(prevErr) {
		return State{MaxBoots: s.maxBoots, Slots: map[string]Meta{}}, nil, nil
	}
	return State{}, nil, &StateError{File: filepath.Join(s.root, stateName),
		Reason: fmt.Sprintf("unreadable (%v) and so is %s (%v); restore the slot root from a backup or re-provision the device", curErr, prevName, prevErr)}
}

type loaded struct {
	st  State
	raw []byte
}

func (s *DirSlots) readState(name string) (loaded, error) {
	b, err := boundedfile.Read(s.path(name), MaxStateBytes)
	if err != nil {
		return loaded{}, err
	}
	st, err := ParseState(b)
	if err != nil {
		return loaded{}, &StateError{File: filepath.Join(s.root, name), Reason: err.Error()}
	}
	st.MaxBoots = s.maxBoots // the configuration wins over the recorded value
	return loaded{st, b}, nil
}

// save persists st; the state it replaces is first kept as the previous
// state file, so that at every instant one of the two files is whole.
func (s *DirSlots) save(ctx context.Context, st State, prevRaw []byte) error {
	st.MaxBoots = s.maxBoots
	data, err := MarshalState(st)
	if err != nil {
		return fmt.Errorf("slot: refusing to save an invalid state: %w", err)
	}
	if prevRaw != nil {
		if err := s.writeAtomic(ctx, prevName, prevRaw); err != nil {
			return err
		}
	}
	return s.writeAtomic(ctx, stateName, data)
}

// State implements Slots.
func (s *DirSlots) State(ctx context.Context) (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return State{}, err
	}
	st, _, err := s.load()
	return st.clone(), err
}

// Inactive implements Slots.
func (s *DirSlots) Inactive(ctx context.Context) (string, error) {
	st, err := s.State(ctx)
	if err != nil {
		return "", err
	}
	return inactive(st), nil
}

// Dir implements Slots.
func (s *DirSlots) Dir(slot string) string {
	if !validSlot(slot) {
		return ""
	}
	return s.path(slot)
}

// Verify implements Slots: the slot's manifest must belong to the
// artifact recorded in the state, and the tree must match it exactly.
func (s *DirSlots) Verify(ctx context.Context, slot string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, _, err := s.load()
	if err != nil {
		return err
	}
	return s.verify(ctx, st, slot)
}

func (s *DirSlots) verify(ctx context.Context, st State, slot string) error {
	if !validSlot(slot) {
		return fmt.Errorf("slot: invalid slot name %q", slot)
	}
	meta, ok := st.Slots[slot]
	if !ok {
		return fmt.Errorf("slot %s: %w", slot, ErrNotInstalled)
	}
	b, err := boundedfile.Read(s.path(manifestName(slot)), MaxManifestBytes)
	if err != nil {
		return &TamperedError{Slot: slot, Reason: fmt.Sprintf("manifest: %v", err)}
	}
	m, err := ParseManifest(b)
	if err != nil {
		return &TamperedError{Slot: slot, Reason: fmt.Sprintf("manifest: %v", err)}
	}
	if m.Slot != slot || m.ArtifactSHA256 != meta.SHA256 {
		return &TamperedError{Slot: slot, Reason: "manifest belongs to another slot or artifact"}
	}
	return verifyTree(ctx, slot, s.path(slot), m)
}

// Stage implements Slots.
func (s *DirSlots) Stage(ctx context.Context, src *os.File, meta Meta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := CheckArtifactType(meta.ArtifactType); err != nil {
		return err
	}
	meta.ArtifactType = ArtifactBundle
	if err := meta.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadMeta, err)
	}
	if src == nil {
		return fmt.Errorf("%w: no artifact file", ErrBadMeta)
	}
	st, prevRaw, err := s.load()
	if err != nil {
		return err
	}
	if st.Pending != "" {
		return ErrPending
	}
	x := inactive(st)

	// 1. Forget the old contents of x in both state files before touching it.
	cleared := st.clone()
	delete(cleared.Slots, x)
	if err := s.save(ctx, cleared, prevRaw); err != nil {
		return err
	}
	clearedRaw, err := MarshalState(withMax(cleared, s.maxBoots))
	if err != nil {
		return err
	}
	// 2. Remove the old inactive slot and any leftovers.
	staging := stagingPfx + x
	for _, n := range []string{staging, manifestName(x), x} {
		if err := s.removeAll(n); err != nil {
			return err
		}
	}
	if err := s.syncRoot(); err != nil {
		return err
	}
	// 3. Extract into staging while hashing exactly the bytes extracted.
	entries, err := s.extract(ctx, src, meta, staging)
	if err != nil {
		if !s.crashed {
			os.RemoveAll(s.path(staging))
		}
		return err
	}
	// 4. Manifest, then the slot directory, then the state naming it.
	data, err := marshalManifest(manifestFrom(x, meta.SHA256, entries))
	if err != nil {
		return err
	}
	if err := s.writeAtomic(ctx, manifestName(x), data); err != nil {
		return err
	}
	if err := s.op("rename "+staging, func() error { return os.Rename(s.path(staging), s.path(x)) }); err != nil {
		return fmt.Errorf("slot: install %s: %w", x, err)
	}
	if err := s.syncRoot(); err != nil {
		return err
	}
	if meta.InstalledAt.IsZero() {
		meta.InstalledAt = s.now().UTC().Truncate(time.Second)
	}
	staged := cleared.clone()
	staged.Slots[x] = meta
	return s.save(ctx, staged, clearedRaw)
}

func withMax(st State, max int) State {
	st.MaxBoots = max
	return st
}

// extract reads src from offset 0 through a hash into a bundle
// extraction, then drains the rest of the declared length, and compares.
func (s *DirSlots) extract(ctx context.Context, src *os.File, meta Meta, staging string) ([]bundle.Entry, error) {
	var one [1]byte
	if n, _ := src.ReadAt(one[:], meta.Length); n != 0 {
		return nil, fmt.Errorf("%w: artifact file is longer than the verified length %d", ErrDigestMismatch, meta.Length)
	}
	h := sha256.New()
	sr := io.NewSectionReader(src, 0, meta.Length)
	tee := io.TeeReader(sr, h)
	var stats bundle.Stats
	var xerr error
	err := s.op("extract "+staging, func() error {
		stats, xerr = bundle.Extract(ctx, tee, s.path(staging), s.lim)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, derr := io.Copy(io.Discard, tee); derr != nil {
		return nil, fmt.Errorf("slot: read artifact: %w", derr)
	}
	read, _ := sr.Seek(0, io.SeekCurrent)
	if read != meta.Length {
		return nil, fmt.Errorf("%w: artifact file holds %d bytes, verified length is %d", ErrDigestMismatch, read, meta.Length)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != meta.SHA256 {
		return nil, fmt.Errorf("%w: sha256 %s, verified %s", ErrDigestMismatch, got, meta.SHA256)
	}
	if xerr != nil {
		return nil, fmt.Errorf("slot: extract bundle into slot: %w", xerr)
	}
	return stats.Entries, nil
}

// SetPending implements Slots.
func (s *DirSlots) SetPending(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, prevRaw, err := s.load()
	if err != nil {
		return err
	}
	if st.Pending != "" {
		return ErrPending
	}
	if err := s.verify(ctx, st, inactive(st)); err != nil {
		return err
	}
	return s.save(ctx, pending(st), prevRaw)
}

// Commit implements Slots.
func (s *DirSlots) Commit(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, prevRaw, err := s.load()
	if err != nil {
		return err
	}
	if st.Pending == "" {
		return ErrNoPending
	}
	return s.save(ctx, committed(st), prevRaw)
}

// Rollback implements Slots.
func (s *DirSlots) Rollback(ctx context.Context, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, prevRaw, err := s.load()
	if err != nil {
		return err
	}
	if st.Pending == "" {
		return ErrNoPending
	}
	return s.save(ctx, rolledBack(st, reason), prevRaw)
}

// Boot implements Slots. On error the decision still reports a rollback
// this call made, so that the caller can report it.
func (s *DirSlots) Boot(ctx context.Context) (BootDecision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, prevRaw, err := s.load()
	if err != nil {
		return BootDecision{}, err
	}
	var d BootDecision
	if st.Pending != "" {
		next, exhausted := counted(st)
		reason := ""
		if exhausted {
			reason = fmt.Sprintf("boot counter exhausted: %d boots without a commit", st.BootCount)
		}
		if err := s.save(ctx, next, prevRaw); err != nil { // persisted before anything runs
			return BootDecision{}, err
		}
		prevRaw, err = MarshalState(withMax(next, s.maxBoots))
		if err != nil {
			return BootDecision{}, err
		}
		st = next
		if !exhausted {
			if verr := s.verify(ctx, st, st.Pending); verr != nil {
				if ctx.Err() != nil {
					return BootDecision{}, ctx.Err()
				}
				reason = fmt.Sprintf("pending slot failed verification: %v", verr)
			}
		}
		if reason != "" {
			d = BootDecision{RolledBack: true, From: st.Pending, Reason: reason}
			st = rolledBack(st, reason)
			if err := s.save(ctx, st, prevRaw); err != nil {
				return BootDecision{}, err
			}
		} else {
			d.Trial, d.BootCount = true, st.BootCount
			d.Slot = st.Pending
		}
	}
	if d.Slot == "" {
		d.Slot = st.Active
	}
	if d.Slot == "" {
		return d, nil // nothing installed yet
	}
	if !d.Trial {
		if err := s.verify(ctx, st, d.Slot); err != nil {
			return d, err
		}
	}
	d.Dir, d.Meta = s.path(d.Slot), st.Slots[d.Slot]
	return d, nil
}
