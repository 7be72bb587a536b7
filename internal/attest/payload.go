package attest

import (
	"fmt"
	"strings"
	"time"

	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/keys"
)

// MaxPayloadTypeLen bounds a payload type given to SignPayload.
const MaxPayloadTypeLen = 256

// checkPayloadType refuses the payload types that Sign and SignRevocations
// own, so a generic payload can never pass for a certificate or a
// revocation list (DSSE signs the payload type with the payload).
func checkPayloadType(payloadType string) error {
	switch {
	case payloadType == "" || len(payloadType) > MaxPayloadTypeLen || strings.TrimSpace(payloadType) != payloadType:
		return fmt.Errorf("%w: payload type %q", ErrWrongType, payloadType)
	case payloadType == PayloadType || payloadType == RevocationsPayloadType:
		return fmt.Errorf("%w: payload type %q is reserved: use Sign/Verify or SignRevocations/VerifyRevocations", ErrWrongType, payloadType)
	}
	return nil
}

// SignPayload signs an arbitrary payload (a webhook event, say) of the
// given payload type as a DSSE envelope, in the same canonical form as
// certificates. The certificate and revocation payload types are refused.
func SignPayload(payloadType string, payload []byte, signers ...*keys.Key) ([]byte, error) {
	if err := checkPayloadType(payloadType); err != nil {
		return nil, err
	}
	return signEnvelope(payloadType, payload, signers, MaxEnvelopeSize)
}

// VerifyPayload checks an envelope made by SignPayload: canonical form,
// the expected payload type, and signatures by a threshold of role's keys
// in root and by nothing else. It returns the payload, whose content the
// caller checks.
func VerifyPayload(root *certroot.Root, role, payloadType string, envelope []byte, now time.Time) ([]byte, error) {
	if err := checkPayloadType(payloadType); err != nil {
		return nil, err
	}
	payload, _, err := openEnvelope(root, role, envelope, payloadType, MaxEnvelopeSize, now)
	if err != nil {
		return nil, fmt.Errorf("%s envelope: %w", payloadType, err)
	}
	return payload, nil
}
