package demo

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ztota/ztota/internal/apiclient"
	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/strictjson"
	"github.com/ztota/ztota/internal/tlsutil"
	"github.com/ztota/ztota/internal/webhook"
)

// hookReceiver is the integrator's end of the server's signed repair
// webhooks: it pins the server's webhook key, verifies each body's
// signature before reading it, and keeps each event once (by seq).
type hookReceiver struct {
	say  func(string, ...any)
	ln   net.Listener
	srv  *http.Server
	mu   sync.Mutex
	pub  ed25519.PublicKey
	seen map[int64]bool
	evs  []server.WebhookBody
	bad  int
}

// startHooks serves HTTPS on loopback with the demo's TLS certificate.
func startHooks(certFile, keyFile string, say func(string, ...any)) (*hookReceiver, error) {
	tc, err := tlsutil.ServerConfig(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &hookReceiver{say: say, ln: ln, seen: map[int64]bool{}}
	h.srv = &http.Server{Handler: h, TLSConfig: tc, ReadHeaderTimeout: 5 * time.Second}
	go h.srv.ServeTLS(ln, "", "")
	return h, nil
}

func (h *hookReceiver) url() string { return "https://" + h.ln.Addr().String() + "/repairs" }

func (h *hookReceiver) close() { h.srv.Close() }

// pin fetches the server's webhook key (out of band in the field).
func (h *hookReceiver) pin(ctx context.Context, api *apiclient.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api.BaseURL+"/v1/webhook-key", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+api.Token)
	resp, err := api.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v1/webhook-key: %d", resp.StatusCode)
	}
	var k server.WebhookKey
	if err := strictjson.DecodeUnique(body, &k, 8); err != nil {
		return fmt.Errorf("the webhook key: %w", err)
	}
	pub, err := base64.StdEncoding.DecodeString(k.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize || webhook.KeyID(pub) != k.KeyID {
		return errors.New("the webhook key is not an ed25519 public key matching its id")
	}
	h.mu.Lock()
	h.pub = pub
	h.mu.Unlock()
	h.say("repair webhooks to %s, signed with the server's webhook key %.16s (pinned)", h.url(), k.KeyID)
	return nil
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, webhook.MaxBody+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pub == nil {
		http.Error(w, "no key pinned yet", http.StatusServiceUnavailable)
		return
	}
	if err := webhook.Verify(h.pub, body, r.Header.Get(webhook.SignatureHeader)); err != nil {
		h.bad++
		h.say("webhook REFUSED: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var b server.WebhookBody
	if err := json.Unmarshal(body, &b); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	if h.seen[b.Seq] {
		return // delivered again: already handled
	}
	h.seen[b.Seq] = true
	h.evs = append(h.evs, b)
	extra := ""
	if b.Repair.FixRelease != "" {
		extra = ", fix " + b.Repair.FixRelease
		if b.Repair.Deployment != "" {
			extra += " (" + b.Repair.Deployment + ")"
		}
	}
	h.say("webhook #%d %s (signature verified): repair request #%d %s, %s, %d devices, %d open%s",
		b.Seq, b.Event, b.Repair.ID, b.Repair.State, strings.Join(b.Repair.Advisories, ", "), b.Repair.DeviceCount, b.Repair.Open, extra)
}

// events returns the event names received, in order.
func (h *hookReceiver) events() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, b := range h.evs {
		out = append(out, b.Event)
	}
	return out
}
