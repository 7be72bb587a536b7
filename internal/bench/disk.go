package bench

import (
	"context"
	"fmt"
	"os"
	"time"
)

// writeChunk is the size of each write of WriteSync, like a download's
// buffered copy.
const writeChunk = 1 << 20

// WriteSync is the install reference: it creates path, writes data in
// 1 MiB writes, fsyncs and closes it, and returns how long that took. It
// refuses to overwrite an existing file.
func WriteSync(ctx context.Context, path string, data []byte) (time.Duration, error) {
	start := time.Now()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("bench: reference file: %w; pass a fresh path", err)
	}
	for off := 0; off < len(data); off += writeChunk {
		if err := ctx.Err(); err != nil {
			f.Close()
			return 0, err
		}
		if _, err := f.Write(data[off:min(off+writeChunk, len(data))]); err != nil {
			f.Close()
			return 0, fmt.Errorf("bench: writing %s: %w", path, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, fmt.Errorf("bench: fsync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// MBps is bytes per elapsed time in megabytes (10^6 bytes) per second.
func MBps(bytes int64, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / elapsed.Seconds()
}
