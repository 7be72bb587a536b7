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
	cfg   *Config
	log   *slog.Logger
	key   ed25519.PrivateKey
	slots slot.Slots
	box   *outbox.Outbox

	meta *http.Client // signed, with a per-request timeout
	bulk *http.Client // signed, no overall timeout (fetch bounds it)
	// plain is unsigned (enrollment), with the same TLS settings.
	plain *http.Client

	mu    sync.Mutex // guards st
	st    persisted
	nudge chan struct{}

	procMu   sync.Mutex // guards proc for readers on other goroutines
	proc     *process
	procDir  string
	etags    map[string]string
	lastErr  string
	lastFull time.Time
	retry    bool // the last install failed transiently: refresh and try again
	// halt, when set (tests only, from ZTOTA_TEST_HALT_AT), names a step at
	// which the agent stops still so that a test can SIGKILL it there.
	halt string
	// OnStep, if set, is called at each named install step (tests use it
	// to tamper with files between check and use).
	OnStep func(step string)

	freeSpace diskspace.Func // nil: statfs
	// activeBad: the committed slot failed verification at boot; the
	// assigned release is installed again into the other slot.
	activeBad bool

	stopSend context.CancelFunc
	sendDone chan struct{}
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
	for _, d := range []string{"download", "slots", "tuf"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, d), 0o700); err != nil {
			return nil, err
		}
	}
	a := &Agent{cfg: cfg, log: log.With("device", cfg.DeviceID), nudge: make(chan struct{}, 1), etags: map[string]string{},
		halt: os.Getenv("ZTOTA_TEST_HALT_AT")}
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
	if a.st, err = loadState(a.statePath()); err != nil {
		return nil, err
	}
	if a.slots, err = slot.OpenDir(ctx, filepath.Join(cfg.DataDir, "slots"), cfg.MaxBoots); err != nil {
		return nil, err
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
	signed := &devauth.Transport{Base: tr, DeviceID: cfg.DeviceID, Key: priv}
	a.meta = &http.Client{Transport: signed, Timeout: time.Duration(cfg.HTTPTimeout)}
	a.bulk = &http.Client{Transport: signed}
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
	for {
		err := a.Enroll(ctx)
		if err == nil {
			break
		}
		a.log.Warn("enrollment failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.stopSend = cancel
	a.sendDone = make(chan struct{})
	go func() { defer close(a.sendDone); a.sendLoop(sctx) }()
	if err := a.boot(ctx); err != nil {
		a.log.Error("boot", "err", err)
		if errors.Is(err, slot.ErrTampered) {
			a.activeBad = true
		}
		if ctx.Err() == nil {
			a.report(ctx, report.StateFailed, "", "", 0, err.Error())
		}
		return err
	}
	return nil
}

// Stop stops the module and the report sender (after a last flush).
func (a *Agent) Stop() {
	a.proc.stop(5 * time.Second)
	a.setProc(nil, "")
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
	for {
		if err := a.Cycle(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("update cycle", "err", err)
		}
		wait := time.Duration(a.cfg.PollInterval)
		wait = wait*4/5 + time.Duration(rand.Int64N(int64(wait)*2/5+1))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		case <-a.exitedModule():
			a.log.Warn("module exited; restarting it")
			if err := a.startActive(ctx); err != nil {
				a.log.Error("restarting module", "err", err)
			}
		}
	}
}

func (a *Agent) exitedModule() <-chan struct{} {
	if a.proc == nil {
		return nil
	}
	return a.proc.exited()
}

// report records a signed status report in the outbox and nudges the sender.
func (a *Agent) report(ctx context.Context, state report.State, target, version string, progress int, detail string) {
	a.mu.Lock()
	a.st.Seq++
	seq := a.st.Seq
	err := saveState(a.statePath(), a.st)
	a.mu.Unlock()
	if err != nil {
		a.log.Error("saving state", "err", err)
	}
	r := report.New(a.cfg.DeviceID, seq, state, time.Now())
	r.Target, r.Version, r.Progress = target, version, progress
	if len(detail) > 1000 {
		detail = detail[:1000]
	}
	r.Detail = detail
	s, err := report.SignReport(a.key, r)
	if err != nil {
		a.log.Error("signing report", "err", err)
		return
	}
	err = a.box.Add(ctx, s, r.ID)
	if errors.Is(err, outbox.ErrFull) {
		// Make room by sending what is queued, then try once more; the
		// report is dropped only if the server stays unreachable (the
		// gap in seq tells the server).
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		a.box.Flush(fctx, 64, a.sendBatch)
		cancel()
		err = a.box.Add(ctx, s, r.ID)
	}
	if err != nil {
		a.log.Error("queueing report", "err", err)
		return
	}
	a.log.Info("status", "state", state, "target", target, "progress", progress, "detail", detail)
	select {
	case a.nudge <- struct{}{}:
	default:
	}
}

func (a *Agent) sendLoop(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		if _, err := a.box.Flush(ctx, 64, a.sendBatch); err != nil && ctx.Err() == nil {
			a.log.Debug("reports not sent yet", "err", err)
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

func (a *Agent) sendBatch(ctx context.Context, batch []outbox.Entry) error {
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
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("server refused reports: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// FlushReports sends what the outbox holds (used at shutdown and by tests).
func (a *Agent) FlushReports(ctx context.Context) error {
	_, err := a.box.Flush(ctx, 64, a.sendBatch)
	return err
}

// SlotState returns the A/B slot state (for status and tests).
func (a *Agent) SlotState(ctx context.Context) (slot.State, error) { return a.slots.State(ctx) }

// Refused returns the artifacts this device refused, with the reasons.
func (a *Agent) Refused() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]string, len(a.st.Refused))
	for k, v := range a.st.Refused {
		out[k] = v
	}
	return out
}

// ModulePID returns the pid of the running module, or 0.
func (a *Agent) ModulePID() int {
	a.procMu.Lock()
	defer a.procMu.Unlock()
	if a.proc == nil {
		return 0
	}
	select {
	case <-a.proc.exited():
		return 0
	default:
	}
	return a.proc.cmd.Process.Pid
}

func (a *Agent) setProc(p *process, dir string) {
	a.procMu.Lock()
	a.proc, a.procDir = p, dir
	a.procMu.Unlock()
}

// Close stops the agent and releases its outbox; the agent cannot be
// started again.
func (a *Agent) Close() error {
	a.Stop()
	return a.box.Close()
}
