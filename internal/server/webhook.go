package server

// Signed repair webhooks. With RepairConfig.Webhook set, the server
// POSTs a JSON body
//
//	{"event": "repair.opened" | "repair.fix-deployed" | "repair.closed",
//	 "repair": {...}, "time": "...", "seq": N}
//
// when a repair request opens, when its fix is deployed and when it
// closes, signed with the server's webhook key (an ed25519 key made on
// first start in DATA/webhook.key; its public half is served at GET
// /v1/webhook-key) over the exact body: see package webhook for the
// headers and webhook.Verify for receivers. The event is queued in the
// webhook_outbox table in the same transaction as what it reports, and a
// sender delivers the queue in order of seq, at least once, retrying
// with a bounded backoff; a receiver that fails never holds up
// mitigations, fixes or closing.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/tlsutil"
	"github.com/ztota/ztota/internal/webhook"
)

// Webhook events.
const (
	hookOpened      = "repair.opened"
	hookFixDeployed = "repair.fix-deployed"
	hookClosed      = "repair.closed"
)

// WebhookKeyFile is the webhook key's file in the data directory.
const WebhookKeyFile = "webhook.key"

// maxHookDevices bounds the device ids one webhook names (the count is
// always there).
const maxHookDevices = 1000

// RepairHook is a repair request as a webhook reports it.
type RepairHook struct {
	ID          int64     `json:"id"`
	Artifact    string    `json:"artifact"`
	Releases    []string  `json:"releases"`
	Advisories  []string  `json:"advisories"`
	Devices     []string  `json:"devices"`      // the mitigated devices (at most 1000)
	DeviceCount int       `json:"device_count"` // all of them
	Open        int       `json:"open"`         // mitigations still open
	State       string    `json:"state"`
	FixRelease  string    `json:"fix_release,omitempty"`
	Deployment  string    `json:"deployment,omitempty"`
	Deployments []string  `json:"deployments,omitempty"` // every fix deployment
	Reason      string    `json:"reason"`
	EventSeq    int64     `json:"event_seq"`
	Opened      time.Time `json:"opened"`
	Closed      time.Time `json:"closed,omitzero"`
}

// WebhookBody is the signed body of a repair webhook.
type WebhookBody struct {
	Event  string     `json:"event"`
	Repair RepairHook `json:"repair"`
	Time   time.Time  `json:"time"`
	Seq    int64      `json:"seq"`
}

// WebhookKey is the answer of GET /v1/webhook-key.
type WebhookKey struct {
	Alg       string `json:"alg"`
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"` // base64 standard encoding
}

// webhookSender delivers the outbox.
type webhookSender struct {
	s     *Server
	url   string
	http  *http.Client
	wake  chan struct{}
	priv  ed25519.PrivateKey
	keyID string
}

// loadWebhookKey reads DATA/webhook.key, making it on first start.
func (s *Server) loadWebhookKey() (ed25519.PrivateKey, error) {
	path := filepath.Join(s.cfg.DataDir, WebhookKeyFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		k, err := keys.Generate(keys.Ed25519)
		if err != nil {
			return nil, err
		}
		if err := keys.Save(path, k); err != nil {
			return nil, fmt.Errorf("server: writing the webhook key: %w", err)
		}
	}
	k, err := keys.Load(path)
	if err != nil {
		return nil, fmt.Errorf("server: the webhook key: %w", err)
	}
	priv, ok := k.Private.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("server: the webhook key %s is not an ed25519 key", path)
	}
	return priv, nil
}

// webhookClient checks the webhook configuration and returns the client
// that delivers it (nil when none is configured).
func (s *Server) webhookClient() (*http.Client, error) {
	c := s.cfg.Repair
	if c.Webhook == "" {
		if c.WebhookCAFile != "" {
			return nil, errors.New("server: --repair-webhook-ca needs --repair-webhook URL")
		}
		return nil, nil
	}
	if len(c.Webhook) > 2000 {
		return nil, errors.New("server: --repair-webhook: at most 2000 bytes")
	}
	if err := tlsutil.CheckURL("--repair-webhook", c.Webhook, s.cfg.InsecureHTTP); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	tr, err := tlsutil.Transport(c.WebhookCAFile)
	if err != nil {
		return nil, fmt.Errorf("server: --repair-webhook-ca: %w", err)
	}
	return &http.Client{Transport: tr, Timeout: c.WebhookTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// newWebhookSender makes the sender; nil when no webhook is configured.
func (s *Server) newWebhookSender(priv ed25519.PrivateKey) (*webhookSender, error) {
	hc, err := s.webhookClient()
	if err != nil || hc == nil {
		return nil, err
	}
	return &webhookSender{s: s, url: s.cfg.Repair.Webhook, http: hc, wake: make(chan struct{}, 1), priv: priv,
		keyID: webhook.KeyID(priv.Public().(ed25519.PublicKey))}, nil
}

// kickWebhook wakes the sender (never blocks).
func (s *Server) kickWebhook() {
	if s.repair == nil || s.repair.hook == nil {
		return
	}
	select {
	case s.repair.hook.wake <- struct{}{}:
	default:
	}
}

// queueWebhookTx queues event about repair request id in tx (nothing
// when no webhook is configured).
func (s *Server) queueWebhookTx(ctx context.Context, tx *sql.Tx, event string, id int64, now time.Time) error {
	if s.repair == nil || s.repair.hook == nil {
		return nil
	}
	rep, err := store.RepairTx(ctx, tx, id)
	if err != nil {
		return err
	}
	ms, err := store.MitigationsTx(ctx, tx, store.MitigationFilter{Repair: id})
	if err != nil {
		return err
	}
	h := RepairHook{ID: rep.ID, Artifact: rep.Artifact, Releases: rep.Releases, Advisories: rep.Advisories,
		Devices: []string{}, DeviceCount: len(ms), Open: rep.Open, State: rep.State, FixRelease: rep.FixRelease,
		Deployment: rep.Deployment, Reason: rep.Reason, EventSeq: rep.EventSeq, Opened: rep.Opened, Closed: rep.Closed}
	seen := map[string]bool{}
	for _, m := range ms {
		if len(h.Devices) < maxHookDevices {
			h.Devices = append(h.Devices, m.DeviceID)
		}
		if m.FixDeployment != "" && !seen[m.FixDeployment] {
			seen[m.FixDeployment] = true
			h.Deployments = append(h.Deployments, m.FixDeployment)
		}
	}
	_, err = store.AddOutboxTx(ctx, tx, event, id, now, func(seq int64) ([]byte, error) {
		b, err := json.Marshal(WebhookBody{Event: event, Repair: h, Time: now.UTC(), Seq: seq})
		if err == nil && len(b) > webhook.MaxBody {
			err = fmt.Errorf("webhook body of %d bytes, at most %d", len(b), webhook.MaxBody)
		}
		return b, err
	})
	return err
}

// run delivers the outbox until ctx ends.
func (w *webhookSender) run(ctx context.Context) {
	fails := 0
	poll := time.NewTicker(webhookPoll)
	defer poll.Stop()
	for ctx.Err() == nil {
		var wait <-chan time.Time
		e, err := w.s.st.NextOutbox(ctx)
		switch {
		case errors.Is(err, store.ErrNotFound):
			fails = 0
		case err != nil:
			if ctx.Err() == nil {
				w.s.log.Error("repair webhook: reading the outbox", "err", err)
			}
		default:
			if err := w.deliver(ctx, e); err != nil {
				if ctx.Err() != nil {
					return
				}
				fails++
				d := min(webhookMinBackoff<<min(fails-1, 16), w.s.cfg.Repair.WebhookMaxBackoff)
				d = d/2 + rand.N(d/2+1)
				w.s.st.OutboxFailed(ctx, e.Seq, err.Error())
				w.s.log.Warn("repair webhook delivery failed; will retry", "seq", e.Seq, "event", e.Event, "retry_in", d, "err", err)
				wait = time.After(d)
			} else {
				fails = 0
				if err := w.s.st.OutboxDelivered(ctx, e.Seq, w.s.cfg.Now()); err != nil && ctx.Err() == nil {
					w.s.log.Error("repair webhook: recording a delivery", "err", err)
				}
				continue // the next one at once
			}
		}
		if wait != nil {
			select { // back off: only time (or the end) moves on
			case <-ctx.Done():
			case <-wait:
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-poll.C:
		}
	}
}

// deliver POSTs one signed webhook; any 2xx answer is a delivery.
func (w *webhookSender) deliver(ctx context.Context, e store.OutboxEntry) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(e.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(w.priv, e.Body))
	req.Header.Set(webhook.KeyIDHeader, w.keyID)
	req.Header.Set(webhook.EventHeader, e.Event)
	req.Header.Set(webhook.SeqHeader, strconv.FormatInt(e.Seq, 10))
	resp, err := w.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxWebhookResponseRead))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

// handleWebhookKey: GET /v1/webhook-key
func (s *Server) handleWebhookKey(w http.ResponseWriter, r *http.Request) {
	pub := s.repair.key.Public().(ed25519.PublicKey)
	writeJSON(w, http.StatusOK, WebhookKey{Alg: keys.Ed25519, KeyID: webhook.KeyID(pub), PublicKey: base64.StdEncoding.EncodeToString(pub)})
}
