package devauth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"time"
)

// Header names of a signed device request.
const (
	HeaderDevice    = "Ztota-Device"
	HeaderTime      = "Ztota-Time"
	HeaderSignature = "Ztota-Signature"
)

// MaxSkew is the largest accepted difference between the request time and
// the server clock, in either direction.
const MaxSkew = 5 * time.Minute

// MaxDeviceIDLen bounds the length of a device id in bytes.
const MaxDeviceIDLen = 128

// DefaultMaxBody is the body bound Transport uses when MaxBody is zero.
const DefaultMaxBody = 8 << 20

const canonicalPrefix = "ztota-request-v1\n"

// Errors returned by Sign, Transport and Verify. Verify wraps them with %w
// and adds detail; match them with errors.Is.
var (
	ErrMissingAuth       = errors.New("devauth: request is not signed: send the Ztota-Device, Ztota-Time and Ztota-Signature headers")
	ErrMalformedAuth     = errors.New("devauth: malformed authentication header: check the device id and the header encoding")
	ErrStale             = errors.New("devauth: request time is outside the accepted clock skew: synchronise the device clock")
	ErrBadSignature      = errors.New("devauth: request signature does not verify for the claimed device")
	ErrUnknownDevice     = errors.New("devauth: unknown device: enroll the device first")
	ErrBodyTooLarge      = errors.New("devauth: request body exceeds the allowed size: send smaller batches")
	ErrReplay            = errors.New("devauth: request was already received: sign every request afresh")
	ErrReplayCacheFull   = errors.New("devauth: this device sent too many requests in the replay window: retry later")
	ErrInvalidSigningKey = errors.New("devauth: invalid signing key or device id: check the device identity files")
)

// ValidDeviceID reports whether id is 1 to MaxDeviceIDLen bytes of
// [A-Za-z0-9._-].
func ValidDeviceID(id string) bool {
	if len(id) == 0 || len(id) > MaxDeviceIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// canonical returns the signed text for a request.
func canonical(deviceID, method, requestURI string, unix int64, body []byte) []byte {
	sum := sha256.Sum256(body)
	b := make([]byte, 0, len(canonicalPrefix)+len(deviceID)+len(method)+len(requestURI)+20+64+5)
	b = append(b, canonicalPrefix...)
	b = append(b, deviceID...)
	b = append(b, '\n')
	b = append(b, method...)
	b = append(b, '\n')
	b = append(b, requestURI...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, unix, 10)
	b = append(b, '\n')
	b = hex.AppendEncode(b, sum[:])
	return b
}

// parseUnix parses a Ztota-Time value: 1 to 19 decimal digits, no sign.
func parseUnix(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 19 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}
