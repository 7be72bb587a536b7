package enroll

import (
	"bytes"
	"errors"
	"testing"
)

// TestProofBindsEveryField changes each field of a signed request and of
// the server's answer, as a party on the path would, and checks that the
// proof no longer verifies; the token itself is never in the request.
func TestProofBindsEveryField(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef0123456789abcdef"
	pub := bytes.Repeat([]byte{9}, 32)
	req := NewRequest(tok, "dev-1", "hw1", pub)
	if err := req.CheckShape(); err != nil {
		t.Fatal(err)
	}
	if err := req.Verify(tok); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(r *Request){
		"device_id":   func(r *Request) { r.DeviceID = "dev-2" },
		"hardware_id": func(r *Request) { r.HardwareID = "hw2" },
		"public_key":  func(r *Request) { r.PublicKey = bytes.Repeat([]byte{8}, 32) },
		"nonce":       func(r *Request) { r.Nonce = NewNonce() },
	} {
		r := req
		change(&r)
		if err := r.Verify(tok); !errors.Is(err, ErrBadProof) {
			t.Errorf("request with another %s: %v, want ErrBadProof", name, err)
		}
	}
	if err := req.Verify(tok + "x"); !errors.Is(err, ErrBadProof) {
		t.Errorf("another token: %v", err)
	}
	ans := req.Answer(tok, "fleet")
	if err := req.VerifyResponse(tok, ans); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(a *Response){
		"group":        func(a *Response) { a.Group = "other" },
		"server_nonce": func(a *Response) { a.ServerNonce = NewNonce() },
		"proof":        func(a *Response) { a.Proof = bytes.Repeat([]byte{1}, 32) },
	} {
		a := ans
		change(&a)
		if err := req.VerifyResponse(tok, a); !errors.Is(err, ErrBadProof) {
			t.Errorf("answer with another %s: %v, want ErrBadProof", name, err)
		}
	}
	// An answer to another request (another nonce) does not verify.
	other := NewRequest(tok, "dev-1", "hw1", pub)
	if err := other.VerifyResponse(tok, ans); !errors.Is(err, ErrBadProof) {
		t.Errorf("answer replayed to a later request: %v, want ErrBadProof", err)
	}
	a := ans
	a.DeviceID = "dev-2"
	if err := req.VerifyResponse(tok, a); !errors.Is(err, ErrMalformed) {
		t.Errorf("answer for another device: %v, want ErrMalformed", err)
	}
	if req.TokenID == tok || bytes.Contains(req.Proof, []byte(tok)) {
		t.Fatal("the token travels in the request")
	}
}
