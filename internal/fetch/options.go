package fetch

import (
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Want is what signed metadata says the artifact is.
type Want struct {
	Length int64  // exact size in bytes (0 ≤ Length)
	SHA256 []byte // exactly 32 bytes
}

// Options configures Download. Only Client and Mirrors are required.
type Options struct {
	// Client carries every request; its transport and timeouts are the caller's.
	Client *http.Client
	// Mirrors are full URLs of the same artifact, tried in order (untrusted);
	// 1 to MaxMirrors of them, http or https.
	Mirrors []string
	// Header, if set, is called on every request before it is sent (for
	// example to add signed-request headers). An error stops the download.
	Header func(*http.Request) error
	// MinRate in bytes/s: an attempt that receives fewer than
	// MinRate×RateWindow bytes in any RateWindow is aborted with ErrSlow.
	// 0 means DefaultMinRate; at most 1<<32.
	MinRate int64
	// RateWindow is the span over which MinRate is measured (default 10s,
	// 10ms to 1h).
	RateWindow time.Duration
	// Deadline bounds the whole download, all attempts included. 0 derives
	// it from Length and MinRate: 2×Length/MinRate + 1 minute, at most
	// MaxDeadline.
	Deadline time.Duration
	// MaxAttempts bounds the attempts across all mirrors (default 4, at
	// most MaxAttemptsLimit).
	MaxAttempts int
	// Backoff is the pause before going round the mirrors again; it
	// doubles each round up to 32×Backoff or MaxBackoff, whichever is less.
	// 0 means DefaultBackoff; at most MaxBackoff.
	Backoff time.Duration
	// Progress, if set, is called with the bytes held and the total, at most
	// about every 1% of the total (and once at the end).
	Progress func(done, total int64)
	// BeforeWrite, if set, is called before each write of n bytes at
	// offset off into dst; an error fails that write as a local I/O error
	// would (tests play a disk that fills up with it).
	BeforeWrite func(off int64, n int) error
}

// Defaults and bounds of Options.
const (
	DefaultMinRate     = 1024 // bytes/s
	DefaultRateWindow  = 10 * time.Second
	DefaultMaxAttempts = 4
	DefaultBackoff     = time.Second
	MaxMirrors         = 32
	MaxAttemptsLimit   = 64
	MaxBackoff         = 2 * time.Minute
	MaxDeadline        = 7 * 24 * time.Hour

	maxMinRate    = 1 << 32
	minRateWindow = 10 * time.Millisecond
	maxRateWindow = time.Hour
	maxURLLen     = 4096
	deadlineSlack = time.Minute
)

// settings are validated Options with defaults applied.
type settings struct {
	client      *http.Client
	mirrors     []string
	header      func(*http.Request) error
	minRate     int64
	window      time.Duration
	deadline    time.Duration
	maxAttempts int
	backoff     time.Duration
	progress    func(done, total int64)
	beforeWrite func(off int64, n int) error
}

func (w Want) validate() error {
	if w.Length < 0 {
		return fmt.Errorf("%w: Want.Length is %d; take it from the signed target's length", ErrInvalidOptions, w.Length)
	}
	if len(w.SHA256) != 32 {
		return fmt.Errorf("%w: Want.SHA256 has %d bytes, need 32; take it from the signed target's sha256 hash", ErrInvalidOptions, len(w.SHA256))
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)
}

// settings validates o and applies defaults.
func (o Options) settings(want Want) (settings, error) {
	s := settings{client: o.Client, header: o.Header, progress: o.Progress, beforeWrite: o.BeforeWrite}
	if o.Client == nil {
		return s, invalid("Options.Client is nil; pass the agent's HTTP client")
	}
	if len(o.Mirrors) == 0 || len(o.Mirrors) > MaxMirrors {
		return s, invalid("%d mirrors given; give 1 to %d artifact URLs", len(o.Mirrors), MaxMirrors)
	}
	for _, m := range o.Mirrors {
		if len(m) > maxURLLen {
			return s, invalid("a mirror URL is %d bytes long, at most %d allowed", len(m), maxURLLen)
		}
		u, err := url.Parse(m)
		if err != nil {
			return s, invalid("mirror %q: %v", m, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return s, invalid("mirror %q is not an absolute http or https URL", m)
		}
	}
	s.mirrors = append([]string(nil), o.Mirrors...)

	switch {
	case o.MinRate < 0 || o.MinRate > maxMinRate:
		return s, invalid("MinRate %d bytes/s is outside 0..%d", o.MinRate, int64(maxMinRate))
	case o.MinRate == 0:
		s.minRate = DefaultMinRate
	default:
		s.minRate = o.MinRate
	}
	switch {
	case o.RateWindow == 0:
		s.window = DefaultRateWindow
	case o.RateWindow < minRateWindow || o.RateWindow > maxRateWindow:
		return s, invalid("RateWindow %s is outside %s..%s", o.RateWindow, minRateWindow, maxRateWindow)
	default:
		s.window = o.RateWindow
	}
	switch {
	case o.MaxAttempts == 0:
		s.maxAttempts = DefaultMaxAttempts
	case o.MaxAttempts < 0 || o.MaxAttempts > MaxAttemptsLimit:
		return s, invalid("MaxAttempts %d is outside 1..%d", o.MaxAttempts, MaxAttemptsLimit)
	default:
		s.maxAttempts = o.MaxAttempts
	}
	switch {
	case o.Backoff == 0:
		s.backoff = DefaultBackoff
	case o.Backoff < 0 || o.Backoff > MaxBackoff:
		return s, invalid("Backoff %s is outside 0..%s", o.Backoff, MaxBackoff)
	default:
		s.backoff = o.Backoff
	}
	switch {
	case o.Deadline == 0:
		s.deadline = derivedDeadline(want.Length, s.minRate)
	case o.Deadline < 0 || o.Deadline > MaxDeadline:
		return s, invalid("Deadline %s is outside 0..%s", o.Deadline, MaxDeadline)
	default:
		s.deadline = o.Deadline
	}
	return s, nil
}

// derivedDeadline is 2×length/minRate + deadlineSlack, capped at MaxDeadline.
func derivedDeadline(length, minRate int64) time.Duration {
	if minRate <= 0 {
		return MaxDeadline
	}
	secs := length / minRate // length ≥ 0, minRate ≥ 1: no overflow
	if secs > int64((MaxDeadline-deadlineSlack)/(2*time.Second)) {
		return MaxDeadline
	}
	return time.Duration(2*secs+1)*time.Second + deadlineSlack
}

// backoffFor is the pause before round r (r ≥ 1) of the mirrors.
func backoffFor(base time.Duration, round int) time.Duration {
	limit := min(32*base, MaxBackoff)
	d := base
	for i := 1; i < round && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
