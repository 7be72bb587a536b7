package certd

import (
	"encoding/json"
	"fmt"

	"github.com/ztota/ztota/internal/attest"
)

// SignedEvent is an entry of GET /v1/events: the event, and a DSSE
// envelope (payload type EventPayloadType) of the same event's JSON signed
// with the certify key, exactly what a webhook body carries. A follower
// acts only on the envelope's payload; the outer fields are for reading.
type SignedEvent struct {
	Event
	Envelope json.RawMessage `json:"envelope"`
}

// signEvents signs each event of a feed page.
func (s *Service) signEvents(evs []Event) ([]SignedEvent, error) {
	out := make([]SignedEvent, 0, len(evs))
	for _, e := range evs {
		body, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		env, err := attest.SignPayload(EventPayloadType, body, s.online.Certify)
		if err != nil {
			return nil, fmt.Errorf("signing event %d: %w", e.Seq, err)
		}
		out = append(out, SignedEvent{Event: e, Envelope: env})
	}
	return out, nil
}
