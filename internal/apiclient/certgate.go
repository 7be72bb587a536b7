package apiclient

import (
	"bytes"
	"context"
	"errors"
	"net/http"

	"github.com/ztota/ztota/internal/server"
	"github.com/ztota/ztota/internal/store"
)

// IsNoCertifier reports whether err is the answer of a server that has no
// certifier root (it neither stores certificates nor gates releases).
func IsNoCertifier(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusNotImplemented
}

// PutCertificate uploads the certifier's bundle (envelope + kind + log
// receipt) of the artifact with the given sha256.
func (c *Client) PutCertificate(ctx context.Context, sha string, bundle []byte) (store.CertBundle, error) {
	var out store.CertBundle
	err := c.do(ctx, http.MethodPut, "/v1/certificates/"+sha, bytes.NewReader(bundle), int64(len(bundle)), &out)
	return out, err
}

// Certificate returns the stored bundle of an artifact.
func (c *Client) Certificate(ctx context.Context, sha string) ([]byte, error) {
	var b []byte
	err := c.do(ctx, http.MethodGet, "/v1/certificates/"+sha, nil, -1, &b)
	return b, err
}

// PushRevocations sends a signed revocation list; the server keeps it if
// it is newer than the stored one.
func (c *Client) PushRevocations(ctx context.Context, list []byte) (server.RevocationsAnswer, error) {
	var out server.RevocationsAnswer
	err := c.do(ctx, http.MethodPut, "/v1/revocations", bytes.NewReader(list), int64(len(list)), &out)
	return out, err
}

// Revocations returns the newest signed revocation list the server keeps.
func (c *Client) Revocations(ctx context.Context) ([]byte, error) {
	var b []byte
	err := c.do(ctx, http.MethodGet, "/v1/revocations", nil, -1, &b)
	return b, err
}
