package outbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/ztota/ztota/internal/report"
)

const (
	logName  = "outbox.log"
	tmpName  = "outbox.log.tmp"
	lockName = "outbox.lock"

	// MinBytes is the smallest size bound Open accepts: room for the
	// header and one largest report.
	MinBytes = int64(len(fileHeader)) + recHeader + MaxRecord
)

// Errors of this package; match them with errors.Is.
var (
	ErrFull      = errors.New("outbox: full: flush acknowledged reports to the server before adding more")
	ErrInvalid   = errors.New("outbox: invalid report entry")
	ErrDuplicate = errors.New("outbox: another report with this id is pending")
	ErrLocked    = errors.New("outbox: directory is in use by another process: run one agent per outbox directory")
	ErrCorrupt   = errors.New("outbox: outbox.log is not an outbox log: move it away to start an empty outbox")
	ErrClosed    = errors.New("outbox: closed")
)

// Entry is one pending report and its id.
type Entry struct {
	ID     string
	Signed report.Signed
}

// Outbox is an open outbox directory. It is safe for concurrent use by the
// goroutines of one process.
type Outbox struct {
	dir      string
	maxBytes int64
	dropped  int64
	lock     *os.File

	flushMu sync.Mutex // serialises Flush so that a batch is not sent twice at once

	mu      sync.Mutex
	f       *os.File // nil once closed
	size    int64    // bytes of outbox.log
	live    int64    // bytes of the 'R' records of pending entries
	pending []Entry  // in log order
	index   map[string]int64
	broken  error // a failed write could not be undone; reopen to recover
}

// Open opens or creates the outbox in dir (created with mode 0700 if
// missing), holding at most maxBytes (at least MinBytes). It drops a torn
// tail left by a crash (see Dropped).
func Open(ctx context.Context, dir string, maxBytes int64) (*Outbox, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if maxBytes < MinBytes {
		return nil, fmt.Errorf("outbox: size bound %d is below the minimum %d bytes", maxBytes, MinBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("outbox: creating directory: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, err
	}
	o := &Outbox{dir: dir, maxBytes: maxBytes, lock: lock, index: map[string]int64{}}
	if err := o.load(); err != nil {
		lock.Close()
		return nil, err
	}
	return o, nil
}

// load removes a stale temporary file, opens outbox.log and replays it.
func (o *Outbox) load() error {
	if err := os.Remove(filepath.Join(o.dir, tmpName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("outbox: removing stale %s: %w", tmpName, err)
	}
	f, err := os.OpenFile(filepath.Join(o.dir, logName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("outbox: opening log: %w", err)
	}
	o.f = f
	if err := o.replay(); err != nil {
		o.f.Close()
		o.f = nil
		return err
	}
	return nil
}

// replay reads the log into memory and truncates a torn tail.
func (o *Outbox) replay() error {
	st, err := o.f.Stat()
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	r := bufio.NewReader(io.NewSectionReader(o.f, 0, st.Size()))
	hdr := make([]byte, len(fileHeader))
	n, err := io.ReadFull(r, hdr)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("outbox: reading log: %w", err)
	}
	if !bytes.HasPrefix([]byte(fileHeader), hdr[:n]) {
		return ErrCorrupt
	}
	if n < len(fileHeader) { // new, or torn while being created
		return o.reset()
	}
	off := int64(len(fileHeader))
	for {
		rec, n, err := readRecord(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if !errors.Is(err, errRecord) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("outbox: reading log: %w", err)
			}
			o.dropped = st.Size() - off
			if err := o.f.Truncate(off); err != nil {
				return fmt.Errorf("outbox: truncating torn tail: %w", err)
			}
			if err := o.f.Sync(); err != nil {
				return fmt.Errorf("outbox: %w", err)
			}
			break
		}
		o.apply(rec, int64(n))
		off += int64(n)
	}
	o.size = off
	return nil
}

// readRecord reads one framed record and returns it with its encoded size.
// It returns io.EOF at a clean end, and an error wrapping errRecord or
// io.ErrUnexpectedEOF for a torn or corrupt record.
func readRecord(r *bufio.Reader) (record, int, error) {
	var hdr [recHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return record{}, 0, err
	}
	n, err := frameLen(hdr[:])
	if err != nil {
		return record{}, 0, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return record{}, 0, err
	}
	rec, err := decodeBody(hdr[:], body)
	return rec, recHeader + n, err
}

// apply updates the in-memory state with a record of encoded size n.
func (o *Outbox) apply(rec record, n int64) {
	switch rec.kind {
	case kindReport:
		if _, dup := o.index[rec.entry.ID]; dup {
			return // Add refuses duplicates; a duplicate here is a stray copy
		}
		o.pending = append(o.pending, rec.entry)
		o.index[rec.entry.ID] = n
		o.live += n
	case kindAck:
		o.removeAcked(rec.acks)
	}
}

// removeAcked drops ids from the pending list.
func (o *Outbox) removeAcked(ids []string) {
	gone := 0
	for _, id := range ids {
		if n, ok := o.index[id]; ok {
			delete(o.index, id)
			o.live -= n
			gone++
		}
	}
	if gone > 0 {
		o.pending = slices.DeleteFunc(o.pending, func(e Entry) bool { _, ok := o.index[e.ID]; return !ok })
	}
}

// Dropped returns how many bytes of a torn or corrupt tail Open discarded.
func (o *Outbox) Dropped() int64 { return o.dropped }

// Len returns the number of pending reports.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pending)
}

// Size returns the current size of the log in bytes.
func (o *Outbox) Size() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.size
}

// Close closes the log and releases the directory lock.
func (o *Outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return nil
	}
	err := o.f.Close()
	o.f = nil
	if lerr := o.lock.Close(); err == nil {
		err = lerr
	}
	return err
}

// usable returns the error that stops any operation, or nil. Called with mu held.
func (o *Outbox) usable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.f == nil {
		return ErrClosed
	}
	return o.broken
}
