package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
)

// Mitigations lists mitigations, optionally only those of one state
// ("open") or one device.
func (c *Client) Mitigations(ctx context.Context, state, device string) ([]store.Mitigation, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	if device != "" {
		q.Set("device", device)
	}
	path := "/v1/mitigations"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out []store.Mitigation
	err := c.do(ctx, http.MethodGet, path, nil, -1, &out)
	return out, err
}

// Repairs lists repair requests, newest first.
func (c *Client) Repairs(ctx context.Context) ([]store.Repair, error) {
	var out []store.Repair
	err := c.do(ctx, http.MethodGet, "/v1/repairs", nil, -1, &out)
	return out, err
}

// Repair returns one repair request with its mitigations.
func (c *Client) Repair(ctx context.Context, id int64) (server.RepairView, error) {
	var out server.RepairView
	err := c.do(ctx, http.MethodGet, "/v1/repairs/"+strconv.FormatInt(id, 10), nil, -1, &out)
	return out, err
}
