package bench

// Revocation to mitigation on a simulated fleet. Each SimDevice speaks
// the device protocol the agent speaks, over real HTTP to a real server:
// signed device requests (devauth), the revocation list from the server's
// mirror (GET /v1/devices/{id}/revocations, ETag and 304), verified with
// attest.VerifyRevocations under the pinned certifier root as the agent's
// CheckRevocations does, and, when the list revokes the artifact it runs,
// a signed "degraded" report (module, mode, advisories) to
// POST /v1/devices/{id}/reports. It stands in for the agent's process
// and its module restart: what is measured is the fleet's path through
// the server, not the confined restart on a device.
//
// Two ways to learn of a new list: polling it every Poll (jittered), or
// long-polling GET /v1/devices/{id}/nudge and fetching it when nudged.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/devauth"
	"github.com/ztota/ztota/internal/report"
)

// Bounds of the simulation.
const (
	MaxSimDevices = 20_000
	// maxNudgeBody bounds a nudge answer.
	maxNudgeBody = 4 << 10
	// nudgeWait is the long poll's wait (the server's default).
	nudgeWait = 25
)

// SimDevice is one simulated device.
type SimDevice struct {
	ID      string
	Key     ed25519.PrivateKey
	Module  string
	Version string // of the installed release
	SHA256  string // the installed artifact

	http  *http.Client // signed requests (list, reports)
	long  *http.Client // signed long polls (own connection)
	seq   uint64
	list  *attest.RevocationList
	etag  string
	nseq  int64
	nseen bool

	// What the device did in the running round.
	degraded   atomic.Bool
	Fetches    atomic.Int64 // list GETs
	Lists      atomic.Int64 // of which 200 (a new list)
	VerifyTime atomic.Int64 // nanoseconds in VerifyRevocations
	ReportTime atomic.Int64 // nanoseconds of the degraded report's POST
	// RevokedAt is when the device found its artifact revoked in a
	// verified list (Unix nanoseconds; 0: not yet), before it reports.
	RevokedAt atomic.Int64
}

// NewSimDevice makes a device with its own connections (base is cloned:
// a device does not share connections with others), signing as id with
// key.
func NewSimDevice(id string, key ed25519.PrivateKey, base *http.Transport) *SimDevice {
	tr := base.Clone()
	tr.MaxIdleConnsPerHost = 2
	tr.DisableCompression = true
	sign := &devauth.Transport{Base: tr, DeviceID: id, Key: key}
	return &SimDevice{ID: id, Key: key, Module: "app",
		http: &http.Client{Transport: sign, Timeout: 30 * time.Second},
		long: &http.Client{Transport: sign, Timeout: (nudgeWait + 30) * time.Second}}
}

// Installed records the release the device runs (a new round).
func (d *SimDevice) Installed(version, sha string) {
	d.Version, d.SHA256 = version, sha
	d.degraded.Store(false)
	d.Fetches.Store(0)
	d.Lists.Store(0)
	d.VerifyTime.Store(0)
	d.ReportTime.Store(0)
	d.RevokedAt.Store(0)
}

// Degraded says whether the device reported its module degraded in this
// round.
func (d *SimDevice) Degraded() bool { return d.degraded.Load() }

// NextReport makes the device's next report.
func (d *SimDevice) NextReport(state report.State) report.Report {
	d.seq++
	r := report.New(d.ID, d.seq, state, time.Now())
	r.Module = d.Module
	return r
}

// Post sends signed reports to the server and wants 200.
func (d *SimDevice) Post(ctx context.Context, base string, rs ...report.Report) error {
	var batch []report.Signed
	for _, r := range rs {
		s, err := report.SignReport(d.Key, r)
		if err != nil {
			return err
		}
		batch = append(batch, s)
	}
	body, err := json.Marshal(batch)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/devices/"+d.ID+"/reports", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	code, _, b, err := do(d.http, req, 64<<10)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("%w: reports of %s: %d %s", ErrUnexpectedStatus, d.ID, code, report.Clean(string(b), 256, false))
	}
	return nil
}

// do sends req and reads at most max bytes of the answer.
func do(c *http.Client, req *http.Request, max int64) (int, http.Header, []byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return 0, nil, nil, err
	}
	if int64(len(b)) > max {
		return 0, nil, nil, fmt.Errorf("answer larger than %d bytes", max)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// Refresh fetches the revocation list (conditional GET), verifies a new
// one under root against the one held, and, when it revokes the
// installed artifact, reports the module degraded. It returns whether
// the device is degraded.
func (d *SimDevice) Refresh(ctx context.Context, base string, root *certroot.Root) (bool, error) {
	if d.degraded.Load() {
		return true, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/devices/"+d.ID+"/revocations", nil)
	if err != nil {
		return false, err
	}
	if d.etag != "" {
		req.Header.Set("If-None-Match", d.etag)
	}
	d.Fetches.Add(1)
	code, hdr, body, err := do(d.http, req, attest.MaxRevocationsSize)
	if err != nil {
		return false, err
	}
	switch code {
	case http.StatusNotModified:
		return false, nil
	case http.StatusOK:
	default:
		return false, fmt.Errorf("%w: revocation list of %s: %d", ErrUnexpectedStatus, d.ID, code)
	}
	d.Lists.Add(1)
	start := time.Now()
	l, err := attest.VerifyRevocations(root, body, d.list, start)
	d.VerifyTime.Add(int64(time.Since(start)))
	if err != nil {
		return false, fmt.Errorf("device %s: revocation list refused: %w", d.ID, err)
	}
	d.list, d.etag = l, hdr.Get("ETag")
	r, revoked := l.Lookup(d.SHA256, "")
	if !revoked {
		return false, nil
	}
	d.RevokedAt.Store(time.Now().UnixNano())
	rep := d.NextReport(report.StateDegraded)
	rep.Version, rep.Mode, rep.Advisories = d.Version, report.ModeDegraded, strings.Join(r.Advisories, ",")
	rep.Detail = fmt.Sprintf("revoked by revocation list version %d: module %s restarted in its degraded profile", l.Version, d.Module)
	start = time.Now()
	err = d.Post(ctx, base, rep)
	d.ReportTime.Add(int64(time.Since(start)))
	if err != nil {
		return false, err
	}
	d.degraded.Store(true)
	return true, nil
}

// Nudged long-polls the nudge endpoint once and says whether the
// sequence changed (the first answer only sets it).
func (d *SimDevice) Nudged(ctx context.Context, base string, wait int) (bool, error) {
	q := "?wait=" + strconv.Itoa(wait)
	if d.nseen {
		q += "&after=" + strconv.FormatInt(d.nseq, 10)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/devices/"+d.ID+"/nudge"+q, nil)
	if err != nil {
		return false, err
	}
	code, _, body, err := do(d.long, req, maxNudgeBody)
	if err != nil {
		return false, err
	}
	if code != http.StatusOK {
		return false, fmt.Errorf("%w: nudge of %s: %d", ErrUnexpectedStatus, d.ID, code)
	}
	var a struct {
		Seq int64 `json:"seq"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return false, fmt.Errorf("nudge answer of %s: %v", d.ID, err)
	}
	changed := d.nseen && a.Seq != d.nseq
	d.nseq, d.nseen = a.Seq, true
	return changed, nil
}

// CloseIdle closes the device's idle connections.
func (d *SimDevice) CloseIdle() {
	d.http.CloseIdleConnections()
	d.long.CloseIdleConnections()
}

// Fleet runs simulated devices against one server.
type Fleet struct {
	Base    string // the server's URL
	Root    *certroot.Root
	Devices []*SimDevice
}

// PollMode: every device refreshes its list every Poll ± Jitter (a
// fraction), starting at a random phase, until it is degraded or ctx
// ends.
func (f *Fleet) PollMode(ctx context.Context, poll time.Duration, jitter float64) error {
	if err := f.validate(); err != nil {
		return err
	}
	if poll <= 0 || jitter < 0 || jitter >= 1 {
		return fmt.Errorf("%w: poll %s, jitter %.2f", ErrBadLoad, poll, jitter)
	}
	return f.each(ctx, func(ctx context.Context, d *SimDevice) error {
		if !sleep(ctx, rand.N(poll)) {
			return nil
		}
		for {
			done, err := d.Refresh(ctx, f.Base, f.Root)
			if err != nil || done {
				return err
			}
			j := 1 + jitter*(2*rand.Float64()-1)
			if !sleep(ctx, time.Duration(float64(poll)*j)) {
				return nil
			}
		}
	})
}

// NudgeMode: every device long-polls the nudge endpoint and refreshes
// its list when nudged, and every slowPoll besides, until it is degraded
// or ctx ends. ready is called once every device has sent its first
// waiting long poll.
func (f *Fleet) NudgeMode(ctx context.Context, slowPoll time.Duration, ready func()) error {
	if err := f.validate(); err != nil {
		return err
	}
	var started sync.WaitGroup
	started.Add(len(f.Devices))
	go func() { started.Wait(); ready() }()
	return f.each(ctx, func(ctx context.Context, d *SimDevice) error {
		// The first answer gives the sequence at once.
		_, err := d.Nudged(ctx, f.Base, 0)
		once := sync.OnceFunc(started.Done)
		defer once()
		if err != nil {
			return err
		}
		last := time.Now()
		for {
			once()
			changed, err := d.Nudged(ctx, f.Base, nudgeWait)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return err
			}
			if changed || time.Since(last) >= slowPoll {
				last = time.Now()
				done, err := d.Refresh(ctx, f.Base, f.Root)
				if err != nil || done {
					return err
				}
			}
		}
	})
}

// GetAll sends one signed GET of url(d) from every device at once and
// wants 200 from each.
func (f *Fleet) GetAll(ctx context.Context, url func(*SimDevice) string) error {
	if err := f.validate(); err != nil {
		return err
	}
	return f.each(ctx, func(ctx context.Context, d *SimDevice) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url(d), nil)
		if err != nil {
			return err
		}
		code, _, _, err := do(d.http, req, attest.MaxRevocationsSize)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("%w: %s: %d", ErrUnexpectedStatus, req.URL.Path, code)
		}
		return err
	})
}

func (f *Fleet) validate() error {
	if len(f.Devices) == 0 || len(f.Devices) > MaxSimDevices || f.Root == nil {
		return fmt.Errorf("%w: %d devices (1..%d) and a certifier root", ErrBadLoad, len(f.Devices), MaxSimDevices)
	}
	return nil
}

// each runs fn for every device until all return; the first error ends
// the others and is returned.
func (f *Fleet) each(ctx context.Context, fn func(context.Context, *SimDevice) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, d := range f.Devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx, d); err != nil && ctx.Err() == nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Percentile returns the p-th percentile (0 <= p <= 100, nearest rank;
// 0 is the least) of ds, or 0 for none.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
