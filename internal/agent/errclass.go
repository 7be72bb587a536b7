package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/ztota/ztota/internal/bundle"
	"github.com/ztota/ztota/internal/fetch"
	"github.com/ztota/ztota/internal/slot"
)

// errClass is what a failed update step means for the release: a final
// verdict (never retried, remembered in the refused set, reported
// "refused") or a transient failure (retried with back-off, the partial
// download kept, reported "failed" only when it persists, never counted
// against a deployment).
type errClass int

const (
	classTransient errClass = iota
	classFinal
)

func (c errClass) String() string {
	if c == classFinal {
		return "final"
	}
	return "transient"
}

// classify is the one place that decides whether an error is a final
// verdict. Final are only verdicts on signed metadata and the device's own
// policy applied to signed data (ErrRefused: wrong device or hardware,
// rollback counter, too large, director and image disagree), and signed
// bytes that cannot be installed (an unsafe, oversized or malformed bundle
// or artifact type; the bytes hashed to the signed digest, so fetching
// them again gives the same bytes). A failed health check or an exhausted
// boot counter is final too, but is decided at boot, not here.
//
// Everything else is transient: the network, an HTTP status from a mirror
// (4xx included: a mirror that has not caught up answers 404), wrong bytes
// from the network (hash mismatch, endless data cut at the signed length:
// the download restarts from zero), cancellation (SIGTERM mid-download),
// local disk errors including ENOSPC, and Stage errors of the local disk.
func classify(err error) errClass {
	switch {
	case err == nil:
		return classTransient
	case errors.Is(err, ErrRefused),
		errors.Is(err, bundle.ErrUnsafeEntry), errors.Is(err, bundle.ErrLimit), errors.Is(err, bundle.ErrFormat),
		errors.Is(err, slot.ErrUnsupported), errors.Is(err, slot.ErrBadMeta):
		// A bundle error caused by the context (the agent stopping) is
		// not about the bytes.
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return classTransient
		}
		return classFinal
	}
	return classTransient
}

// wrongBytes reports whether a transient error proved the downloaded bytes
// wrong (then nothing of them is kept and the download starts from zero).
func wrongBytes(err error) bool {
	return errors.Is(err, fetch.ErrHashMismatch) || errors.Is(err, fetch.ErrTooLong) || errors.Is(err, slot.ErrDigestMismatch)
}

// Back-off between retries of a transient failure: bounded exponential
// with jitter. The n-th consecutive failure waits a random time in
// [d/2, d] with d = retryBase·2^(n-1), at most retryMax.
const (
	retryBase = 2 * time.Second
	retryMax  = 10 * time.Minute
	// failedAfter is how many consecutive failed attempts (HTTP attempts
	// of a download; a local failure counts as this many) make a
	// transient failure persistent enough to report "failed".
	failedAfter = 3
)

func backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := retryBase
	for i := 1; i < n && d < retryMax; i++ {
		d *= 2
	}
	d = min(d, retryMax)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}
