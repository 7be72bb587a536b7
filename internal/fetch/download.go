package fetch

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"os"
	"time"
)

// Result describes a successful Download.
type Result struct {
	Bytes       int64  // bytes of the verified artifact now in dst (= Want.Length)
	Transferred int64  // body bytes received from mirrors during this call
	Resumed     bool   // the artifact was completed from bytes held before the final response
	Attempts    int    // HTTP attempts made (0 when dst already held the artifact)
	Mirror      string // mirror that completed it ("" when no request was needed)
}

// Download writes the artifact into dst, an *os.File opened read-write
// (not append-only) on a regular file. If dst already holds n bytes (an
// earlier interrupted attempt), it hashes those from the descriptor and
// resumes with "Range: bytes=n-"; a mirror that ignores the range (200)
// restarts from 0 and a 416 restarts from 0. It never accepts more than
// want.Length bytes, verifies sha256 and length at the end, truncates dst to
// 0 on a mismatch, and fsyncs dst before returning.
//
// Errors: *MirrorErrors (matching ErrAllMirrorsFailed and the last cause)
// when no attempt succeeded; a cause matching ErrSlow when Options.Deadline
// passed; ctx's cause when ctx ended; ErrInvalidOptions; or a local I/O
// error on dst, which stops the download at once.
func Download(ctx context.Context, dst *os.File, want Want, opts Options) (Result, error) {
	if dst == nil {
		return Result{}, invalid("Download needs an open destination file, got nil")
	}
	if err := want.validate(); err != nil {
		return Result{}, err
	}
	s, err := opts.settings(want)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, s.deadline,
		fmt.Errorf("%w: the whole download took longer than its deadline of %s (%w)", ErrSlow, s.deadline, context.DeadlineExceeded))
	defer cancel()
	d := &download{dst: dst, want: want, s: s, h: sha256.New(), lastProgress: -1}
	return d.run(ctx)
}

// download is the state of one Download call: dst holds exactly off bytes,
// and h has hashed exactly those.
type download struct {
	dst          *os.File
	want         Want
	s            settings
	h            hash.Hash
	off          int64
	base         int64 // offset at which the body of the current response starts
	transferred  int64
	lastProgress int64
}

func (d *download) run(ctx context.Context) (Result, error) {
	if err := d.adopt(ctx); err != nil {
		return Result{}, err
	}
	res := Result{}
	if d.off == d.want.Length {
		d.base = d.off
		if err := d.finish(); err == nil {
			return d.result(res), nil
		} else if !errors.Is(err, ErrHashMismatch) {
			return Result{}, err
		}
		if err := d.reset(); err != nil {
			return Result{}, err
		}
	}

	me := &MirrorErrors{}
	dropped := make([]bool, len(d.s.mirrors))
	next, round := 0, 0
	for res.Attempts < d.s.maxAttempts {
		i, wrapped, ok := pick(next, dropped)
		if !ok {
			me.Dropped = true
			break
		}
		if wrapped {
			round++
			if err := sleep(ctx, backoffFor(d.s.backoff, round)); err != nil {
				return Result{}, d.stopped(ctx)
			}
		}
		res.Attempts++
		mirror := d.s.mirrors[i]
		drop, err := d.attempt(ctx, mirror)
		if err == nil {
			if err = d.finish(); err == nil {
				res.Mirror = mirror
				return d.result(res), nil
			}
			if errors.Is(err, ErrHashMismatch) {
				// From offset 0 the wrong bytes are this mirror's fault; a
				// resumed artifact may owe its bad prefix to someone else.
				drop = d.base == 0
				if rerr := d.reset(); rerr != nil {
					return Result{}, rerr
				}
			}
		}
		var le *localError
		if errors.As(err, &le) {
			return Result{}, err
		}
		if ctx.Err() != nil {
			return Result{}, d.stopped(ctx)
		}
		me.Causes = append(me.Causes, MirrorError{Attempt: res.Attempts, Mirror: mirror, Err: err})
		dropped[i] = dropped[i] || drop
		next = i + 1
	}
	if _, _, ok := pick(0, dropped); !ok {
		me.Dropped = true
	}
	return Result{}, me
}

// stopped is the error for a download ended by ctx: the caller's cause, or
// the deadline's (which matches ErrSlow).
func (d *download) stopped(ctx context.Context) error {
	return fmt.Errorf("fetch: download stopped with %d of %d bytes held: %w", d.off, d.want.Length, context.Cause(ctx))
}

func (d *download) result(r Result) Result {
	r.Bytes = d.off
	r.Transferred = d.transferred
	r.Resumed = d.base > 0
	d.report(true)
	return r
}

// pick returns the first mirror at or after from (cyclically) that is not
// dropped, and whether reaching it went past the end of the list.
func pick(from int, dropped []bool) (idx int, wrapped, ok bool) {
	n := len(dropped)
	for k := range n {
		if j := (from + k) % n; !dropped[j] {
			return j, from+k >= n, true
		}
	}
	return 0, false, false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// adopt takes what dst already holds as the resume point: it hashes a
// prefix no longer than the artifact, and discards anything longer.
func (d *download) adopt(ctx context.Context) error {
	fi, err := d.dst.Stat()
	if err != nil {
		return local("fetch: stat %s: %w; check the slot storage", d.dst.Name(), err)
	}
	if !fi.Mode().IsRegular() {
		return invalid("destination %s is not a regular file", d.dst.Name())
	}
	if fi.Size() > d.want.Length {
		return d.reset()
	}
	n, err := hashAt(ctx, d.dst, fi.Size(), d.h)
	if err != nil {
		return err
	}
	d.off = n
	if n != fi.Size() {
		return d.reset() // the file shrank under us; start clean
	}
	return nil
}

// reset empties dst and the running hash.
func (d *download) reset() error {
	if err := d.dst.Truncate(0); err != nil {
		return local("fetch: truncating %s: %w; check the slot storage", d.dst.Name(), err)
	}
	d.h.Reset()
	d.off, d.base = 0, 0
	return nil
}

// write appends p at off, hashing what is written.
func (d *download) write(p []byte) error {
	var err error
	if d.s.beforeWrite != nil {
		err = d.s.beforeWrite(d.off, len(p))
	}
	if err == nil {
		_, err = d.dst.WriteAt(p, d.off)
	}
	if err != nil {
		return local("fetch: writing %s at byte %d: %w; free space in the slot area (or open it read-write, not append) and retry", d.dst.Name(), d.off, err)
	}
	d.h.Write(p)
	d.off += int64(len(p))
	d.transferred += int64(len(p))
	d.report(false)
	return nil
}

// report calls Progress at most about every 1% of the total, and at the end.
func (d *download) report(final bool) {
	if d.s.progress == nil {
		return
	}
	step := max(d.want.Length/100, 1)
	if d.off == d.lastProgress || (!final && d.off-d.lastProgress < step && d.lastProgress >= 0) {
		return
	}
	d.lastProgress = d.off
	d.s.progress(d.off, d.want.Length)
}

// finish verifies the complete artifact (digest while writing, and the size
// of the file itself) and fsyncs it. A digest mismatch matches
// ErrHashMismatch; the caller truncates.
func (d *download) finish() error {
	if d.off != d.want.Length {
		return fmt.Errorf("%w: %d of %d bytes", ErrShort, d.off, d.want.Length)
	}
	if got := d.h.Sum(nil); subtle.ConstantTimeCompare(got, d.want.SHA256) != 1 {
		return fmt.Errorf("%w: got %x, signed %x", ErrHashMismatch, got, d.want.SHA256)
	}
	fi, err := d.dst.Stat()
	if err != nil {
		return local("fetch: stat %s: %w; check the slot storage", d.dst.Name(), err)
	}
	if fi.Size() != d.want.Length {
		return local("fetch: %s is %d bytes, wrote %d: something else writes to it; stop it and download again", d.dst.Name(), fi.Size(), d.want.Length)
	}
	if err := d.dst.Sync(); err != nil {
		return local("fetch: fsync %s: %w; check the slot storage", d.dst.Name(), err)
	}
	return nil
}
