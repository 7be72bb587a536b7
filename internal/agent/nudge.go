package agent

// The nudge channel: a long poll of
//
//	GET /v1/devices/{device}/nudge?after=N&wait=25   (device-signed)
//
// answered 200 {"seq": M} when the device's nudge sequence differs from N
// or the wait passed. Any change of M (up or down: a restarted server
// starts elsewhere) makes the run loop fetch the revocation list and
// check in at once; the first answer sets N and triggers one refresh. A
// nudge carries nothing the device trusts: it only makes the device
// refresh sooner, through the same verified paths. A server without the
// endpoint (404, 405) is asked again only every nudgeOldServer; other
// failures back off exponentially with jitter up to nudgeMaxBackoff.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/ztota/ztota/internal/strictjson"
)

const (
	// nudgeWaitSeconds is the wait the agent asks the server for.
	nudgeWaitSeconds = 25
	nudgeWait        = nudgeWaitSeconds * time.Second
	// nudgeOldServer is the retry interval against a server without the
	// endpoint.
	nudgeOldServer = 5 * time.Minute
	// nudgeMaxBackoff bounds the back-off after failures.
	nudgeMaxBackoff = time.Minute
	// nudgeMinInterval spaces polls answered at once without a change
	// (a server that does not hold the request must not make it spin).
	nudgeMinInterval = time.Second
	// maxNudgeAnswer bounds the answer's body.
	maxNudgeAnswer = 4 << 10
)

// errNoNudge: the server has no nudge endpoint.
var errNoNudge = errors.New("the server has no nudge endpoint")

// nudgeAnswer is the server's answer.
type nudgeAnswer struct {
	Seq *int64 `json:"seq"`
}

// pollNudge asks once and returns the server's sequence.
func (a *Agent) pollNudge(ctx context.Context, after int64) (int64, error) {
	u := a.server() + "/v1/devices/" + a.cfg.DeviceID + "/nudge?after=" + strconv.FormatInt(after, 10) + "&wait=" + strconv.Itoa(nudgeWaitSeconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := a.nudgeHTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxNudgeAnswer+1))
	if err != nil {
		return 0, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		return 0, errNoNudge
	case resp.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("nudge: %s", resp.Status)
	case len(body) > maxNudgeAnswer:
		return 0, fmt.Errorf("nudge: answer larger than %d bytes", maxNudgeAnswer)
	}
	var ans nudgeAnswer
	if err := strictjson.Decode(body, &ans); err != nil {
		return 0, fmt.Errorf("nudge: %w", err)
	}
	if ans.Seq == nil {
		return 0, errors.New("nudge: no seq in the answer")
	}
	return *ans.Seq, nil
}

// nudgeLoop long-polls the nudge channel until ctx ends and signals the
// run loop on every change of the sequence.
func (a *Agent) nudgeLoop(ctx context.Context) {
	var seq int64
	first := true
	fails := 0
	for ctx.Err() == nil {
		start := time.Now()
		got, err := a.pollNudge(ctx, seq)
		var wait time.Duration
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errNoNudge):
			fails = 0
			wait = nudgeOldServer
			a.log.Debug("no nudge channel at the server; asking again later", "in", wait)
		case err != nil:
			fails++
			d := min(time.Second<<min(fails-1, 6), nudgeMaxBackoff)
			wait = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
			a.log.Debug("nudge poll failed", "err", err, "in", wait.Round(time.Millisecond))
		default:
			fails = 0
			if first || got != seq {
				first = false
				seq = got
				a.log.Debug("nudged", "seq", seq)
				select {
				case a.poke <- struct{}{}:
				default:
				}
			} else if d := time.Since(start); d < nudgeMinInterval {
				wait = nudgeMinInterval - d
			}
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}
