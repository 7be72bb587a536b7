package agent

import "github.com/ztota/ztota/internal/diskspace"

// SetFreeSpace replaces statfs for a test that plays a full disk.
func SetFreeSpace(a *Agent, f diskspace.Func) { a.freeSpace = f }

// SetWriteFault makes download writes fail (a test plays a full disk).
func SetWriteFault(a *Agent, f func(off int64, n int) error) { a.writeFault = f }
