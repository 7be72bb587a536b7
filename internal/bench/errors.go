package bench

import "errors"

// Sentinel errors. Match them with errors.Is.
var (
	// ErrStatusFormat: a /proc/PID/status file lacks VmRSS or VmHWM, repeats
	// one, or writes one in another form than "<decimal> kB".
	ErrStatusFormat = errors.New("bench: malformed /proc status")
	// ErrUnexpectedStatus: a check-in got another answer than 304 Not
	// Modified; check that the ETag sent is the server's current one.
	ErrUnexpectedStatus = errors.New("bench: check-in not answered 304")
	// ErrBadLoad: a Load asks for no work or for more than the bounds allow.
	ErrBadLoad = errors.New("bench: invalid load")
)
