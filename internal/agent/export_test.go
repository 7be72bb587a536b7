package agent

import "github.com/ztota/ztota/internal/diskspace"

// SetFreeSpace replaces statfs for a test that plays a full disk.
func SetFreeSpace(a *Agent, f diskspace.Func) { a.freeSpace = f }
