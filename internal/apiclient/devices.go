package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ztota/ztota/internal/store"
)

// Device reads one device with its modules.
func (c *Client) Device(ctx context.Context, id string) (store.Device, error) {
	var out store.Device
	err := c.do(ctx, http.MethodGet, "/v1/devices/"+url.PathEscape(id), nil, -1, &out)
	return out, err
}

// RecentHistory returns a device's newest limit status reports in order.
func (c *Client) RecentHistory(ctx context.Context, id string, limit int) ([]store.Report, error) {
	var out []store.Report
	err := c.do(ctx, http.MethodGet, "/v1/devices/"+url.PathEscape(id)+"/history?limit="+strconv.Itoa(limit), nil, -1, &out)
	return out, err
}
