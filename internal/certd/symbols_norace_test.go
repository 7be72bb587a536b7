//go:build !race

package certd

const raceEnabled = false
