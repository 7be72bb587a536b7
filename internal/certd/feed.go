package certd

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ztota/ztota/internal/attest"
)

// Event is one entry of the event feed.
type Event struct {
	Seq      int64           `json:"seq"`
	Time     time.Time       `json:"time"`
	Kind     string          `json:"kind"`
	Artifact string          `json:"artifact,omitempty"`
	Data     json.RawMessage `json:"data"`
}

// Event feed bounds.
const (
	MaxEventsPerPage = 500
	MaxLongPoll      = 60 * time.Second
)

// feed stores events and wakes long-polling readers.
type feed struct {
	db *sql.DB
	mu sync.Mutex
	ch chan struct{} // closed and replaced on every notify
}

func newFeed(db *sql.DB) *feed { return &feed{db: db, ch: make(chan struct{})} }

// add stores an event in tx; call notify after the commit.
func (f *feed) add(ctx context.Context, tx *sql.Tx, now time.Time, kind, artifact string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO events (time, kind, artifact, data) VALUES (?,?,?,?)`,
		unix(now), kind, artifact, string(b))
	return err
}

func (f *feed) notify() {
	f.mu.Lock()
	close(f.ch)
	f.ch = make(chan struct{})
	f.mu.Unlock()
}

func (f *feed) wait() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ch
}

// after returns up to limit events with seq > after.
func (f *feed) after(ctx context.Context, after int64, limit int) ([]Event, error) {
	rows, err := f.db.QueryContext(ctx, `SELECT seq, time, kind, artifact, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?`,
		after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	evs := []Event{}
	for rows.Next() {
		var e Event
		var t int64
		var data string
		if err := rows.Scan(&e.Seq, &t, &e.Kind, &e.Artifact, &data); err != nil {
			return nil, err
		}
		e.Time, e.Data = time.Unix(t, 0).UTC(), json.RawMessage(data)
		evs = append(evs, e)
	}
	return evs, rows.Err()
}

// Events returns events after seq, waiting up to wait for the first one.
func (s *Service) Events(ctx context.Context, after int64, limit int, wait time.Duration) ([]Event, error) {
	if limit <= 0 || limit > MaxEventsPerPage {
		limit = MaxEventsPerPage
	}
	if wait > MaxLongPoll {
		wait = MaxLongPoll
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		ch := s.feed.wait()
		evs, err := s.feed.after(ctx, after, limit)
		if err != nil || len(evs) > 0 || wait <= 0 {
			return evs, err
		}
		select {
		case <-ch:
		case <-deadline.C:
			return evs, nil
		case <-ctx.Done():
			return evs, nil
		}
	}
}

// Webhook delivery.
const (
	webhookTimeout    = 10 * time.Second
	webhookMaxBackoff = 5 * time.Minute
	// EventPayloadType is the DSSE payload type of a webhook body.
	EventPayloadType = "application/vnd.ztota.event+json"
)

// webhooks delivers events to subscribers, in order, at least once.
// Each body is a DSSE envelope of the event signed with the certify key;
// the Ztota-Event-Id header carries the event's sequence number, the
// receiver's idempotency key.
type webhooks struct {
	s    *Service
	http *http.Client
	wake chan struct{}
}

func newWebhooks(s *Service) *webhooks {
	return &webhooks{s: s, http: &http.Client{Timeout: webhookTimeout}, wake: make(chan struct{}, 1)}
}

// AddWebhook subscribes url to events after seq from (0: all).
func (s *Service) AddWebhook(ctx context.Context, url string, from int64) (int64, error) {
	if len(url) > 2000 || !(isURL(url)) {
		return 0, inputErrorf("webhook URL must be http(s) and at most 2000 bytes")
	}
	var id int64
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO webhooks (url, delivered, created) VALUES (?,?,?)
			ON CONFLICT (url) DO NOTHING`, url, from, unix(s.now()))
		if err != nil {
			return err
		}
		id, _ = res.LastInsertId()
		return nil
	})
	select {
	case s.hooks.wake <- struct{}{}:
	default:
	}
	return id, err
}

// Run delivers webhooks until ctx ends.
func (w *webhooks) Run(ctx context.Context) {
	backoff := map[int64]time.Time{}
	fails := map[int64]int{}
	for {
		next := w.deliverAll(ctx, backoff, fails)
		select {
		case <-ctx.Done():
			return
		case <-w.s.feed.wait():
		case <-w.wake:
		case <-time.After(next):
		}
	}
}

// deliverAll pushes pending events to every due webhook and returns how
// long to sleep at most.
func (w *webhooks) deliverAll(ctx context.Context, backoff map[int64]time.Time, fails map[int64]int) time.Duration {
	sleep := 30 * time.Second
	rows, err := w.s.db.QueryContext(ctx, `SELECT id, url, delivered FROM webhooks ORDER BY id`)
	if err != nil {
		return time.Second
	}
	type hook struct {
		id        int64
		url       string
		delivered int64
	}
	var hooks []hook
	for rows.Next() {
		var h hook
		if rows.Scan(&h.id, &h.url, &h.delivered) == nil {
			hooks = append(hooks, h)
		}
	}
	rows.Close()
	for _, h := range hooks {
		if until, ok := backoff[h.id]; ok && time.Now().Before(until) {
			if d := time.Until(until); d < sleep {
				sleep = d
			}
			continue
		}
		evs, err := w.s.feed.after(ctx, h.delivered, 100)
		if err != nil {
			continue
		}
		for _, e := range evs {
			if err := w.deliver(ctx, h.url, e); err != nil {
				fails[h.id]++
				d := time.Duration(1<<min(fails[h.id], 12)) * 100 * time.Millisecond
				if d > webhookMaxBackoff {
					d = webhookMaxBackoff
				}
				backoff[h.id] = time.Now().Add(d)
				if d < sleep {
					sleep = d
				}
				w.s.db.ExecContext(ctx, `UPDATE webhooks SET attempts = attempts + 1, last_error = ? WHERE id = ?`,
					err.Error(), h.id)
				w.s.logger.Warn("webhook delivery failed; will retry", "url", h.url, "event", e.Seq, "retry_in", d, "err", err)
				break
			}
			delete(fails, h.id)
			delete(backoff, h.id)
			w.s.db.ExecContext(ctx, `UPDATE webhooks SET delivered = ?, attempts = 0, last_error = '' WHERE id = ?`, e.Seq, h.id)
		}
		if len(evs) == 100 {
			sleep = 0
		}
	}
	return sleep
}

func (w *webhooks) deliver(ctx context.Context, url string, e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	env, err := attest.SignPayload(EventPayloadType, body, w.s.online.Certify)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(env))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ztota-Event-Id", strconv.FormatInt(e.Seq, 10))
	req.Header.Set("Ztota-Event-Kind", e.Kind)
	resp, err := w.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("subscriber answered %s", resp.Status)
	}
	return nil
}
