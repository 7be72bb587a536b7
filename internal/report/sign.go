package report

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

const signPrefix = "ztota-report-v1\n"

// Signed is a report payload with the device's signature over
// "ztota-report-v1\n" + Payload. Its JSON form is
// {"payload": base64, "sig": base64}; decoding it with encoding/json is
// strict (see the package doc).
type Signed struct {
	Payload []byte `json:"payload"`
	Sig     []byte `json:"sig"`
}

var signedFields = []string{"payload", "sig"}

// SignReport validates r, encodes it and signs it with the device key.
func SignReport(key ed25519.PrivateKey, r Report) (Signed, error) {
	if len(key) != ed25519.PrivateKeySize {
		return Signed{}, ErrBadKey
	}
	if err := r.Validate(); err != nil {
		return Signed{}, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keeps the encoding within MaxPayload for every valid report
	if err := enc.Encode(r); err != nil {
		return Signed{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	payload := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(payload) > MaxPayload {
		return Signed{}, fmt.Errorf("%w: report encodes to %d bytes, at most %d allowed", ErrTooLarge, len(payload), MaxPayload)
	}
	return Signed{Payload: payload, Sig: ed25519.Sign(key, message(payload))}, nil
}

// Verify checks the signature of s with pub, then parses the payload
// strictly and validates every field.
func Verify(pub ed25519.PublicKey, s Signed) (Report, error) {
	if len(pub) != ed25519.PublicKeySize {
		return Report{}, ErrBadKey
	}
	if len(s.Payload) > MaxPayload {
		return Report{}, fmt.Errorf("%w: payload of %d bytes, at most %d allowed", ErrTooLarge, len(s.Payload), MaxPayload)
	}
	if len(s.Sig) != ed25519.SignatureSize || !ed25519.Verify(pub, message(s.Payload), s.Sig) {
		return Report{}, ErrBadSignature
	}
	return parsePayload(s.Payload)
}

// VerifyDevice is Verify that also requires the report to name deviceID,
// the device that authenticated the request carrying it.
func VerifyDevice(pub ed25519.PublicKey, deviceID string, s Signed) (Report, error) {
	r, err := Verify(pub, s)
	if err != nil {
		return Report{}, err
	}
	if r.DeviceID != deviceID {
		return Report{}, fmt.Errorf("%w: report names %q, sent by %q", ErrWrongDevice, r.DeviceID, deviceID)
	}
	return r, nil
}

func message(payload []byte) []byte {
	m := make([]byte, 0, len(signPrefix)+len(payload))
	return append(append(m, signPrefix...), payload...)
}

// parsePayload parses report JSON strictly: structure first with a token
// walk, then types with encoding/json, then field bounds.
func parsePayload(b []byte) (Report, error) {
	if len(b) > MaxPayload {
		return Report{}, fmt.Errorf("%w: payload of %d bytes, at most %d allowed", ErrTooLarge, len(b), MaxPayload)
	}
	if !utf8.Valid(b) {
		return Report{}, fmt.Errorf("%w: payload is not valid UTF-8", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	members, err := readFlatObject(dec, reportFields)
	if err != nil {
		return Report{}, err
	}
	if err := expectEOF(dec); err != nil {
		return Report{}, err
	}
	for _, name := range reportFields[:5] { // id, device_id, seq, time, state
		if _, ok := members[name]; !ok {
			return Report{}, fmt.Errorf("%w: %s is missing", ErrInvalid, name)
		}
	}
	var r Report
	dec = json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Report{}, malformed(err)
	}
	if err := r.Validate(); err != nil {
		return Report{}, err
	}
	return r, nil
}

// UnmarshalJSON decodes {"payload": base64, "sig": base64} strictly: both
// members exactly once, nothing else, padded standard base64, at most
// MaxSignedLen bytes. It does not verify the signature.
func (s *Signed) UnmarshalJSON(b []byte) error {
	if len(b) > MaxSignedLen {
		return fmt.Errorf("%w: signed report of %d bytes, at most %d allowed", ErrTooLarge, len(b), MaxSignedLen)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := readSigned(dec)
	if err != nil {
		return err
	}
	if err := expectEOF(dec); err != nil {
		return err
	}
	*s = v
	return nil
}

func readSigned(dec *json.Decoder) (Signed, error) {
	members, err := readFlatObject(dec, signedFields)
	if err != nil {
		return Signed{}, err
	}
	payload, err := base64Member(members, "payload", MaxPayload)
	if err != nil {
		return Signed{}, err
	}
	sig, err := base64Member(members, "sig", ed25519.SignatureSize)
	if err != nil {
		return Signed{}, err
	}
	if len(sig) != ed25519.SignatureSize {
		return Signed{}, fmt.Errorf("%w: sig must be %d bytes", ErrMalformed, ed25519.SignatureSize)
	}
	return Signed{Payload: payload, Sig: sig}, nil
}

func base64Member(members map[string]any, name string, max int) ([]byte, error) {
	v, ok := members[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s is missing", ErrMalformed, name)
	}
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("%w: %s must be a base64 string", ErrMalformed, name)
	}
	if len(s) > base64.StdEncoding.EncodedLen(max) {
		return nil, fmt.Errorf("%w: %s longer than %d bytes", ErrTooLarge, name, max)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || base64.StdEncoding.EncodeToString(b) != s { // Strict still skips CR and LF

		return nil, fmt.Errorf("%w: %s is not padded standard base64", ErrMalformed, name)
	}
	return b, nil
}
