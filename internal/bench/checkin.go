package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds on a Load.
const (
	MaxWorkers  = 256
	MaxRequests = 100_000_000
	MaxDuration = 10 * time.Minute
	// maxCheckinBody bounds what one answer may make a worker read.
	maxCheckinBody = 1 << 20
)

// Load says how hard to check in: Workers goroutines share one client
// (keep-alive), each sending conditional GETs until Requests have been
// sent in all or Duration has passed, whichever is set (Requests wins when
// both are).
type Load struct {
	Workers  int           // 1..MaxWorkers
	Requests int64         // total requests (0: use Duration)
	Duration time.Duration // how long to keep sending (0: use Requests)
}

func (l Load) validate() error {
	if l.Workers < 1 || l.Workers > MaxWorkers {
		return fmt.Errorf("%w: %d workers, want 1..%d", ErrBadLoad, l.Workers, MaxWorkers)
	}
	if l.Requests < 0 || l.Requests > MaxRequests || l.Duration < 0 || l.Duration > MaxDuration {
		return fmt.Errorf("%w: %d requests or %s out of bounds (at most %d, %s)", ErrBadLoad, l.Requests, l.Duration, int64(MaxRequests), MaxDuration)
	}
	if l.Requests == 0 && l.Duration == 0 {
		return fmt.Errorf("%w: set Requests or Duration", ErrBadLoad)
	}
	return nil
}

// CheckinResult counts the answers of a run.
type CheckinResult struct {
	Requests    int64         // requests answered
	NotModified int64         // of which 304
	Elapsed     time.Duration // wall time from first send to last answer
}

// Rate is answered requests per second.
func (r CheckinResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Checkins sends conditional GETs of url with If-None-Match: etag through
// client, as load says, and counts the answers. The first answer that is
// not 304, or the first transport error, stops the run and is returned
// (wrapping ErrUnexpectedStatus for a wrong status) with the counts so far.
func Checkins(ctx context.Context, client *http.Client, url, etag string, load Load) (CheckinResult, error) {
	if err := load.validate(); err != nil {
		return CheckinResult{}, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if load.Requests == 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, load.Duration)
		defer stop()
	}
	var sent, answered, notModified atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range load.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if load.Requests > 0 && sent.Add(1) > load.Requests {
					return
				}
				code, err := checkin(ctx, client, url, etag)
				if err != nil {
					if ctx.Err() == nil {
						cancel(err)
					}
					return
				}
				answered.Add(1)
				if code != http.StatusNotModified {
					cancel(fmt.Errorf("%w: %s answered %d", ErrUnexpectedStatus, url, code))
					return
				}
				notModified.Add(1)
			}
		}()
	}
	wg.Wait()
	res := CheckinResult{Requests: answered.Load(), NotModified: notModified.Load(), Elapsed: time.Since(start)}
	if err := context.Cause(ctx); err != nil && err != context.DeadlineExceeded && err != context.Canceled {
		return res, err
	}
	return res, nil
}

// checkin sends one conditional GET and drains the answer so that the
// connection is kept alive.
func checkin(ctx context.Context, client *http.Client, url, etag string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("If-None-Match", etag)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxCheckinBody))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TimestampHandler is the reference for check-ins: a bare handler that
// serves data with the server's ETag and 304 logic and nothing else (no
// authentication, no routing, no storage).
func TimestampHandler(data []byte, etag string) http.Handler {
	size := strconv.Itoa(len(data))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", etag)
		w.Header().Set("Cache-Control", "no-cache")
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", size)
		w.Write(data)
	})
}
