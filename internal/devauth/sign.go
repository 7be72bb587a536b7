package devauth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Sign sets the signed-request headers on req for a request carrying body.
// body must be exactly the bytes that will be sent; the caller sets req.Body.
// The signed request URI is req.URL.RequestURI(), which is what net/http
// sends on the wire. Sign panics if key is not an ed25519 private key, like
// ed25519.Sign; Transport checks the key first.
func Sign(req *http.Request, deviceID string, key ed25519.PrivateKey, now time.Time, body []byte) {
	unix := now.Unix()
	msg := canonical(deviceID, req.Method, req.URL.RequestURI(), unix, body)
	sig := ed25519.Sign(key, msg)
	req.Header.Set(HeaderDevice, deviceID)
	req.Header.Set(HeaderTime, strconv.FormatInt(unix, 10))
	req.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
}

// Transport is an http.RoundTripper that signs every request with the
// device key before passing it to Base. It buffers the request body, at
// most MaxBody bytes, to hash it.
type Transport struct {
	Base     http.RoundTripper // nil means http.DefaultTransport
	DeviceID string
	Key      ed25519.PrivateKey
	Now      func() time.Time // nil means time.Now
	MaxBody  int64            // 0 means DefaultMaxBody
	// ServerClock makes the transport follow the server's clock when the
	// device's is off by more than MaxSkew (a device without a real-time
	// clock, or one that drifted): a request refused with 401 whose Date
	// header is more than MaxSkew from the signed time is signed again
	// once with the server's time, and later requests keep that offset.
	// Only the time in the signature moves, never the clock TUF checks
	// expiry with; a forged Date (plain HTTP) gets requests refused until
	// the next real 401 corrects it, as an on-path attacker could anyway.
	ServerClock bool

	offset atomic.Int64 // nanoseconds added to Now when ServerClock is set
}

// RoundTrip signs a copy of req and sends it with Base. The original
// request is not modified; its body is always closed.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := t.readBody(req)
	if err != nil {
		return nil, err
	}
	if len(t.Key) != ed25519.PrivateKeySize || !ValidDeviceID(t.DeviceID) {
		return nil, ErrInvalidSigningKey
	}
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	send := func() (*http.Response, time.Time, error) {
		out := req.Clone(req.Context())
		out.Header = req.Header.Clone()
		if out.Header == nil {
			out.Header = make(http.Header)
		}
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			out.ContentLength = int64(len(body))
		}
		signed := now()
		if t.ServerClock {
			signed = signed.Add(time.Duration(t.offset.Load()))
		}
		Sign(out, t.DeviceID, t.Key, signed, body)
		resp, err := base.RoundTrip(out)
		return resp, signed, err
	}
	resp, signed, err := send()
	if err != nil || !t.ServerClock || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	server, derr := http.ParseTime(resp.Header.Get("Date"))
	if derr != nil {
		return resp, nil
	}
	if d := server.Sub(signed); d <= MaxSkew && d >= -MaxSkew {
		return resp, nil // refused for another reason than the clock
	}
	// The device's clock is off: sign again, once, with the server's.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	t.offset.Store(int64(server.Sub(now())))
	resp, _, err = send()
	return resp, err
}

// readBody reads and closes req.Body, bounded by MaxBody. It returns nil for
// a request without a body.
func (t *Transport) readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	limit := t.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	if req.ContentLength > limit {
		return nil, fmt.Errorf("%w: %d bytes declared, at most %d allowed", ErrBodyTooLarge, req.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("devauth: reading request body to sign it: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%w: at most %d bytes allowed", ErrBodyTooLarge, limit)
	}
	return body, nil
}
