package outbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/ztota/ztota/internal/report"
)

// Add appends a signed report under id and fsyncs it before returning.
// Adding an id that is already pending with identical content does nothing;
// with other content it fails with ErrDuplicate. When the report does not
// fit in the size bound even after compaction, Add returns ErrFull.
func (o *Outbox) Add(ctx context.Context, s report.Signed, id string) error {
	e := Entry{ID: id, Signed: report.Signed{Payload: clone(s.Payload), Sig: clone(s.Sig)}}
	if err := checkEntry(e); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.usable(ctx); err != nil {
		return err
	}
	if _, ok := o.index[id]; ok {
		i := slices.IndexFunc(o.pending, func(p Entry) bool { return p.ID == id })
		if p := o.pending[i].Signed; bytes.Equal(p.Payload, s.Payload) && bytes.Equal(p.Sig, s.Sig) {
			return nil
		}
		return fmt.Errorf("%w: %q", ErrDuplicate, id)
	}
	rec := appendReport(nil, e)
	if o.size+int64(len(rec)) > o.maxBytes && o.size > int64(len(fileHeader))+o.live {
		if err := o.compact(o.pending); err != nil {
			return err
		}
	}
	if o.size+int64(len(rec)) > o.maxBytes {
		return fmt.Errorf("%w: %d of %d bytes used by %d pending reports", ErrFull, o.size, o.maxBytes, len(o.pending))
	}
	if err := o.append(rec); err != nil {
		return err
	}
	o.pending = append(o.pending, e)
	o.index[id] = int64(len(rec))
	o.live += int64(len(rec))
	return nil
}

// Pending returns up to max pending entries (all if max ≤ 0), oldest first.
// The entries are copies.
func (o *Outbox) Pending(ctx context.Context, max int) ([]Entry, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.usable(ctx); err != nil {
		return nil, err
	}
	n := len(o.pending)
	if max > 0 && max < n {
		n = max
	}
	out := make([]Entry, n)
	for i, e := range o.pending[:n] {
		out[i] = Entry{ID: e.ID, Signed: report.Signed{Payload: clone(e.Signed.Payload), Sig: clone(e.Signed.Sig)}}
	}
	return out, nil
}

// Ack records that the server has stored the reports with these ids; they
// are not returned by Pending again. Unknown ids are ignored. The record is
// fsynced before Ack returns.
func (o *Outbox) Ack(ctx context.Context, ids []string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.usable(ctx); err != nil {
		return err
	}
	var acked []string
	seen := make(map[string]bool, len(ids))
	var freed int64
	for _, id := range ids {
		if n, ok := o.index[id]; ok && !seen[id] {
			seen[id] = true
			acked = append(acked, id)
			freed += n
		}
	}
	if len(acked) == 0 {
		return nil
	}
	rest := slices.DeleteFunc(slices.Clone(o.pending), func(e Entry) bool { return seen[e.ID] })
	rec := appendAcks(nil, acked)
	dead := o.size + int64(len(rec)) - int64(len(fileHeader)) - (o.live - freed)
	if len(rest) == 0 || o.size+int64(len(rec)) > o.maxBytes || dead > o.live-freed {
		return o.compact(rest)
	}
	if err := o.append(rec); err != nil {
		return err
	}
	o.removeAcked(acked)
	return nil
}

// Evict removes pending reports that will never be sent: the agent evicts
// the oldest progress reports to make room for a report that must not be
// lost (a terminal one) when the outbox is full. The log records them as
// Ack does; unknown ids are ignored.
func (o *Outbox) Evict(ctx context.Context, ids []string) error { return o.Ack(ctx, ids) }

// Flush sends the pending entries in batches of at most batch (1 to 1000)
// with send, acknowledging each batch send accepts, until none are left, send
// fails or ctx ends. It returns how many entries were acknowledged. Flushes
// run one at a time; Add may run meanwhile.
func (o *Outbox) Flush(ctx context.Context, batch int, send func(ctx context.Context, batch []Entry) error) (int, error) {
	o.flushMu.Lock()
	defer o.flushMu.Unlock()
	batch = min(max(batch, 1), 1000)
	done := 0
	for {
		entries, err := o.Pending(ctx, batch)
		if err != nil || len(entries) == 0 {
			return done, err
		}
		if err := send(ctx, entries); err != nil {
			return done, fmt.Errorf("outbox: sending %d reports (they stay pending): %w", len(entries), err)
		}
		ids := make([]string, len(entries))
		for i, e := range entries {
			ids[i] = e.ID
		}
		if err := o.Ack(ctx, ids); err != nil {
			return done, err
		}
		done += len(entries)
	}
}

// append writes rec at the end of the log and fsyncs. On failure it cuts
// the log back so that no partial record stays behind. Called with mu held.
func (o *Outbox) append(rec []byte) error {
	_, err := o.f.WriteAt(rec, o.size)
	if err == nil {
		err = o.f.Sync()
	}
	if err != nil {
		if terr := o.f.Truncate(o.size); terr != nil {
			o.broken = fmt.Errorf("outbox: a failed write could not be undone (%v): reopen the outbox", terr)
		}
		return fmt.Errorf("outbox: writing log: %w", err)
	}
	o.size += int64(len(rec))
	return nil
}

// compact rewrites the log to hold exactly keep, atomically. Called with
// mu held; on failure the old log and state stay in place.
func (o *Outbox) compact(keep []Entry) error {
	buf := []byte(fileHeader)
	index := make(map[string]int64, len(keep))
	var live int64
	for _, e := range keep {
		n := len(buf)
		buf = appendReport(buf, e)
		index[e.ID] = int64(len(buf) - n)
		live += int64(len(buf) - n)
	}
	tmp := filepath.Join(o.dir, tmpName)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("outbox: compacting: %w", err)
	}
	if _, err = f.Write(buf); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(o.dir, logName))
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("outbox: compacting: %w", err)
	}
	o.f.Close()
	o.f, o.size, o.live, o.index = f, int64(len(buf)), live, index
	o.pending = slices.Clone(keep)
	o.broken = nil
	if err := syncDir(o.dir); err != nil {
		return fmt.Errorf("outbox: compacted, but the directory could not be synced: %w", err)
	}
	return nil
}

// reset makes the log an empty log (used for a new or torn-at-creation file).
func (o *Outbox) reset() error {
	return o.compact(nil)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
