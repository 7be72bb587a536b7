package report

import (
	"crypto/ed25519"
	"testing"
)

// fuzzKey is fixed so the fuzzer reaches the parser behind the signature.
var fuzzKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

func FuzzVerify(f *testing.F) {
	s, err := SignReport(fuzzKey, sample())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.Payload)
	f.Add([]byte(`{"id":"0b6f3f4e-5a8e-4a47-9a3c-1f4b1c9e2d10","device_id":"dev-1","seq":1,"time":"2024-05-01T12:00:00Z","state":"idle","state":"idle"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[1,{"a":[]}]`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := Verify(pub(fuzzKey), signRaw(fuzzKey, string(payload)))
		if err != nil {
			return
		}
		// Whatever is accepted is valid and survives a re-sign.
		s, err := SignReport(fuzzKey, r)
		if err != nil {
			t.Fatalf("accepted report cannot be re-signed: %v", err)
		}
		r2, err := Verify(pub(fuzzKey), s)
		if err != nil || r2.ID != r.ID || r2.Seq != r.Seq || !r2.Time.Equal(r.Time) || r2.Detail != r.Detail {
			t.Fatalf("re-signed report differs: %v", err)
		}
	})
}

func FuzzParseBatch(f *testing.F) {
	f.Add(batchJSON(f, 2))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"payload":"e30=","sig":""}]`))
	f.Add([]byte(`[{"payload":"e30=","payload":"e30="}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseBatch(data, 4)
		if err != nil {
			return
		}
		if len(got) > 4 {
			t.Fatalf("%d reports accepted, max 4", len(got))
		}
		for _, s := range got {
			if len(s.Sig) != ed25519.SignatureSize || len(s.Payload) > MaxPayload {
				t.Fatalf("bad element accepted: %d-byte sig, %d-byte payload", len(s.Sig), len(s.Payload))
			}
		}
	})
}
