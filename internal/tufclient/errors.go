package tufclient

import "errors"

var (
	// ErrInvalidOptions reports Options or Limits that cannot make a safe
	// updater; the message names the field to fix.
	ErrInvalidOptions = errors.New("invalid TUF client options")
	// ErrNoTrustedRoot reports a metadata directory without root.json and
	// no Options.TrustedRoot to start from.
	ErrNoTrustedRoot = errors.New("no trusted root: give a bootstrap root.json or run `tuf-client init` first")
	// ErrInvalidRepoName reports a repository name that could escape its
	// directory or is not of the form [A-Za-z0-9][A-Za-z0-9._-]*.
	ErrInvalidRepoName = errors.New("invalid repository name")
	// ErrInvalidRepoMap reports a TAP 4 repository map that is malformed,
	// too large, or names repositories it does not define.
	ErrInvalidRepoMap = errors.New("invalid repository map")
	// ErrInvalidFakeTime reports a FAKETIME value this client cannot honour.
	ErrInvalidFakeTime = errors.New("invalid FAKETIME value")
	// ErrUsage reports a tuf-client command line that misses a flag or
	// argument.
	ErrUsage = errors.New("usage")
)

// ExitError carries the process exit code of a failed tuf-client command.
type ExitError struct {
	Code int   // process exit status (1 for every failure of the protocol)
	Err  error // what failed
}

func (e *ExitError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode returns the process exit status.
func (e *ExitError) ExitCode() int { return e.Code }
