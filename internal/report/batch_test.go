package report

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func batchJSON(t testing.TB, n int) []byte {
	t.Helper()
	k := key(t)
	var ss []Signed
	for i := 0; i < n; i++ {
		s, err := SignReport(k, New("dev-1", uint64(i), StateIdle, t0))
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	b, err := json.Marshal(ss)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseBatch(t *testing.T) {
	b := batchJSON(t, 3)
	got, err := ParseBatch(b, 3)
	if err != nil || len(got) != 3 {
		t.Fatalf("got %d, %v", len(got), err)
	}
	if got, err := ParseBatch([]byte(" [ ] "), 3); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
}

func TestBatchWithTooManyReportsIsRefused(t *testing.T) {
	if _, err := ParseBatch(batchJSON(t, 4), 3); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
	huge := "[" + strings.Repeat(" ", 4*MaxSignedLen) + "]"
	if _, err := ParseBatch([]byte(huge), 3); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("padded: got %v", err)
	}
}

func TestMalformedBatchIsRefused(t *testing.T) {
	sig := base64.StdEncoding.EncodeToString(make([]byte, 64))
	el := `{"payload":"e30=","sig":"` + sig + `"}`
	cases := []struct {
		name, data string
		want       error
	}{
		{"object not array", el, ErrMalformed},
		{"trailing data", `[` + el + `][]`, ErrMalformed},
		{"unterminated", `[` + el, ErrMalformed},
		{"trailing comma", `[` + el + `,]`, ErrMalformed},
		{"duplicate payload", `[{"payload":"e30=","payload":"e30=","sig":"` + sig + `"}]`, ErrDuplicateKey},
		{"unknown member", `[{"payload":"e30=","sig":"` + sig + `","x":1}]`, ErrUnknownField},
		{"case-folded member", `[{"Payload":"e30=","sig":"` + sig + `"}]`, ErrUnknownField},
		{"missing sig", `[{"payload":"e30="}]`, ErrMalformed},
		{"short sig", `[{"payload":"e30=","sig":"AAAA"}]`, ErrMalformed},
		{"unpadded base64", `[{"payload":"e30","sig":"` + sig + `"}]`, ErrMalformed},
		{"base64 with newline", `[{"payload":"e3\n0=","sig":"` + sig + `"}]`, ErrMalformed},
		{"nested element", `[[` + el + `]]`, ErrMalformed},
		{"null element", `[null]`, ErrMalformed},
		{"invalid UTF-8", "[\"\xff\"]", ErrMalformed},
		{"oversized payload", `[{"payload":"` + strings.Repeat("A", 4*MaxPayload/3+8) + `","sig":"` + sig + `"}]`, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ParseBatch([]byte(c.data), 10); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestSignedUnmarshalIsStrict(t *testing.T) {
	var s Signed
	err := json.Unmarshal([]byte(`{"payload":"e30=","PAYLOAD":"e30=","sig":"`+base64.StdEncoding.EncodeToString(make([]byte, 64))+`"}`), &s)
	if !errors.Is(err, ErrUnknownField) {
		t.Fatalf("got %v", err)
	}
}
