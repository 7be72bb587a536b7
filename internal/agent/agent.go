package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/devauth"
	"github.com/ztota/ztota/internal/diskspace"
	"github.com/ztota/ztota/internal/enroll"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/outbox"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/slot"
	"github.com/ztota/ztota/internal/strictjson"
	"github.com/ztota/ztota/internal/tlsutil"
)

// Agent is one device's update agent.
type Agent struct {
	cfg *Config
	log *slog.Logger
	key ed25519.PrivateKey
	box *outbox.Outbox

	// mods are the supervised modules (module.go), in configuration
	// order; byName finds them by name.
	mods   []*module
	byName map[string]*module
	// exitCh is signalled when a module process exits; poke when the
	// nudge channel asks for a refresh now.
	exitCh chan struct{}
	poke   chan struct{}
	// nudgeHTTP is the signed client of the nudge long poll (its timeout
	// exceeds the poll's wait).
	nudgeHTTP *http.Client

	meta *http.Client // signed, with a per-request timeout
	bulk *http.Client // signed, no overall timeout (fetch bounds it)
	// plain is unsigned (enrollment), with the same TLS settings.
	plain *http.Client

	mu    sync.Mutex // guards st
	st    persisted
	nudge chan struct{}

	etags    map[string]string
	lastErr  string
	lastFull time.Time
	retry    bool // the last install failed transiently: refresh and try again
	// unknownSeen: assignments for modules this agent does not supervise,
	// already reported.
	unknownSeen map[string]bool
	// writeFault, if set (tests), fails download writes (a full disk).
	writeFault func(off int64, n int) error
	// halt, when set (tests only, from ZTOTA_TEST_HALT_AT), names a step at
	// which the agent stops still so that a test can SIGKILL it there.
	halt string
	// OnStep, if set, is called at each named install step (tests use it
	// to tamper with files between check and use).
	OnStep func(step string)

	freeSpace diskspace.Func // nil: statfs

	stopSend context.CancelFunc
	sendDone chan struct{}

	deadMu sync.Mutex
	dead   []string // ids dead-lettered since the last notice

	// Certification (cert.go): the pinned certifier root (nil: not
	// enforced), when the list was last checked, and what was reported
	// about it (each reported once).
	certRoot      *certroot.Root
	lastList      time.Time
	staleReported bool
	lastListErr   string
	// listStaleReported: the list-stale report of the stale policy was
	// made (once per stale period).
	listStaleReported bool
}

// Steps at which a crash test may halt the agent.
const (
	StepDownloaded = "downloaded"
	StepStaged     = "staged"
	StepPending    = "pending"
	StepBooted     = "booted"
	StepHealthy    = "healthy"
	StepCommitted  = "committed"
)

// New prepares an agent: device key, slots, outbox, state.
func New(ctx context.Context, cfg *Config, log *slog.Logger) (*Agent, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	for _, d := range []string{"download", "tuf"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, d), 0o700); err != nil {
			return nil, err
		}
	}
	a := &Agent{cfg: cfg, log: log.With("device", cfg.DeviceID), nudge: make(chan struct{}, 1), etags: map[string]string{},
		halt: os.Getenv("ZTOTA_TEST_HALT_AT"), exitCh: make(chan struct{}, 1), poke: make(chan struct{}, 1), unknownSeen: map[string]bool{}}
	kp := filepath.Join(cfg.DataDir, "device.key")
	k, err := keys.Load(kp)
	if errors.Is(err, os.ErrNotExist) {
		if k, err = keys.Generate(keys.Ed25519); err != nil {
			return nil, err
		}
		if err := keys.Save(kp, k); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	priv, ok := k.Private.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: the device key must be ed25519", kp)
	}
	a.key = priv
	if err := a.loadCertRoot(); err != nil {
		return nil, err
	}
	if a.st, err = loadState(a.statePath()); err != nil {
		return nil, err
	}
	if err := a.openModules(ctx); err != nil {
		return nil, err
	}
	// The floor is at least the committed slot's release counter, whatever
	// state.json says (a crash between the commit and its save).
	for _, m := range a.mods {
		if _, err := a.floor(ctx, m); err != nil {
			return nil, err
		}
	}
	if a.box, err = outbox.Open(ctx, filepath.Join(cfg.DataDir, "outbox"), 8<<20); err != nil {
		return nil, err
	}
	tr, err := tlsutil.Transport(cfg.ServerCA)
	if err != nil {
		return nil, fmt.Errorf("server_ca: %w", err)
	}
	tr.ResponseHeaderTimeout = time.Duration(cfg.HTTPTimeout)
	a.plain = &http.Client{Transport: tr, Timeout: time.Duration(cfg.HTTPTimeout)}
	// ServerClock: a device clock off by more than devauth.MaxSkew (no
	// real-time clock, drift) must not lock the device out for ever.
	signed := &devauth.Transport{Base: tr, DeviceID: cfg.DeviceID, Key: priv, ServerClock: true}
	a.meta = &http.Client{Transport: signed, Timeout: time.Duration(cfg.HTTPTimeout)}
	a.bulk = &http.Client{Transport: signed}
	a.nudgeHTTP = &http.Client{Transport: signed, Timeout: nudgeWait + time.Duration(cfg.HTTPTimeout)}
	return a, nil
}

func (a *Agent) statePath() string { return filepath.Join(a.cfg.DataDir, "state.json") }

// PublicKey returns the device's public key.
func (a *Agent) PublicKey() ed25519.PublicKey { return a.key.Public().(ed25519.PublicKey) }

// haltAt stops the agent still at a named step when a crash test asked for
// it, and returns otherwise.
func (a *Agent) haltAt(step string) {
	if a.OnStep != nil {
		a.OnStep(step)
	}
	if a.halt == step {
		fmt.Fprintf(os.Stderr, "ZTOTA-HALTED %s\n", step)
		select {}
	}
}

// Enroll registers the device key with the server, once; later calls
// return at once. The one-time token never leaves the device: the request
// carries an HMAC keyed by it over the device id, hardware id, public key
// and a fresh nonce, and the device counts itself enrolled only when the
// server's answer carries an HMAC keyed by the same token over the same
// fields and nonce (package enroll). Asking again after a lost answer is
// safe: the server answers a repeated enrollment of the same id and key
// again.
func (a *Agent) Enroll(ctx context.Context) error {
	marker := filepath.Join(a.cfg.DataDir, "enrolled")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if a.cfg.EnrollToken == "" {
		return errors.New("the device is not enrolled: set enroll_token in the agent configuration")
	}
	er := enroll.NewRequest(a.cfg.EnrollToken, a.cfg.DeviceID, a.cfg.HardwareID, a.PublicKey())
	body, _ := json.Marshal(er)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(a.cfg.ServerURL, "/")+"/v1/enroll", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.plain.Do(req)
	if err != nil {
		return fmt.Errorf("enrolling: %w", err)
	}
	defer resp.Body.Close()
	msg, err := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if err != nil {
		return fmt.Errorf("enrolling: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("enrolling: server answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	var answer enroll.Response
	if err := strictjson.Decode(msg, &answer); err != nil {
		return fmt.Errorf("enrolling: %w: %v", enroll.ErrMalformed, err)
	}
	if err := er.VerifyResponse(a.cfg.EnrollToken, answer); err != nil {
		return fmt.Errorf("enrolling: %w", err)
	}
	a.log.Info("enrolled", "group", answer.Group)
	return keys.WriteFileAtomic(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600)
}

// Start enrolls (once), starts the report sender and boots the current
// slot: a slot on trial is health-checked and committed or rolled back.
// Stop undoes it.
func (a *Agent) Start(ctx context.Context) error {
	for n := 1; ; n++ {
		err := a.Enroll(ctx)
		if err == nil {
			break
		}
		// A refused enrollment may pass (the operator issues a token,
		// a proxy stops rewriting): retried, with bounded back-off.
		wait := min(backoff(n), time.Minute)
		a.log.Warn("enrollment failed; retrying", "err", err, "in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.stopSend = cancel
	a.sendDone = make(chan struct{})
	go func() { defer close(a.sendDone); a.sendLoop(sctx) }()
	var errs []error
	for _, m := range a.mods {
		if err := a.boot(ctx, m); err != nil {
			a.log.Error("boot", "module", m.name(), "err", err)
			if errors.Is(err, slot.ErrTampered) {
				m.activeBad = true
			}
			if ctx.Err() == nil {
				a.mreport(ctx, m, report.StateFailed, "", "", 0, err.Error())
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stop stops the module and the report sender (after a last flush).
func (a *Agent) Stop() {
	for _, m := range a.mods {
		a.stopModule(m)
	}
	if a.stopSend != nil {
		a.stopSend()
		<-a.sendDone
		a.stopSend = nil
	}
}

// Run starts the agent and polls for updates until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	err := a.Start(ctx)
	defer a.Stop()
	if err != nil && ctx.Err() != nil {
		return nil
	}
	if a.cfg.nudgeOn() {
		nctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); a.nudgeLoop(nctx) }()
		defer func() { cancel(); <-done }()
	}
	for {
		if a.revocationsDue() {
			a.lastList = time.Now()
			if err := a.CheckRevocations(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("revocation list", "err", err)
			}
		}
		if err := a.Cycle(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("update cycle", "err", err)
		}
		wait := time.Duration(a.cfg.PollInterval)
		wait = wait*4/5 + time.Duration(rand.Int64N(int64(wait)*2/5+1))
		if a.certRoot != nil {
			wait = min(wait, max(time.Until(a.lastList.Add(time.Duration(a.cfg.RevocationsInterval))), 0))
		}
		if a.retry {
			// A transient failure: try again after its back-off (past
			// it, the poll interval paces the attempts).
			var next time.Time
			for _, m := range a.mods {
				if !m.retryAt.IsZero() && (next.IsZero() || m.retryAt.Before(next)) {
					next = m.retryAt
				}
			}
			if until := time.Until(next); until > 0 {
				wait = until
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		case <-a.poke:
			// A nudge: the revocation list and a check-in now.
			if a.certRoot != nil {
				a.lastList = time.Time{}
			}
			a.retry = true
		case <-a.exitCh:
			for _, m := range a.exitedModules() {
				a.log.Warn("module exited; restarting it", "module", m.name())
				if err := a.startActive(ctx, m); err != nil {
					a.log.Error("restarting module", "module", m.name(), "err", err)
				}
			}
		}
	}
}

// report records a signed status report in the outbox and nudges the
// sender, and returns the report's id ("" when it could not be queued).
// Text fields are cleaned (report.Clean: no escape sequences or control
// characters, cut at a character boundary within the bound) before
// signing, so that any text, such as a health command's coloured output,
// makes a valid report. A terminal report is never dropped (see queue).
func (a *Agent) report(ctx context.Context, state report.State, target, version string, progress int, detail string) string {
	return a.reportX(ctx, reportExtra{}, state, target, version, progress, detail)
}

// reportExtra are the module fields of a report.
type reportExtra struct {
	module, mode string
	advisories   []string
}

// mreport reports about module m: the report names it and carries its
// mode after the report (and the advisories of a mitigation).
func (a *Agent) mreport(ctx context.Context, m *module, state report.State, target, version string, progress int, detail string) string {
	mode, adv := a.modeOf(m)
	return a.reportX(ctx, reportExtra{module: m.name(), mode: mode, advisories: adv}, state, target, version, progress, detail)
}

func (a *Agent) reportX(ctx context.Context, x reportExtra, state report.State, target, version string, progress int, detail string) string {
	a.mu.Lock()
	a.st.Seq++
	seq := a.st.Seq
	err := saveState(a.statePath(), a.st)
	a.mu.Unlock()
	if err != nil {
		a.log.Error("saving state", "err", err)
	}
	r := report.New(a.cfg.DeviceID, seq, state, time.Now())
	r.Target = report.Clean(target, report.MaxTarget, false)
	r.Version = report.Clean(version, report.MaxVersion, false)
	r.Progress = min(max(progress, 0), 100)
	r.Detail = report.Clean(detail, report.MaxDetail, true)
	r.Module, r.Mode = x.module, x.mode
	if len(x.advisories) > 0 {
		r.Advisories = report.Clean(strings.Join(x.advisories, ","), report.MaxAdvisories, false)
	}
	s, err := report.SignReport(a.key, r)
	if err != nil {
		// Not expected with cleaned fields: keep the state, say why.
		a.log.Error("signing report", "state", state, "err", err)
		r.Target, r.Version = "", ""
		r.Detail = report.Clean("this report could not be signed as made: "+err.Error(), report.MaxDetail, true)
		if s, err = report.SignReport(a.key, r); err != nil {
			a.log.Error("signing report", "state", state, "err", err)
			return ""
		}
	}
	if err := a.queue(ctx, s, r); err != nil {
		a.log.Error("queueing report", "state", state, "err", err)
		return ""
	}
	a.log.Info("status", "state", state, "module", x.module, "target", target, "progress", progress, "detail", r.Detail)
	select {
	case a.nudge <- struct{}{}:
	default:
	}
	return r.ID
}

// queue adds a signed report to the outbox. When the outbox is full it
// first sends what is queued; for a terminal report it then evicts the
// oldest progress reports, and if the outbox holds nothing but terminal
// reports it waits, sending with back-off, until there is room or ctx
// ends. Only progress reports are ever dropped (the gap in seq tells the
// server).
func (a *Agent) queue(ctx context.Context, s report.Signed, r report.Report) error {
	add := func() error { return a.box.Add(context.WithoutCancel(ctx), s, r.ID) }
	flush := func() {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		a.box.Flush(fctx, 64, a.sendBatch)
		cancel()
	}
	err := add()
	if !errors.Is(err, outbox.ErrFull) {
		return err
	}
	flush()
	if err = add(); !errors.Is(err, outbox.ErrFull) || !r.State.Terminal() {
		return err
	}
	if err := a.evictProgress(ctx, int64(len(s.Payload)+len(s.Sig)+len(r.ID))+64); err != nil {
		return err
	}
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		if err = add(); !errors.Is(err, outbox.ErrFull) {
			return err
		}
		a.log.Warn("the outbox is full of terminal reports; waiting for the server to take them", "state", r.State)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; the %s report waited until the agent stopped", err, r.State)
		case <-time.After(wait):
		}
		flush()
	}
}

// evictProgress evicts the oldest pending progress (non-terminal) reports,
// at least need bytes of them if there are that many.
func (a *Agent) evictProgress(ctx context.Context, need int64) error {
	pending, err := a.box.Pending(context.WithoutCancel(ctx), 0)
	if err != nil {
		return err
	}
	var ids []string
	var freed int64
	for _, e := range pending {
		if freed >= need {
			break
		}
		if entryState(e).Terminal() {
			continue
		}
		ids = append(ids, e.ID)
		freed += int64(len(e.Signed.Payload) + len(e.Signed.Sig) + len(e.ID))
	}
	if len(ids) == 0 {
		return nil
	}
	a.log.Warn("outbox full: evicting progress reports to keep a terminal one", "evicted", len(ids))
	return a.box.Evict(context.WithoutCancel(ctx), ids)
}

// entryState is the state a queued report announces (the agent's own
// signed payload).
func entryState(e outbox.Entry) report.State {
	var p struct {
		State report.State `json:"state"`
	}
	if json.Unmarshal(e.Signed.Payload, &p) != nil {
		return ""
	}
	return p.State
}

func (a *Agent) sendLoop(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		if _, err := a.box.Flush(ctx, 64, a.sendBatch); err != nil && ctx.Err() == nil {
			a.log.Debug("reports not sent yet", "err", err)
		}
		if a.noticeDeadLetters(ctx) {
			continue
		}
		select {
		case <-ctx.Done():
			// A last attempt so that the final state reaches the server.
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			a.box.Flush(fctx, 64, a.sendBatch)
			cancel()
			return
		case <-t.C:
		case <-a.nudge:
		}
	}
}

// batchRefused is the server's refusal of the reports themselves (400,
// 413, 422): sending the same bytes again cannot succeed. Other answers
// say nothing about the reports and are retried: 401 (the request's
// signature, the device's clock, an enrollment not yet known), 403, 409
// (a replayed request nonce: the next request has a fresh one), 429, 5xx.
type batchRefused struct {
	code int
	msg  string
}

func (e *batchRefused) Error() string {
	return fmt.Sprintf("server refused reports: %d %s: %s", e.code, http.StatusText(e.code), e.msg)
}

func (a *Agent) post(ctx context.Context, batch []outbox.Entry) error {
	signed := make([]report.Signed, len(batch))
	for i, e := range batch {
		signed[i] = e.Signed
	}
	body, err := json.Marshal(signed)
	if err != nil {
		return err
	}
	url := fmt.Sprintf("%s/v1/devices/%s/reports", strings.TrimRight(a.cfg.ServerURL, "/"), a.cfg.DeviceID)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.meta.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return &batchRefused{code: resp.StatusCode, msg: report.Clean(strings.TrimSpace(string(msg)), 512, false)}
	}
	return fmt.Errorf("server refused reports: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
}

// sendBatch sends a batch. When the server refuses the reports themselves,
// it sends them one at a time and dead-letters those refused alone, so
// that one report the server will never take cannot block the outbox.
func (a *Agent) sendBatch(ctx context.Context, batch []outbox.Entry) error {
	err := a.post(ctx, batch)
	var br *batchRefused
	if !errors.As(err, &br) {
		return err
	}
	if len(batch) == 1 {
		return a.deadLetter(batch[0], br)
	}
	for _, e := range batch {
		err := a.post(ctx, []outbox.Entry{e})
		if errors.As(err, &br) {
			if err := a.deadLetter(e, br); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err // the server stores a resent report once (by id)
		}
	}
	return nil
}

// maxDeadLetter bounds deadletter.jsonl; past it the oldest lines go.
const maxDeadLetter = 256 << 10

// deadLetterFile is where refused reports are kept, one JSON object a line.
const deadLetterFile = "deadletter.jsonl"

// deadLetter keeps a report the server refused in deadletter.jsonl and
// queues a notice of it (see noticeDeadLetters).
func (a *Agent) deadLetter(e outbox.Entry, why *batchRefused) error {
	line, err := json.Marshal(struct {
		ID     string        `json:"id"`
		Time   time.Time     `json:"time"`
		Status int           `json:"status"`
		Reason string        `json:"reason"`
		Report report.Signed `json:"report"`
	}{e.ID, time.Now().UTC(), why.code, why.msg, e.Signed})
	if err != nil {
		return err
	}
	line = append(line, '\n')
	p := filepath.Join(a.cfg.DataDir, deadLetterFile)
	old, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	data := append(old, line...)
	for len(data) > maxDeadLetter {
		i := bytes.IndexByte(data, '\n')
		if i < 0 || i == len(data)-1 {
			data = line
			break
		}
		data = data[i+1:]
	}
	if err := keys.WriteFileAtomic(p, data, 0o600); err != nil {
		return fmt.Errorf("dead-lettering report %s: %w", e.ID, err)
	}
	a.log.Error("the server refused a report; dead-lettered", "id", e.ID, "status", why.code, "reason", why.msg)
	if isDeadNotice(e) {
		return nil // no notice of a notice: the server refuses those too
	}
	a.deadMu.Lock()
	a.dead = append(a.dead, e.ID)
	a.deadMu.Unlock()
	return nil
}

// deadNotice starts the detail of a dead-letter notice.
const deadNotice = "the server refused "

// isDeadNotice reports whether a queued report is a dead-letter notice.
func isDeadNotice(e outbox.Entry) bool {
	var p struct {
		State  report.State `json:"state"`
		Detail string       `json:"detail"`
	}
	return json.Unmarshal(e.Signed.Payload, &p) == nil && p.State == report.StateFailed && strings.HasPrefix(p.Detail, deadNotice)
}

// noticeDeadLetters reports "failed" naming the reports dead-lettered
// since the last notice, and says whether it queued one. A notice the
// server refuses in turn is dead-lettered without a new notice.
func (a *Agent) noticeDeadLetters(ctx context.Context) bool {
	a.deadMu.Lock()
	ids := a.dead
	a.dead = nil
	a.deadMu.Unlock()
	if len(ids) == 0 || ctx.Err() != nil {
		return false
	}
	detail := fmt.Sprintf("%s%d report(s), kept in %s on the device: %s", deadNotice, len(ids), deadLetterFile, strings.Join(ids, " "))
	return a.report(ctx, report.StateFailed, "", "", 0, detail) != ""
}

// FlushReports sends what the outbox holds (used at shutdown and by tests).
func (a *Agent) FlushReports(ctx context.Context) error {
	_, err := a.box.Flush(ctx, 64, a.sendBatch)
	if err == nil && a.noticeDeadLetters(ctx) {
		_, err = a.box.Flush(ctx, 64, a.sendBatch)
	}
	return err
}

// SlotState returns the A/B slot state of the (first) module (for status
// and tests).
func (a *Agent) SlotState(ctx context.Context) (slot.State, error) { return a.mods[0].slots.State(ctx) }

// ModuleSlotState returns the A/B slot state of the module name.
func (a *Agent) ModuleSlotState(ctx context.Context, name string) (slot.State, error) {
	m := a.module(name)
	if m == nil {
		return slot.State{}, fmt.Errorf("no module %q", name)
	}
	return m.slots.State(ctx)
}

// Refused returns the artifacts the (first) module refused, with the
// reasons.
func (a *Agent) Refused() map[string]string { return a.ModuleRefused("") }

// ModuleRefused returns the artifacts the module name refused.
func (a *Agent) ModuleRefused(name string) map[string]string {
	m := a.module(name)
	if m == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	rs := a.ms(m).Refused
	out := make(map[string]string, len(rs))
	for k, v := range rs {
		out[k] = v.Why
	}
	return out
}

// ModulePID returns the pid of the running (first) module, or 0.
func (a *Agent) ModulePID() int { return a.ModulePIDOf("") }

// ModulePIDOf returns the pid of the running module name, or 0.
func (a *Agent) ModulePIDOf(name string) int {
	m := a.module(name)
	if m == nil {
		return 0
	}
	m.procMu.Lock()
	defer m.procMu.Unlock()
	if m.proc == nil {
		return 0
	}
	select {
	case <-m.proc.exited():
		return 0
	default:
	}
	return m.proc.cmd.Process.Pid
}

// Close stops the agent and releases its outbox; the agent cannot be
// started again.
func (a *Agent) Close() error {
	a.Stop()
	return a.box.Close()
}
