package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// attempt makes one GET of mirror, guarded by the rate guard, and writes
// the body into dst. It returns nil when dst holds Length bytes (not yet
// verified), and whether the mirror should be dropped for the rest of the
// download.
func (d *download) attempt(ctx context.Context, mirror string) (drop bool, err error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	g := startRateGuard(actx, cancel, d.s.minRate, d.s.window)
	defer g.close()
	return d.get(actx, mirror, g, true)
}

func (d *download) get(ctx context.Context, mirror string, g *rateGuard, mayRestart bool) (drop bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, mirror, nil)
	if err != nil {
		return true, fmt.Errorf("fetch: mirror %s: %w", mirror, err)
	}
	// Identity: the client must not decompress on the fly, so that byte
	// counts and ranges are those of the artifact itself.
	req.Header.Set("Accept-Encoding", "identity")
	if d.off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", d.off))
	}
	if d.s.header != nil {
		if err := d.s.header(req); err != nil {
			return false, local("fetch: preparing the request for %s: %w", mirror, err)
		}
	}
	resp, err := d.s.client.Do(req)
	if err != nil {
		return false, d.netErr(ctx, mirror, err)
	}
	defer resp.Body.Close()

	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		if d.off > 0 {
			if err := d.reset(); err != nil { // the mirror ignored the range
				return false, err
			}
		}
	case code == http.StatusPartialContent:
		cr, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return false, fmt.Errorf("fetch: mirror %s: %w", mirror, err)
		}
		if cr.total >= 0 && cr.total != d.want.Length || cr.end >= d.want.Length {
			return true, fmt.Errorf("%w: mirror %s serves a %d-byte file (range %d-%d), signed length is %d",
				ErrTooLong, mirror, cr.total, cr.start, cr.end, d.want.Length)
		}
		if cr.start != d.off {
			return false, fmt.Errorf("%w: mirror %s answered range %d-%d to a request from byte %d",
				ErrBadResponse, mirror, cr.start, cr.end, d.off)
		}
	case code == http.StatusRequestedRangeNotSatisfiable && d.off > 0 && mayRestart:
		resp.Body.Close()
		if err := d.reset(); err != nil {
			return false, err
		}
		return d.get(ctx, mirror, g, false)
	default:
		e := &HTTPStatusError{Mirror: mirror, Code: code}
		return !e.Transient(), e
	}
	d.base = d.off

	missing := d.want.Length - d.off
	if resp.ContentLength > missing {
		return true, fmt.Errorf("%w: mirror %s declares %d bytes, only %d are missing of the signed %d",
			ErrTooLong, mirror, resp.ContentLength, missing, d.want.Length)
	}
	return d.copyBody(ctx, mirror, resp.Body, g)
}

// copyBody writes the body into dst until Length bytes are held, then
// probes one more byte: a mirror that has more is sending endless data.
func (d *download) copyBody(ctx context.Context, mirror string, body io.Reader, g *rateGuard) (drop bool, err error) {
	buf := make([]byte, chunkSize)
	for d.off < d.want.Length {
		n, rerr := body.Read(buf[:min(int64(len(buf)), d.want.Length-d.off)])
		if n > 0 {
			g.add(n)
			if err := d.write(buf[:n]); err != nil {
				return false, err
			}
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF):
			if d.off < d.want.Length {
				return false, fmt.Errorf("%w: mirror %s ended the body with %d of %d bytes held", ErrShort, mirror, d.off, d.want.Length)
			}
		default:
			return false, d.netErr(ctx, mirror, rerr)
		}
	}
	var probe [1]byte
	if n, _ := io.ReadAtLeast(body, probe[:], 1); n > 0 {
		if err := d.reset(); err != nil {
			return false, err
		}
		return true, fmt.Errorf("%w: mirror %s sent more than the signed %d bytes; cut at the bound", ErrTooLong, mirror, d.want.Length)
	}
	// A probe that fails for any other reason (the rate guard, a dropped
	// connection) changes nothing: the bytes are complete and the digest
	// decides. Only the caller's own cancellation stops here.
	if ctx.Err() != nil && context.Cause(ctx) != nil && !errors.Is(context.Cause(ctx), ErrSlow) {
		return false, d.netErr(ctx, mirror, ctx.Err())
	}
	return false, nil
}

// netErr names the cause of a failed transfer: the rate guard's or the
// deadline's ErrSlow, the caller's cancellation, or the network error.
func (d *download) netErr(ctx context.Context, mirror string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("fetch: mirror %s: %w", mirror, context.Cause(ctx))
	}
	return fmt.Errorf("fetch: mirror %s: %w", mirror, err)
}
