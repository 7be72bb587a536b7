package bundle

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
)

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// boundedReader passes at most max bytes and fails with a LimitError if
// the stream holds more. It counts what it passed.
type boundedReader struct {
	r        io.Reader
	n, max   int64
	exceeded bool
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.exceeded {
		return 0, b.err()
	}
	if b.n >= b.max {
		var one [1]byte
		n, err := io.ReadFull(b.r, one[:])
		if n > 0 {
			b.exceeded = true
			return 0, b.err()
		}
		return 0, err
	}
	if rest := b.max - b.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *boundedReader) err() error {
	return &LimitError{Limit: "decompressed stream (MaxTotalBytes plus header allowance)", Max: b.max}
}

// openStream detects gzip by its magic bytes and returns the tar stream.
func openStream(ctx context.Context, r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(ctxReader{ctx, r})
	magic, err := br.Peek(2)
	if err == io.EOF {
		return nil, fmt.Errorf("%w: input is empty or truncated", ErrFormat)
	}
	if err != nil {
		return nil, err
	}
	if magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip header: %v", ErrFormat, err)
		}
		return zr, nil
	}
	return br, nil
}
