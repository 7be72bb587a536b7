package fetch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrSlow: a mirror sent fewer than MinRate bytes/s over a RateWindow,
	// or the whole download outlived its Deadline (slow retrieval).
	ErrSlow = errors.New("fetch: transfer too slow")
	// ErrTooLong: a mirror offered or sent more bytes than signed metadata declares (endless data).
	ErrTooLong = errors.New("fetch: more data than the signed length")
	// ErrHashMismatch: the bytes do not hash to the signed SHA-256.
	ErrHashMismatch = errors.New("fetch: sha256 does not match signed metadata")
	// ErrShort: fewer bytes than the signed length.
	ErrShort = errors.New("fetch: fewer bytes than the signed length")
	// ErrAllMirrorsFailed: no attempt succeeded; the error is a *MirrorErrors.
	ErrAllMirrorsFailed = errors.New("fetch: all mirrors failed")
	// ErrInvalidOptions: Download or HashFile was called with unusable arguments.
	ErrInvalidOptions = errors.New("fetch: invalid options")
	// ErrBadResponse: a mirror answered with a response that does not fit the request.
	ErrBadResponse = errors.New("fetch: response does not fit the request")
)

// HTTPStatusError is an unexpected HTTP status from a mirror.
type HTTPStatusError struct {
	Mirror string
	Code   int
}

func (e *HTTPStatusError) Error() string {
	return fmt.Sprintf("fetch: mirror %s answered %d %s", e.Mirror, e.Code, http.StatusText(e.Code))
}

// Transient reports whether the same mirror may answer differently later:
// 5xx, 408 Request Timeout and 429 Too Many Requests.
func (e *HTTPStatusError) Transient() bool {
	return e.Code >= 500 || e.Code == http.StatusRequestTimeout || e.Code == http.StatusTooManyRequests
}

// MirrorError is the cause of one failed attempt.
type MirrorError struct {
	Attempt int    // 1-based attempt number
	Mirror  string // URL that was tried
	Err     error
}

// MirrorErrors is returned when no attempt succeeded. It matches
// ErrAllMirrorsFailed and the cause of the last attempt.
type MirrorErrors struct {
	// Causes holds one entry per attempt, in order (at most MaxAttempts).
	Causes []MirrorError
	// Dropped is true when every mirror was dropped for a fatal cause
	// (wrong bytes from offset 0, endless data, 4xx), rather than the
	// attempts running out.
	Dropped bool
}

func (e *MirrorErrors) last() error {
	if len(e.Causes) == 0 {
		return nil
	}
	return e.Causes[len(e.Causes)-1].Err
}

func (e *MirrorErrors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v after %d attempt(s)", ErrAllMirrorsFailed, len(e.Causes))
	for _, c := range e.Causes {
		fmt.Fprintf(&b, "; [%d] %s: %v", c.Attempt, c.Mirror, c.Err)
	}
	if e.Dropped {
		b.WriteString(". Every mirror served a bad or no artifact: check that the mirrors hold the release named in signed metadata")
	} else {
		b.WriteString(". Check the network and the mirrors; a later Download resumes where this one stopped")
	}
	return b.String()
}

// Unwrap returns ErrAllMirrorsFailed and the last cause.
func (e *MirrorErrors) Unwrap() []error {
	if l := e.last(); l != nil {
		return []error{ErrAllMirrorsFailed, l}
	}
	return []error{ErrAllMirrorsFailed}
}

// Transient reports whether trying again later may help: false when every
// mirror was dropped for a fatal cause.
func (e *MirrorErrors) Transient() bool { return !e.Dropped }

// IsTransient reports whether err is a cause that may pass with time
// (network errors, 5xx, 408, 429, ErrSlow, ErrShort, attempts that ran out)
// rather than a fatal one (wrong bytes, endless data, 4xx, local I/O,
// invalid options, cancellation by the caller). It is the view of one
// Download call and its mirrors (whether this mirror may answer
// differently); it is no verdict on the artifact: signed metadata is. The
// agent treats every Download error as transient for the release and
// retries later (wrong bytes from offset zero, endless data and 4xx
// included), and only verdicts on signed metadata as final.
func IsTransient(err error) bool {
	var t interface{ Transient() bool }
	if errors.As(err, &t) {
		return t.Transient()
	}
	var le *localError
	switch {
	case err == nil, errors.As(err, &le), errors.Is(err, context.Canceled),
		errors.Is(err, ErrHashMismatch), errors.Is(err, ErrTooLong), errors.Is(err, ErrInvalidOptions):
		return false
	case errors.Is(err, ErrSlow), errors.Is(err, ErrShort), errors.Is(err, ErrBadResponse):
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// localError marks a failure of this device (disk, request signing), which
// no other mirror can fix: Download stops at once.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

func local(format string, args ...any) error {
	return &localError{fmt.Errorf(format, args...)}
}
