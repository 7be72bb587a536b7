package devauth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// KeyLookup returns the registered public key of a device. It returns an
// error wrapping ErrUnknownDevice when the device is not enrolled; any other
// error is passed through to the caller of Verify as a server fault.
type KeyLookup func(ctx context.Context, deviceID string) (ed25519.PublicKey, error)

// Verify checks a signed device request on the server side: the headers are
// present and well formed, the request time is within MaxSkew of now, and the
// signature verifies with the key lookup returns for the claimed device. It
// reads the body, at most maxBody bytes, returns it and restores r.Body so
// that handlers can read it again. Verify does not refuse replays; use a
// Verifier with a ReplayGuard for that.
func Verify(ctx context.Context, r *http.Request, lookup KeyLookup, now time.Time, maxBody int64) (deviceID string, body []byte, err error) {
	return verify(ctx, r, lookup, now, maxBody, nil)
}

// Verifier is Verify with its settings held together and an optional replay
// guard.
type Verifier struct {
	Lookup  KeyLookup
	MaxBody int64
	Replay  *ReplayGuard     // nil means replays are not refused
	Now     func() time.Time // nil means time.Now
}

// Verify is the package function Verify using v's settings; with Replay
// set, a non-GET request whose signature was already accepted within the
// skew window fails with ErrReplay.
func (v *Verifier) Verify(ctx context.Context, r *http.Request) (deviceID string, body []byte, err error) {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	return verify(ctx, r, v.Lookup, now(), v.MaxBody, v.Replay)
}

func verify(ctx context.Context, r *http.Request, lookup KeyLookup, now time.Time, maxBody int64, guard *ReplayGuard) (string, []byte, error) {
	// A declared length over the route's bound is refused before anything
	// else; an undeclared one is read only up to the bound (readBody).
	if r.ContentLength > max(maxBody, 0) {
		return "", nil, fmt.Errorf("%w: %d bytes declared, at most %d allowed", ErrBodyTooLarge, r.ContentLength, max(maxBody, 0))
	}
	deviceID, unix, sig, err := parseHeaders(r.Header)
	if err != nil {
		return "", nil, err
	}
	reqTime := time.Unix(unix, 0)
	if d := now.Sub(reqTime); d > MaxSkew || d < -MaxSkew {
		return "", nil, fmt.Errorf("%w: request time %d, server time %d", ErrStale, unix, now.Unix())
	}
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	pub, err := lookup(ctx, deviceID)
	if err != nil {
		return "", nil, fmt.Errorf("devauth: looking up the key of device %q: %w", deviceID, err)
	}
	if len(pub) != ed25519.PublicKeySize {
		return "", nil, fmt.Errorf("%w: no usable key registered for device %q", ErrUnknownDevice, deviceID)
	}
	body, err := readBody(r, maxBody)
	if err != nil {
		return "", nil, err
	}
	if !ed25519.Verify(pub, canonical(deviceID, r.Method, requestURI(r), unix, body), sig) {
		return "", nil, fmt.Errorf("%w: device %q", ErrBadSignature, deviceID)
	}
	if guard != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := guard.check(deviceID, sig, reqTime, now); err != nil {
			return "", nil, err
		}
	}
	return deviceID, body, nil
}

// parseHeaders extracts and checks the three authentication headers. Each
// must appear exactly once.
func parseHeaders(h http.Header) (deviceID string, unix int64, sig []byte, err error) {
	dev, tm, sg := h.Values(HeaderDevice), h.Values(HeaderTime), h.Values(HeaderSignature)
	if len(dev) == 0 || len(tm) == 0 || len(sg) == 0 {
		return "", 0, nil, ErrMissingAuth
	}
	if len(dev) != 1 || len(tm) != 1 || len(sg) != 1 {
		return "", 0, nil, fmt.Errorf("%w: repeated header", ErrMalformedAuth)
	}
	if !ValidDeviceID(dev[0]) {
		return "", 0, nil, fmt.Errorf("%w: device id must be 1 to %d bytes of [A-Za-z0-9._-]", ErrMalformedAuth, MaxDeviceIDLen)
	}
	unix, ok := parseUnix(tm[0])
	if !ok {
		return "", 0, nil, fmt.Errorf("%w: %s must be decimal unix seconds", ErrMalformedAuth, HeaderTime)
	}
	if len(sg[0]) != base64.StdEncoding.EncodedLen(ed25519.SignatureSize) {
		return "", 0, nil, fmt.Errorf("%w: %s must be a base64 ed25519 signature", ErrMalformedAuth, HeaderSignature)
	}
	sig, err = base64.StdEncoding.Strict().DecodeString(sg[0])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return "", 0, nil, fmt.Errorf("%w: %s must be a base64 ed25519 signature", ErrMalformedAuth, HeaderSignature)
	}
	return dev[0], unix, sig, nil
}

// requestURI returns the request target as received on the wire, so that
// middleware rewriting r.URL cannot change what is verified. For a request
// built in-process (no RequestURI) or sent in absolute form, it falls back
// to the URL's path and query.
func requestURI(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// readBody reads r.Body bounded by maxBody and puts the bytes back.
func readBody(r *http.Request, maxBody int64) ([]byte, error) {
	if maxBody < 0 {
		maxBody = 0
	}
	if r.ContentLength > maxBody {
		return nil, fmt.Errorf("%w: %d bytes declared, at most %d allowed", ErrBodyTooLarge, r.ContentLength, maxBody)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return []byte{}, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: %v", ErrBodyTooLarge, err)
		}
		return nil, fmt.Errorf("devauth: reading request body: %w", err)
	}
	if int64(len(body)) > maxBody {
		return nil, fmt.Errorf("%w: at most %d bytes allowed", ErrBodyTooLarge, maxBody)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}
