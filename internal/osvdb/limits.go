package osvdb

import (
	stdcmp "cmp"
	"fmt"
)

// Limits bounds everything Load and LoadZip take from their input. A zero
// field takes the value from DefaultLimits; a negative field is an error.
type Limits struct {
	// MaxArchiveBytes bounds the size of a zip archive (the compressed file).
	MaxArchiveBytes int64
	// MaxRecordBytes bounds one record's raw JSON, both as the zip entry
	// declares it and as actually read.
	MaxRecordBytes int64
	// MaxTotalBytes bounds the sum of all records' raw JSON.
	MaxTotalBytes int64
	// MaxRecords bounds the number of zip entries or directory files.
	MaxRecords int
}

// Default bounds. The 2026-08-21 Go snapshot is a 3.1 MiB zip holding 4,291
// records, 7.6 MiB uncompressed, the largest record 12.6 KiB; the defaults
// give it about four times headroom on every axis.
const (
	DefaultMaxArchiveBytes = 16 << 20 // 16 MiB
	DefaultMaxRecordBytes  = 64 << 10 // 64 KiB
	DefaultMaxTotalBytes   = 32 << 20 // 32 MiB
	DefaultMaxRecords      = 20000
)

// DefaultLimits returns the limits sized for the Go vulnerability database
// as of 2026 with about four times headroom.
func DefaultLimits() Limits {
	return Limits{
		MaxArchiveBytes: DefaultMaxArchiveBytes,
		MaxRecordBytes:  DefaultMaxRecordBytes,
		MaxTotalBytes:   DefaultMaxTotalBytes,
		MaxRecords:      DefaultMaxRecords,
	}
}

// resolve fills zero fields with defaults and rejects negative ones.
func (l Limits) resolve() (Limits, error) {
	d := DefaultLimits()
	if l.MaxArchiveBytes < 0 || l.MaxRecordBytes < 0 || l.MaxTotalBytes < 0 || l.MaxRecords < 0 {
		return l, fmt.Errorf("osvdb: negative limit in %+v", l)
	}
	l.MaxArchiveBytes = stdcmp.Or(l.MaxArchiveBytes, d.MaxArchiveBytes)
	l.MaxRecordBytes = stdcmp.Or(l.MaxRecordBytes, d.MaxRecordBytes)
	l.MaxTotalBytes = stdcmp.Or(l.MaxTotalBytes, d.MaxTotalBytes)
	l.MaxRecords = stdcmp.Or(l.MaxRecords, d.MaxRecords)
	return l, nil
}
