//go:build !unix

package verifystate

// lock is a no-op where flock is not available: one verifier per state
// file there.
func lock(path string) (func(), error) { return func() {}, nil }
