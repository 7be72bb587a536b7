package server

// Server-side mitigation bookkeeping: the server follows the certifier's
// event feed (GET /v1/events of certd, a long poll) and, for a revocation
// or a failing re-inspection of an artifact, halts the running
// deployments of its releases, records one mitigation per device whose
// installed release has that artifact, and files one repair request for
// the integrator. Every event is a DSSE envelope signed with the certify
// key of the certifier root the server pins (Config.CertifierRoot); the
// server acts only on the envelope's payload. The feed cursor is stored in
// the same transaction as what an event causes, so an event is acted on
// at most once and a restart resumes from the cursor.

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certclient"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/strictjson"
	"github.com/ztota/ztota/internal/tlsutil"
)

// EventPayloadType is the DSSE payload type of a certifier event (the
// same as certd.EventPayloadType; not imported to keep certd out of the
// server).
const EventPayloadType = "application/vnd.ztota.event+json"

// Bounds on the feed and on what an event may carry.
const (
	defaultFeedWait       = 30 * time.Second
	maxFeedWait           = 60 * time.Second // certd's longest long poll
	defaultFeedMaxBackoff = time.Minute
	feedMinBackoff        = 200 * time.Millisecond
	maxEventAdvisories    = 256
	maxAdvisoryLen        = 128
	maxEventKindLen       = 64
)

// Errors of the feed follower.
var (
	// ErrForgedEvent is an event whose envelope does not verify under the
	// pinned certifier root, or whose signed payload disagrees with the
	// feed's entry. The follower refuses it, does not move its cursor and
	// keeps retrying (a forged event from a TLS-pinned certifier is an
	// attack or a key mix-up that an operator must see).
	ErrForgedEvent = errors.New("certifier event refused")
	// ErrBadEvent is a signed event whose content the server cannot act on.
	ErrBadEvent = errors.New("malformed certifier event")
)

// FeedStatus is the follower's state, served at GET /v1/feed.
type FeedStatus struct {
	Enabled   bool      `json:"enabled"`
	URL       string    `json:"url,omitempty"`
	Cursor    int64     `json:"cursor"`
	LastOK    time.Time `json:"last_ok,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	// Refused is the sequence number of the event the follower refuses
	// (forged or malformed; 0: none). The cursor stays below it.
	Refused  int64 `json:"refused,omitempty"`
	Failures int   `json:"failures"`
	Acted    int64 `json:"acted"` // events that caused mitigations since start
}

// feedState is the follower's configuration and status.
type feedState struct {
	client *certclient.Client
	root   *certroot.Root
	mu     sync.Mutex
	status FeedStatus
}

// initFeed checks the feed configuration at start: a URL needs the
// certifier root, and plain http needs InsecureHTTP.
func (s *Server) initFeed() error {
	if err := s.checkRepairConfig(); err != nil {
		return err
	}
	c := s.cfg
	if c.CertdURL == "" {
		if c.CertdCAFile != "" {
			return errors.New("server: --certd-ca needs --certd URL")
		}
		return nil
	}
	if err := tlsutil.CheckURL("--certd", c.CertdURL, c.InsecureHTTP); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if c.CertifierRoot == nil {
		return errors.New("server: --certd needs --certifier-root FILE (the certifier's root.json) to verify its events")
	}
	root := c.CertifierRoot
	tr, err := tlsutil.Transport(c.CertdCAFile)
	if err != nil {
		return fmt.Errorf("server: --certd-ca: %w", err)
	}
	cl := certclient.New(c.CertdURL, "")
	cl.HTTP = &http.Client{Transport: tr, Timeout: c.FeedWait + 30*time.Second}
	s.feed = &feedState{client: cl, root: root, status: FeedStatus{Enabled: true, URL: c.CertdURL}}
	return nil
}

// FeedStatus returns the follower's state.
func (s *Server) FeedStatus(ctx context.Context) FeedStatus {
	cur, _ := s.st.FeedCursor(ctx, store.FeedCertd)
	if s.feed == nil {
		return FeedStatus{Cursor: cur}
	}
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	st := s.feed.status
	st.Cursor = cur
	return st
}

// FollowFeed follows the certifier's event feed until ctx ends (Serve
// runs it when Config.CertdURL is set). Errors — a certifier that is
// down, a refused event — are retried after a bounded, jittered backoff,
// never fatal.
func (s *Server) FollowFeed(ctx context.Context) {
	if s.feed == nil {
		return
	}
	go s.pullRevocationsLoop(ctx)
	fails := 0
	for ctx.Err() == nil {
		err := s.feedOnce(ctx)
		s.feed.mu.Lock()
		if err == nil {
			fails = 0
			s.feed.status.LastOK, s.feed.status.LastError, s.feed.status.Refused = s.cfg.Now().UTC(), "", 0
		} else if ctx.Err() == nil {
			fails++
			s.feed.status.LastError = err.Error()
		}
		s.feed.status.Failures = fails
		s.feed.mu.Unlock()
		if err == nil || ctx.Err() != nil {
			continue
		}
		d := min(feedMinBackoff<<min(fails-1, 16), s.cfg.FeedMaxBackoff)
		d = d/2 + rand.N(d/2+1)
		if errors.Is(err, ErrForgedEvent) || errors.Is(err, ErrBadEvent) {
			s.log.Error("certifier feed: event refused; not moving the cursor, will retry", "err", err, "retry_in", d)
		} else {
			s.log.Warn("certifier feed: will retry", "err", err, "retry_in", d)
		}
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
}

// feedEvent is a certifier event as signed.
type feedEvent struct {
	Seq      int64           `json:"seq"`
	Time     time.Time       `json:"time"`
	Kind     string          `json:"kind"`
	Artifact string          `json:"artifact,omitempty"`
	Data     json.RawMessage `json:"data"`
	parsed   eventData
}

// eventData is what the server reads of an event's data (other fields
// are the certifier's and ignored).
type eventData struct {
	Advisories []string `json:"advisories"`
	Verdict    string   `json:"verdict"`
	Reason     string   `json:"reason"`
}

// mitigates reports whether the event calls for mitigation: a revocation,
// or a re-inspection that fails policy.
func (e *feedEvent) mitigates() bool {
	return e.Kind == "revocation" || (e.Kind == attest.KindReinspection && e.parsed.Verdict == attest.VerdictFail)
}

// feedOnce reads one page of the feed after the cursor and acts on it.
func (s *Server) feedOnce(ctx context.Context) error {
	cur, err := s.st.FeedCursor(ctx, store.FeedCertd)
	if err != nil {
		return err
	}
	evs, err := s.feed.client.Events(ctx, cur, s.cfg.FeedWait)
	if err != nil {
		return fmt.Errorf("reading the certifier's events after %d: %w", cur, err)
	}
	for _, raw := range evs {
		e, err := s.verifyEvent(raw)
		if err != nil {
			s.feed.mu.Lock()
			s.feed.status.Refused = raw.Seq
			s.feed.mu.Unlock()
			return err
		}
		if e.Seq <= cur {
			// Delivered again (a certifier that ignores "after", or a
			// replay of a genuine event): already acted on.
			s.log.Info("certifier event at or below the cursor; skipped", "event", e.Seq, "cursor", cur)
			continue
		}
		if err := s.actOnEvent(ctx, e); err != nil {
			return fmt.Errorf("acting on certifier event %d: %w", e.Seq, err)
		}
		cur = e.Seq
	}
	return nil
}

// verifyEvent checks an event's envelope under the pinned root and
// returns its signed payload, which must be the feed entry's event.
func (s *Server) verifyEvent(raw certclient.Event) (feedEvent, error) {
	var e feedEvent
	if len(raw.Envelope) == 0 {
		return e, fmt.Errorf("%w: event %d is not signed", ErrForgedEvent, raw.Seq)
	}
	payload, err := attest.VerifyPayload(s.feed.root, certroot.RoleCertify, EventPayloadType, raw.Envelope, s.cfg.Now())
	if err != nil {
		return e, fmt.Errorf("%w: event %d: %v", ErrForgedEvent, raw.Seq, err)
	}
	if err := strictjson.DecodeUnique(payload, &e, 16); err != nil {
		return e, fmt.Errorf("%w: event %d: %v", ErrBadEvent, raw.Seq, err)
	}
	switch {
	case e.Seq != raw.Seq || e.Kind != raw.Kind || e.Artifact != raw.Artifact:
		return e, fmt.Errorf("%w: event %d: the signed event (seq %d, %s of %q) is not the feed's entry", ErrForgedEvent, raw.Seq, e.Seq, e.Kind, e.Artifact)
	case e.Kind == "" || len(e.Kind) > maxEventKindLen:
		return e, fmt.Errorf("%w: event %d: kind %q", ErrBadEvent, e.Seq, e.Kind)
	}
	if e.Kind != "revocation" && e.Kind != attest.KindReinspection {
		return e, nil
	}
	if len(e.Data) > 0 {
		if err := json.Unmarshal(e.Data, &e.parsed); err != nil {
			return e, fmt.Errorf("%w: event %d data: %v", ErrBadEvent, e.Seq, err)
		}
	}
	if !e.mitigates() {
		return e, nil
	}
	if len(e.Artifact) != 64 || strings.ToLower(e.Artifact) != e.Artifact {
		return e, fmt.Errorf("%w: event %d: artifact %q is not a lower-case hex sha256", ErrBadEvent, e.Seq, e.Artifact)
	}
	if _, err := hex.DecodeString(e.Artifact); err != nil {
		return e, fmt.Errorf("%w: event %d: artifact %q is not a lower-case hex sha256", ErrBadEvent, e.Seq, e.Artifact)
	}
	if len(e.parsed.Advisories) > maxEventAdvisories {
		return e, fmt.Errorf("%w: event %d names %d advisories (at most %d)", ErrBadEvent, e.Seq, len(e.parsed.Advisories), maxEventAdvisories)
	}
	for _, a := range e.parsed.Advisories {
		if a == "" || len(a) > maxAdvisoryLen || strings.IndexFunc(a, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0 {
			return e, fmt.Errorf("%w: event %d: advisory id %q", ErrBadEvent, e.Seq, a)
		}
	}
	return e, nil
}

// MitigationOutcome is what one certifier event caused, handed to the
// after-mitigation hook.
type MitigationOutcome struct {
	EventSeq   int64
	Kind       string
	Artifact   string
	Advisories []string
	Repair     int64    // the repair request's id (0: the artifact is in no release here)
	NewRepair  bool     // whether the event opened it
	Devices    []string // devices with a mitigation newly opened by this event
	Halted     []string // deployments halted
}

// actOnEvent records what event e causes and moves the cursor past it,
// in one transaction; an event at or below the cursor (another follower,
// or a page read before a restart) is skipped.
func (s *Server) actOnEvent(ctx context.Context, e feedEvent) error {
	now := s.cfg.Now().UTC()
	out := MitigationOutcome{EventSeq: e.Seq, Kind: e.Kind, Artifact: e.Artifact, Advisories: e.parsed.Advisories}
	s.mu.Lock()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out.Devices, out.Halted, out.Repair, out.NewRepair = nil, nil, 0, false
		if err := store.AdvanceFeedCursorTx(ctx, tx, store.FeedCertd, e.Seq, now); err != nil {
			return err
		}
		if !e.mitigates() {
			return nil
		}
		rels, err := store.ReleasesOfTx(ctx, tx, e.Artifact)
		if err != nil || len(rels) == 0 {
			return err // not an artifact released here: nothing to do
		}
		what := "revoked"
		if e.Kind != "revocation" {
			what = "failed re-inspection"
		}
		adv := "no advisory named"
		if len(e.parsed.Advisories) > 0 {
			adv = "advisories " + strings.Join(e.parsed.Advisories, ", ")
		}
		reason := fmt.Sprintf("artifact %s %s by the certifier (event %d): %s", e.Artifact, what, e.Seq, adv)
		deps, err := store.RunningDeploymentsOfTx(ctx, tx, e.Artifact)
		if err != nil {
			return err
		}
		for _, id := range deps {
			dep, err := store.DeploymentTx(ctx, tx, id)
			if err != nil {
				return err
			}
			devs, err := store.DeploymentDevicesTx(ctx, tx, id)
			if err != nil {
				return err
			}
			if err := s.haltTx(ctx, tx, dep, devs, reason); err != nil {
				return err
			}
			out.Halted = append(out.Halted, id)
		}
		affected, err := store.DevicesRunningTx(ctx, tx, e.Artifact)
		if err != nil {
			return err
		}
		out.Repair, out.NewRepair, err = store.OpenRepairTx(ctx, tx, store.Repair{
			Artifact: e.Artifact, Releases: rels, Advisories: e.parsed.Advisories, Devices: len(affected),
			Reason: reason, EventSeq: e.Seq,
		}, now)
		if err != nil {
			return err
		}
		for _, d := range affected {
			added, err := store.OpenMitigationTx(ctx, tx, store.Mitigation{
				DeviceID: d.DeviceID, Artifact: e.Artifact, Target: d.Target, Advisories: e.parsed.Advisories,
				Repair: out.Repair, EventSeq: e.Seq,
			}, now)
			if err != nil {
				return err
			}
			if added {
				out.Devices = append(out.Devices, d.DeviceID)
			}
		}
		if out.NewRepair {
			return s.queueWebhookTx(ctx, tx, hookOpened, out.Repair, now)
		}
		return nil
	})
	s.mu.Unlock()
	if errors.Is(err, store.ErrCursorBehind) {
		s.log.Info("certifier event already acted on; skipped", "event", e.Seq)
		return nil
	}
	if err != nil {
		return err
	}
	if e.mitigates() {
		s.afterMitigation(ctx, out)
	} else if e.Kind == attest.KindCertificate || e.Kind == attest.KindReinspection {
		s.fetchCertificate(ctx, e) // a fix may be certified now
		s.kickFix()
	}
	return nil
}

// afterMitigation is called once an event's mitigations are committed:
// it nudges the affected devices to refresh their revocation list now,
// wakes the webhook sender (the "repair.opened" webhook was queued in the
// same transaction) and the fix scanner (autofix.go), which deploys the
// first certified release of the same module with a higher release
// counter to exactly the mitigated devices. A crash between the commit
// and this call loses the call, not the state: the fix scanner works
// from the open mitigations and repair requests, at start and
// periodically, and the webhook sender from its outbox; this call only
// makes them act sooner.
func (s *Server) afterMitigation(ctx context.Context, out MitigationOutcome) {
	s.log.Warn("certifier revocation: mitigations recorded", "event", out.EventSeq, "kind", out.Kind,
		"artifact", out.Artifact, "advisories", out.Advisories, "repair", out.Repair,
		"devices", len(out.Devices), "halted", out.Halted)
	s.feed.mu.Lock()
	s.feed.status.Acted++
	s.feed.mu.Unlock()
	// The list that revokes the artifact is at the server before any
	// device is told to fetch it; a new list nudges every device.
	if fresh, err := s.PullRevocations(ctx); err != nil {
		s.log.Warn("fetching the certifier's revocation list after a revocation", "err", err)
		s.nudgeDevices(out.Devices)
	} else if !fresh {
		s.nudgeDevices(out.Devices)
	} else if s.cfg.OnNudge != nil {
		s.cfg.OnNudge(out.Devices...)
	}
	s.kickWebhook()
	s.kickFix()
	if s.cfg.OnMitigation != nil {
		s.cfg.OnMitigation(ctx, out)
	}
}

// Bounds on the mitigation views' query parameters.
const maxQueryParam = 256

// handleMitigations: GET /v1/mitigations?state=&device=&artifact=&repair=
func (s *Server) handleMitigations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k, v := range q {
		switch k {
		case "state", "device", "artifact", "repair":
		default:
			s.fail(w, r, errorf(http.StatusBadRequest, "unknown query parameter %q (state, device, artifact, repair)", k))
			return
		}
		if len(v) != 1 || len(v[0]) > maxQueryParam {
			s.fail(w, r, errorf(http.StatusBadRequest, "query parameter %q: give it once, at most %d bytes", k, maxQueryParam))
			return
		}
	}
	f := store.MitigationFilter{State: q.Get("state"), Device: q.Get("device"), Artifact: q.Get("artifact")}
	if err := checkMitigationState(f.State); err != nil {
		s.fail(w, r, err)
		return
	}
	if v := q.Get("repair"); v != "" {
		id, err := parseRepairID(v)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		f.Repair = id
	}
	ms, err := s.st.Mitigations(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ms == nil {
		ms = []store.Mitigation{}
	}
	if err := s.withTimelines(r.Context(), ms); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ms)
}

func parseRepairID(v string) (int64, error) {
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 1 {
		return 0, errorf(http.StatusBadRequest, "repair request id %q: want a positive integer", v)
	}
	return id, nil
}

// handleRepairs: GET /v1/repairs
func (s *Server) handleRepairs(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.RawQuery) > 0 {
		s.fail(w, r, errorf(http.StatusBadRequest, "GET /v1/repairs takes no query parameters"))
		return
	}
	rs, err := s.st.Repairs(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if rs == nil {
		rs = []store.Repair{}
	}
	writeJSON(w, http.StatusOK, rs)
}

// RepairView is a repair request with its mitigations.
type RepairView struct {
	store.Repair
	Mitigations []store.Mitigation `json:"mitigations"`
}

// handleRepair: GET /v1/repairs/{id}
func (s *Server) handleRepair(w http.ResponseWriter, r *http.Request) {
	id, err := parseRepairID(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rep, err := s.st.Repair(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ms, err := s.st.Mitigations(r.Context(), store.MitigationFilter{Repair: id})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ms == nil {
		ms = []store.Mitigation{}
	}
	if err := s.withTimelines(r.Context(), ms); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, RepairView{Repair: rep, Mitigations: ms})
}

// handleFeedStatus: GET /v1/feed
func (s *Server) handleFeedStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.FeedStatus(r.Context()))
}
