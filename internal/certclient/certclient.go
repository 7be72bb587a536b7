// Package certclient is the HTTP client of the certification service's
// API, used by the CLI and by the OTA server. Every response it reads is
// bounded; signed documents it returns must still be verified by the
// caller (certverify, attest), since the service's word alone is not
// trusted.
package certclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Bounds on responses.
const (
	maxResponse = 64 << 20
	maxError    = 4 << 10
)

// Client talks to one certification service.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// New returns a client for base with an API token (may be empty for reads).
func New(base, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{Timeout: 10 * time.Minute}}
}

// Error is an error answer of the service.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("certification service: %s (HTTP %d)", e.Msg, e.Status)
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

func (c *Client) do(ctx context.Context, method, path, ctype string, body io.Reader, out any) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxResponse {
		return nil, fmt.Errorf("%s: response larger than %d bytes", path, maxResponse)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(data[:min(len(data), maxError)]))
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, &Error{Status: resp.StatusCode, Msg: msg}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("%s: malformed answer: %w", path, err)
		}
	}
	return data, nil
}

// Submission is the answer to a submission (see certd.Outcome).
type Submission struct {
	Artifact string          `json:"artifact"`
	State    string          `json:"state"`
	Reused   bool            `json:"reused"`
	Envelope json.RawMessage `json:"envelope"`
	Result   struct {
		Digest     string    `json:"digest"`
		Kind       string    `json:"kind"`
		Verdict    string    `json:"verdict"`
		DBID       string    `json:"db_id"`
		Advisories []string  `json:"advisories"`
		ValidUntil time.Time `json:"valid_until"`
		LogIndex   int64     `json:"log_index"`
	} `json:"result"`
	Findings      []json.RawMessage `json:"findings"`
	Notes         []string          `json:"notes"`
	Disagreements []json.RawMessage `json:"disagreements"`
}

// Submit sends an artifact file (and an SBOM file, if sbomPath is set).
func (c *Client) Submit(ctx context.Context, name, artifactPath, sbomPath string) (*Submission, error) {
	f, err := os.Open(artifactPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var sbom []byte
	if sbomPath != "" {
		if sbom, err = os.ReadFile(sbomPath); err != nil {
			return nil, err
		}
	}
	if name == "" {
		name = filepath.Base(artifactPath)
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			if err := mw.WriteField("name", name); err != nil {
				return err
			}
			if sbom != nil {
				p, err := mw.CreateFormFile("sbom", filepath.Base(sbomPath))
				if err != nil {
					return err
				}
				if _, err := p.Write(sbom); err != nil {
					return err
				}
			}
			p, err := mw.CreateFormFile("artifact", filepath.Base(artifactPath))
			if err != nil {
				return err
			}
			if _, err := io.Copy(p, f); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	var out Submission
	if _, err := c.do(ctx, http.MethodPost, "/v1/submissions", mw.FormDataContentType(), pr, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Artifact returns the service's view of an artifact (sha256 hex).
func (c *Client) Artifact(ctx context.Context, sha string) (*Submission, error) {
	var out Submission
	if _, err := c.do(ctx, http.MethodGet, "/v1/artifacts/"+url.PathEscape(sha), "", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ArtifactSummary is a line of List.
type ArtifactSummary struct {
	SHA256  string    `json:"sha256"`
	Name    string    `json:"name"`
	State   string    `json:"state"`
	Current string    `json:"current"`
	Updated time.Time `json:"updated"`
}

// List lists artifacts, optionally in one state.
func (c *Client) List(ctx context.Context, state string) ([]ArtifactSummary, error) {
	var all []ArtifactSummary
	after := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if state != "" {
			q.Set("state", state)
		}
		if after != "" {
			q.Set("after", after)
		}
		var page []ArtifactSummary
		if _, err := c.do(ctx, http.MethodGet, "/v1/artifacts?"+q.Encode(), "", nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 1000 {
			return all, nil
		}
		after = page[len(page)-1].SHA256
	}
}

// Result returns a signed result envelope by digest.
func (c *Client) Result(ctx context.Context, digest string) ([]byte, error) {
	return c.do(ctx, http.MethodGet, "/v1/results/"+url.PathEscape(digest), "", nil, nil)
}

// Bundle returns a result's bundle (envelope + log receipt) as JSON.
func (c *Client) Bundle(ctx context.Context, digest string) ([]byte, error) {
	return c.do(ctx, http.MethodGet, "/v1/results/"+url.PathEscape(digest)+"/bundle", "", nil, nil)
}

// Revocations returns the newest signed revocation list.
func (c *Client) Revocations(ctx context.Context) ([]byte, error) {
	return c.do(ctx, http.MethodGet, "/v1/revocations", "", nil, nil)
}

// Root returns the certifier's current root.
func (c *Client) Root(ctx context.Context) ([]byte, error) {
	return c.do(ctx, http.MethodGet, "/v1/root.json", "", nil, nil)
}

// Status returns the service's status as JSON.
func (c *Client) Status(ctx context.Context) ([]byte, error) {
	return c.do(ctx, http.MethodGet, "/v1/status", "", nil, nil)
}

// Event is one entry of the event feed.
type Event struct {
	Seq      int64           `json:"seq"`
	Time     time.Time       `json:"time"`
	Kind     string          `json:"kind"`
	Artifact string          `json:"artifact,omitempty"`
	Data     json.RawMessage `json:"data"`
	// Envelope is the event signed with the certify key (DSSE, payload
	// type "application/vnd.ztota.event+json"); act only on its payload.
	Envelope json.RawMessage `json:"envelope,omitempty"`
}

// Events returns events after seq, waiting up to wait for one.
func (c *Client) Events(ctx context.Context, after int64, wait time.Duration) ([]Event, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	var evs []Event
	_, err := c.do(ctx, http.MethodGet, "/v1/events?"+q.Encode(), "", nil, &evs)
	return evs, err
}

// UploadDB sends an OSV all.zip as the new content of source i and
// returns the service's update report as JSON.
func (c *Client) UploadDB(ctx context.Context, i int, zipPath string) ([]byte, error) {
	f, err := os.Open(zipPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return c.do(ctx, http.MethodPost, "/v1/db?source="+strconv.Itoa(i), "application/zip", f, nil)
}

// PollDB asks the service to check its sources now.
func (c *Client) PollDB(ctx context.Context) ([]byte, error) {
	return c.do(ctx, http.MethodPost, "/v1/db/poll", "", bytes.NewReader(nil), nil)
}

// AddWebhook subscribes a URL to events after seq.
func (c *Client) AddWebhook(ctx context.Context, hook string, after int64) error {
	b, _ := json.Marshal(map[string]any{"url": hook, "after": after})
	_, err := c.do(ctx, http.MethodPost, "/v1/webhooks", "application/json", bytes.NewReader(b), nil)
	return err
}
