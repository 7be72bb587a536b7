package bench

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
)

// MaxPadding bounds the padding of a script bundle (the bundle package
// accepts files of at most 256 MiB by default).
const MaxPadding = 256 << 20

// appScript stays up until signalled; "health" exits 0.
const appScript = "#!/bin/sh\nif [ \"$1\" = health ]; then exit 0; fi\ntrap 'exit 0' TERM INT\nwhile :; do sleep 0.05; done\n"

// WriteScriptBundle writes to path (which must not exist) a tar bundle
// whose module is a shell script, with padding bytes of incompressible
// pseudo-random data drawn from seed, and returns the bundle's size.
func WriteScriptBundle(ctx context.Context, path, version string, padding int64, seed uint64) (int64, error) {
	if padding < 0 || padding > MaxPadding {
		return 0, fmt.Errorf("bench: padding %d out of 0..%d", padding, int64(MaxPadding))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, fmt.Errorf("bench: bundle file: %w; pass a fresh path", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := writeBundle(ctx, bw, version, padding, seed); err != nil {
		f.Close()
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, err
	}
	return fi.Size(), f.Close()
}

func writeBundle(ctx context.Context, w io.Writer, version string, padding int64, seed uint64) error {
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		return err
	}
	small := []struct {
		name string
		mode int64
		data string
	}{{"bin/app", 0o755, appScript}, {"VERSION", 0o644, version}}
	for _, e := range small {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: e.mode, Size: int64(len(e.data))}); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, e.data); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "padding", Typeflag: tar.TypeReg, Mode: 0o644, Size: padding}); err != nil {
		return err
	}
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	rng := rand.NewChaCha8(key)
	buf := make([]byte, 1<<20)
	for left := padding; left > 0; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(left, int64(len(buf)))
		rng.Read(buf[:n])
		if _, err := tw.Write(buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	return tw.Close()
}
