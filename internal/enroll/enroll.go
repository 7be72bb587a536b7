// Package enroll is the wire format of device enrollment (POST /v1/enroll)
// shared by the server and the agent: the device proves it holds the
// one-time enrollment token without sending it, with an HMAC keyed by the
// token over its device id, hardware id, public key and a fresh nonce; the
// server answers with an HMAC of its own that the device checks before it
// counts itself enrolled. A party on the path (without the token) can
// neither substitute the public key nor forge the answer.
//
//	request:  {"device_id","hardware_id","public_key": base64,
//	           "token_id": hex sha256(token), "nonce": hex, "proof": base64}
//	proof    = HMAC-SHA256(token, "ztota-enroll-v1\n" + device_id + "\n" +
//	           hardware_id + "\n" + base64(public_key) + "\n" + nonce)
//	response: {"device_id","group","server_nonce": hex, "proof": base64}
//	proof    = HMAC-SHA256(token, "ztota-enroll-ok-v1\n" + device_id + "\n" +
//	           hardware_id + "\n" + base64(public_key) + "\n" + nonce + "\n" +
//	           group + "\n" + server_nonce)
//
// base64 is standard and padded (what encoding/json writes for bytes).
package enroll

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Errors.
var (
	// ErrBadProof is a proof (request or response) that does not verify.
	ErrBadProof = errors.New("enrollment proof does not verify")
	// ErrMalformed is a request or response with fields out of shape.
	ErrMalformed = errors.New("malformed enrollment message")
)

// Request is the body of POST /v1/enroll.
type Request struct {
	DeviceID   string `json:"device_id"`
	HardwareID string `json:"hardware_id"`
	PublicKey  []byte `json:"public_key"`
	TokenID    string `json:"token_id"`
	Nonce      string `json:"nonce"`
	Proof      []byte `json:"proof"`
}

// Response is the body of the 201 answer.
type Response struct {
	DeviceID    string `json:"device_id"`
	Group       string `json:"group"`
	ServerNonce string `json:"server_nonce"`
	Proof       []byte `json:"proof"`
}

// TokenID names a token without revealing it: hex sha256 of the token
// (the form the server stores tokens under).
func TokenID(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// NewNonce returns 32 random bytes in hex.
func NewNonce() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func mac(token string, parts ...string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(strings.Join(parts, "\n")))
	return m.Sum(nil)
}

func (r *Request) requestMAC(token string) []byte {
	return mac(token, "ztota-enroll-v1", r.DeviceID, r.HardwareID, base64.StdEncoding.EncodeToString(r.PublicKey), r.Nonce)
}

func (r *Request) responseMAC(token, group, serverNonce string) []byte {
	return mac(token, "ztota-enroll-ok-v1", r.DeviceID, r.HardwareID, base64.StdEncoding.EncodeToString(r.PublicKey), r.Nonce, group, serverNonce)
}

// NewRequest makes a signed request with a fresh nonce.
func NewRequest(token, deviceID, hardwareID string, publicKey []byte) Request {
	r := Request{DeviceID: deviceID, HardwareID: hardwareID, PublicKey: publicKey, TokenID: TokenID(token), Nonce: NewNonce()}
	r.Proof = r.requestMAC(token)
	return r
}

func validHex(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// CheckShape checks the sizes of the fields a server reads before it
// looks the token up (the ids are checked by the caller's own rules).
func (r *Request) CheckShape() error {
	switch {
	case !validHex(r.TokenID, 64, 64):
		return fmt.Errorf("%w: token_id must be 64 lower-case hex digits (sha256 of the token)", ErrMalformed)
	case !validHex(r.Nonce, 32, 128):
		return fmt.Errorf("%w: nonce must be 32 to 128 lower-case hex digits", ErrMalformed)
	case len(r.Proof) != sha256.Size:
		return fmt.Errorf("%w: proof must be a base64 HMAC-SHA256 (32 bytes)", ErrMalformed)
	}
	return nil
}

// Verify checks the request's proof with the token (constant time).
func (r *Request) Verify(token string) error {
	if !hmac.Equal(r.requestMAC(token), r.Proof) {
		return fmt.Errorf("%w: the token, device id, hardware id or public key is not what the device signed", ErrBadProof)
	}
	return nil
}

// Answer makes the server's response to a verified request.
func (r *Request) Answer(token, group string) Response {
	sn := NewNonce()
	return Response{DeviceID: r.DeviceID, Group: group, ServerNonce: sn, Proof: r.responseMAC(token, group, sn)}
}

// VerifyResponse checks the server's answer to r (constant time).
func (r *Request) VerifyResponse(token string, resp Response) error {
	if resp.DeviceID != r.DeviceID || !validHex(resp.ServerNonce, 32, 128) || len(resp.Proof) != sha256.Size {
		return fmt.Errorf("%w: enrollment answer for device %q or without a well-formed server nonce and proof", ErrMalformed, resp.DeviceID)
	}
	if !hmac.Equal(r.responseMAC(token, resp.Group, resp.ServerNonce), resp.Proof) {
		return fmt.Errorf("%w: the server's answer was not made with this device's token (forged or altered on the way)", ErrBadProof)
	}
	return nil
}
