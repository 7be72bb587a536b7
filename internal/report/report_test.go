package report

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 123000000, time.UTC)

func key(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func sample() Report {
	r := New("dev-1", 7, StateDownloading, t0)
	r.Target, r.Version, r.Progress = "app/1.2.0/app.tar", "1.2.0", 40
	return r
}

// signRaw signs an arbitrary payload as a device would.
func signRaw(k ed25519.PrivateKey, payload string) Signed {
	return Signed{Payload: []byte(payload), Sig: ed25519.Sign(k, message([]byte(payload)))}
}

func TestSignedReportRoundTrip(t *testing.T) {
	k := key(t)
	r := sample()
	s, err := SignReport(k, r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyDevice(pub(k), "dev-1", s)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(r.Time) {
		t.Fatalf("time %v, want %v", got.Time, r.Time)
	}
	got.Time = r.Time
	if got != r {
		t.Fatalf("got %+v, want %+v", got, r)
	}
	// The JSON form decodes back to the same bytes.
	j, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Signed
	if err := json.Unmarshal(j, &back); err != nil || !bytes.Equal(back.Payload, s.Payload) || !bytes.Equal(back.Sig, s.Sig) {
		t.Fatalf("JSON round trip: %v", err)
	}
}

func TestNewReportsHaveDistinctUUIDs(t *testing.T) {
	a, b := New("dev-1", 1, StateIdle, t0), New("dev-1", 1, StateIdle, t0)
	if a.ID == b.ID || !validUUID(a.ID) {
		t.Fatalf("ids %q %q", a.ID, b.ID)
	}
}

func TestEveryDocumentedStateIsValid(t *testing.T) {
	for _, s := range strings.Fields("checking downloading verifying installing restarting health-checking committed failed rolled-back refused idle degraded recovered") {
		if !State(s).Valid() {
			t.Errorf("%q not valid", s)
		}
	}
	for _, s := range []State{"", "Idle", "done", "idle "} {
		if s.Valid() {
			t.Errorf("%q valid", s)
		}
	}
}

func TestReportSignedByAnotherKeyIsRefused(t *testing.T) {
	s, err := SignReport(key(t), sample())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(pub(key(t)), s); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("got %v", err)
	}
	if _, err := Verify(nil, s); !errors.Is(err, ErrBadKey) {
		t.Fatalf("nil key: got %v", err)
	}
}

func TestTamperedPayloadIsRefused(t *testing.T) {
	k := key(t)
	s, _ := SignReport(k, sample())
	s.Payload = bytes.Replace(s.Payload, []byte(`"downloading"`), []byte(`"committed"`), 1)
	if _, err := Verify(pub(k), s); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("got %v", err)
	}
	s, _ = SignReport(k, sample())
	s.Sig[0] ^= 1
	if _, err := Verify(pub(k), s); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("flipped sig: got %v", err)
	}
}

func TestReportForAnotherDeviceIsRefused(t *testing.T) {
	// A compromised device signs a report in another device's name.
	k := key(t)
	r := sample()
	r.DeviceID = "dev-2"
	s, _ := SignReport(k, r)
	if _, err := VerifyDevice(pub(k), "dev-1", s); !errors.Is(err, ErrWrongDevice) {
		t.Fatalf("got %v", err)
	}
}

func TestStrictPayloadParsing(t *testing.T) {
	const id = `"id":"0b6f3f4e-5a8e-4a47-9a3c-1f4b1c9e2d10"`
	const base = id + `,"device_id":"dev-1","seq":1,"time":"2024-05-01T12:00:00Z","state":"idle"`
	cases := []struct {
		name, payload string
		want          error
	}{
		{"minimal", `{` + base + `}`, nil},
		{"duplicate key", `{` + base + `,"state":"committed"}`, ErrDuplicateKey},
		{"duplicate id", `{` + base + `,` + id + `}`, ErrDuplicateKey},
		{"unknown field", `{` + base + `,"admin":true}`, ErrUnknownField},
		{"case-folded name", `{` + base + `,"Detail":"x"}`, ErrUnknownField},
		{"trailing data", `{` + base + `}{}`, ErrMalformed},
		{"trailing garbage", `{` + base + `} x`, ErrMalformed},
		{"truncated", `{` + base, ErrMalformed},
		{"null", `{` + base + `,"detail":null}`, ErrMalformed},
		{"nested", `{` + base + `,"detail":{"a":1}}`, ErrMalformed},
		{"array", `[{` + base + `}]`, ErrMalformed},
		{"wrong type", `{` + strings.Replace(base, `"seq":1`, `"seq":"1"`, 1) + `}`, ErrMalformed},
		{"negative seq", `{` + strings.Replace(base, `"seq":1`, `"seq":-1`, 1) + `}`, ErrMalformed},
		{"fractional seq", `{` + strings.Replace(base, `"seq":1`, `"seq":1.5`, 1) + `}`, ErrMalformed},
		{"missing seq", `{` + strings.Replace(base, `"seq":1,`, ``, 1) + `}`, ErrInvalid},
		{"unknown state", `{` + strings.Replace(base, `"idle"`, `"pwned"`, 1) + `}`, ErrInvalid},
		{"id not a UUID", `{` + strings.Replace(base, `0b6f3f4e-5a8e-4a47-9a3c-1f4b1c9e2d10`, `x`, 1) + `}`, ErrInvalid},
		{"id upper case", `{` + strings.Replace(base, `0b6f3f4e`, `0B6F3F4E`, 1) + `}`, ErrInvalid},
		{"id in braces", `{` + strings.Replace(base, `0b6f3f4e-5a8e-4a47-9a3c-1f4b1c9e2d10`, `{0b6f3f4e-5a8e-4a47-9a3c-1f4b1c9e2d10}`, 1) + `}`, ErrInvalid},
		{"device id traversal", `{` + strings.Replace(base, `dev-1`, `../dev-2`, 1) + `}`, ErrInvalid},
		{"progress over 100", `{` + base + `,"progress":101}`, ErrInvalid},
		{"huge detail", `{` + base + `,"detail":"` + strings.Repeat("x", MaxDetail+1) + `"}`, ErrInvalid},
		{"control char in version", `{` + base + `,"version":"1\u0000"}`, ErrInvalid},
		{"invalid UTF-8", `{` + base + `,"detail":"` + "\xff" + `"}`, ErrMalformed},
		{"oversized", `{` + base + `,"detail":"` + strings.Repeat("x", MaxPayload) + `"}`, ErrTooLarge},
	}
	k := key(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Verify(pub(k), signRaw(k, c.payload))
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestLargestValidReportFitsThePayloadBound(t *testing.T) {
	// Characters that JSON escapes must not push a valid report past
	// MaxPayload, or the device could not sign its own failure report.
	r := New(strings.Repeat("d", 128), ^uint64(0), StateFailed, t0)
	r.Target = strings.Repeat("\u2028", MaxTarget/3)
	r.Version = strings.Repeat(`"`, MaxVersion)
	r.Detail = strings.Repeat("<\n\\", MaxDetail/3)
	r.Progress = 100
	r.Module = strings.Repeat("m", 128)
	r.Mode = ModeDegraded
	r.Advisories = strings.Repeat(`"`, MaxAdvisories)
	k := key(t)
	s, err := SignReport(k, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(pub(k), s); err != nil {
		t.Fatal(err)
	}
}

// TestModuleFieldsAreBounded: the module, mode and advisories fields of a
// report refuse what a device never sends.
func TestModuleFieldsAreBounded(t *testing.T) {
	for name, mutate := range map[string]func(*Report){
		"module with a slash":     func(r *Report) { r.Module = "app/../x" },
		"module too long":         func(r *Report) { r.Module = strings.Repeat("m", 129) },
		"unknown mode":            func(r *Report) { r.Mode = "root" },
		"advisories too long":     func(r *Report) { r.Advisories = strings.Repeat("G", MaxAdvisories+1) },
		"advisories with newline": func(r *Report) { r.Advisories = "GO-1\nGO-2" },
	} {
		r := sample()
		mutate(&r)
		if _, err := SignReport(key(t), r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	r := sample()
	r.Module, r.Mode, r.Advisories = "app", ModeBackup, "GO-2026-5970,GO-2026-5971"
	k := key(t)
	s, err := SignReport(k, r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(pub(k), s)
	if err != nil || got.Module != "app" || got.Mode != ModeBackup || got.Advisories != r.Advisories {
		t.Fatalf("round trip: %+v %v", got, err)
	}
}

func TestSignReportRefusesInvalidReport(t *testing.T) {
	r := sample()
	r.State = "hacked"
	if _, err := SignReport(key(t), r); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v", err)
	}
}
