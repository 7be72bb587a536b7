package tufclient

import "fmt"

// Hard ceilings on Limits; a configuration above them is refused.
const (
	// MaxMetadataLength bounds every metadata length limit (64 MiB).
	MaxMetadataLength = 64 << 20
	// MaxRootRotationsCeiling bounds Limits.MaxRootRotations.
	MaxRootRotationsCeiling = 1024
	// MaxDelegationsCeiling bounds Limits.MaxDelegations.
	MaxDelegationsCeiling = 1024
)

// Limits bounds what one refresh may fetch and walk. A zero field takes its
// value from DefaultLimits.
type Limits struct {
	RootMaxLength      int64 // bytes of one N.root.json (1 ≤ n ≤ MaxMetadataLength)
	TimestampMaxLength int64 // bytes of timestamp.json (1 ≤ n ≤ MaxMetadataLength)
	SnapshotMaxLength  int64 // bytes of snapshot.json when timestamp gives no length
	TargetsMaxLength   int64 // bytes of each targets role when snapshot gives no length
	MaxRootRotations   int64 // root versions fetched in one refresh (1 ≤ n ≤ 1024)
	MaxDelegations     int   // delegated roles visited in one target search (1 ≤ n ≤ 1024)
}

// DefaultLimits returns the limits go-tuf and python-tuf use by default.
func DefaultLimits() Limits {
	return Limits{
		RootMaxLength:      512000,
		TimestampMaxLength: 16384,
		SnapshotMaxLength:  2000000,
		TargetsMaxLength:   5000000,
		MaxRootRotations:   256,
		MaxDelegations:     32,
	}
}

// withDefaults fills zero fields from DefaultLimits and checks the ceilings.
func (l Limits) withDefaults() (Limits, error) {
	d := DefaultLimits()
	fill := func(v *int64, def int64) {
		if *v == 0 {
			*v = def
		}
	}
	fill(&l.RootMaxLength, d.RootMaxLength)
	fill(&l.TimestampMaxLength, d.TimestampMaxLength)
	fill(&l.SnapshotMaxLength, d.SnapshotMaxLength)
	fill(&l.TargetsMaxLength, d.TargetsMaxLength)
	fill(&l.MaxRootRotations, d.MaxRootRotations)
	if l.MaxDelegations == 0 {
		l.MaxDelegations = d.MaxDelegations
	}
	for _, f := range []struct {
		name string
		v    int64
		max  int64
	}{
		{"RootMaxLength", l.RootMaxLength, MaxMetadataLength},
		{"TimestampMaxLength", l.TimestampMaxLength, MaxMetadataLength},
		{"SnapshotMaxLength", l.SnapshotMaxLength, MaxMetadataLength},
		{"TargetsMaxLength", l.TargetsMaxLength, MaxMetadataLength},
		{"MaxRootRotations", l.MaxRootRotations, MaxRootRotationsCeiling},
		{"MaxDelegations", int64(l.MaxDelegations), MaxDelegationsCeiling},
	} {
		if f.v < 1 || f.v > f.max {
			return Limits{}, fmt.Errorf("%w: Limits.%s is %d; set it between 1 and %d, or 0 for the default", ErrInvalidOptions, f.name, f.v, f.max)
		}
	}
	return l, nil
}
