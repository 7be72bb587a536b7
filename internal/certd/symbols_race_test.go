//go:build race

package certd

// raceEnabled skips the long single-threaded comparisons with govulncheck
// under the race detector: they exercise no concurrency.
const raceEnabled = true
