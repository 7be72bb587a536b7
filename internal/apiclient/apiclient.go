// Package apiclient is the operator's and integrator's client of the OTA
// server's admin API (see the server package for the endpoints). Every
// call takes a context; answers are bounded in size; a non-2xx answer
// becomes an *APIError carrying the server's message.
package apiclient

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
)

// MaxResponse bounds any JSON answer read.
const MaxResponse = 32 << 20

// Client talks to one server with one API token.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// New returns a client with sane timeouts.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: &http.Client{Timeout: 10 * time.Minute}}
}

// APIError is a non-2xx answer.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("server answered %d: %s", e.Status, e.Message) }

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, length int64, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	if length >= 0 {
		req.ContentLength = length
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			return fmt.Errorf("contacting the server at %s: %w (pass --ca FILE or set ZTOTA_CA: the CA of the server's certificate, online/tls/ca.pem of 'ztota keys init')", c.BaseURL, err)
		}
		return fmt.Errorf("contacting the server at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		if resp.StatusCode == http.StatusBadRequest && strings.HasPrefix(c.BaseURL, "http://") && strings.Contains(e.Error, "HTTP request to an HTTPS server") {
			e.Error += " (the server speaks TLS: use an https:// URL)"
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = data
		return nil
	}
	return json.Unmarshal(data, out)
}

func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, path, bytes.NewReader(b), int64(len(b)), out)
}

// UploadArtifact sends an artifact file under its sha256.
func (c *Client) UploadArtifact(ctx context.Context, path, sha string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPut, "/v1/artifacts/"+sha, f, fi.Size(), nil)
}

// ImageTargets returns the latest image targets metadata.
func (c *Client) ImageTargets(ctx context.Context) ([]byte, error) {
	var b []byte
	err := c.do(ctx, http.MethodGet, "/v1/image/targets", nil, -1, &b)
	return b, err
}

// PublishImageTargets sends new signed image targets metadata.
func (c *Client) PublishImageTargets(ctx context.Context, data []byte) error {
	return c.do(ctx, http.MethodPost, "/v1/image/targets", bytes.NewReader(data), int64(len(data)), nil)
}

// PublishRoot sends a rotated root for "image" or "director".
func (c *Client) PublishRoot(ctx context.Context, repo string, data []byte) error {
	return c.do(ctx, http.MethodPost, "/v1/roots/"+repo, bytes.NewReader(data), int64(len(data)), nil)
}

// EnrollToken creates a one-time enrollment token.
func (c *Client) EnrollToken(ctx context.Context, group string, ttl time.Duration) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	err := c.postJSON(ctx, "/v1/enroll-tokens", map[string]any{"group": group, "ttl_seconds": int64(ttl.Seconds())}, &out)
	return out.Token, err
}

// NewToken creates an API token of a scope.
func (c *Client) NewToken(ctx context.Context, scope, name string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	err := c.postJSON(ctx, "/v1/tokens", map[string]string{"scope": scope, "name": name}, &out)
	return out.Token, err
}

// Deploy creates a deployment.
func (c *Client) Deploy(ctx context.Context, req server.DeployRequest) (server.DeploymentView, error) {
	var out server.DeploymentView
	err := c.postJSON(ctx, "/v1/deployments", req, &out)
	return out, err
}

// Deployment reads a deployment with its devices.
func (c *Client) Deployment(ctx context.Context, id string) (server.DeploymentView, error) {
	var out server.DeploymentView
	err := c.do(ctx, http.MethodGet, "/v1/deployments/"+id, nil, -1, &out)
	return out, err
}

// Devices lists the fleet.
func (c *Client) Devices(ctx context.Context, group string) ([]store.Device, error) {
	var out []store.Device
	q := ""
	if group != "" {
		q = "?group=" + url.QueryEscape(group)
	}
	err := c.do(ctx, http.MethodGet, "/v1/devices"+q, nil, -1, &out)
	return out, err
}

// History returns a device's status reports in order.
func (c *Client) History(ctx context.Context, device string) ([]store.Report, error) {
	var out []store.Report
	err := c.do(ctx, http.MethodGet, "/v1/devices/"+device+"/history", nil, -1, &out)
	return out, err
}

// Releases lists releases.
func (c *Client) Releases(ctx context.Context) ([]store.Release, error) {
	var out []store.Release
	err := c.do(ctx, http.MethodGet, "/v1/releases", nil, -1, &out)
	return out, err
}

// Halt stops a running deployment.
func (c *Client) Halt(ctx context.Context, id string) (server.DeploymentView, error) {
	var out server.DeploymentView
	err := c.do(ctx, http.MethodPost, "/v1/deployments/"+id+"/halt", nil, 0, &out)
	return out, err
}

// CreateToken creates an API token; the answer holds the secret, which the
// server shows only this once.
func (c *Client) CreateToken(ctx context.Context, req server.TokenRequest) (server.TokenResponse, error) {
	var out server.TokenResponse
	err := c.postJSON(ctx, "/v1/tokens", req, &out)
	return out, err
}

// Tokens lists the API tokens (ids, names, scopes and times; no secrets).
func (c *Client) Tokens(ctx context.Context) ([]store.APIToken, error) {
	var out []store.APIToken
	err := c.do(ctx, http.MethodGet, "/v1/tokens", nil, -1, &out)
	return out, err
}

// RevokeToken revokes the API token with the given id.
func (c *Client) RevokeToken(ctx context.Context, id string) (store.APIToken, error) {
	var out store.APIToken
	err := c.do(ctx, http.MethodPost, "/v1/tokens/"+url.PathEscape(id)+"/revoke", nil, 0, &out)
	return out, err
}

// DecommissionDevice revokes a device: the server refuses its requests and
// stops signing its director.
func (c *Client) DecommissionDevice(ctx context.Context, id string) (server.DecommissionResponse, error) {
	var out server.DecommissionResponse
	err := c.do(ctx, http.MethodPost, "/v1/devices/"+url.PathEscape(id)+"/decommission", nil, 0, &out)
	return out, err
}
