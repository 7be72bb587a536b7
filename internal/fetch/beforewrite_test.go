package fetch

import (
	"bytes"
	"errors"
	"syscall"
	"testing"
)

// TestBeforeWriteFailureStopsAndKeepsWhatWasWritten performs a disk that
// fills up mid-download (BeforeWrite answers ENOSPC past 8 KiB): Download
// stops at once with the local error, keeps the bytes written so far, and
// a later Download resumes from them.
func TestBeforeWriteFailureStopsAndKeepsWhatWasWritten(t *testing.T) {
	data, want := artifact(64 << 10)
	m := newMirror(t, honest(data))
	dst := tempDst(t, nil)
	opts := fast(newClient(t), m.URL)
	opts.BeforeWrite = func(off int64, n int) error {
		if off+int64(n) > 8<<10 {
			return syscall.ENOSPC
		}
		return nil
	}
	_, err := Download(t.Context(), dst, want, opts)
	if !errors.Is(err, syscall.ENOSPC) || m.requests.Load() != 1 {
		t.Fatalf("err = %v after %d requests, want ENOSPC after one", err, m.requests.Load())
	}
	held := contents(t, dst)
	if len(held) == 0 || len(held) > 8<<10 || !bytes.Equal(held, data[:len(held)]) {
		t.Fatalf("kept %d bytes, want a correct prefix of at most 8 KiB", len(held))
	}
	opts.BeforeWrite = nil
	res, err := Download(t.Context(), dst, want, opts)
	if err != nil || !res.Resumed {
		t.Fatalf("after space was freed: %+v, %v; want a resumed download", res, err)
	}
}
