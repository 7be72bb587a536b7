package sandbox

import (
	"errors"
	"strings"
	"testing"
)

// TestParseProfileRefusesHostileInput feeds malformed, oversized and
// privilege-seeking profiles to the parser the helper uses; each must be
// refused with ErrInvalidProfile.
func TestParseProfileRefusesHostileInput(t *testing.T) {
	ok := `{"uid":1000,"gid":1000,"writable":["/var/lib/m"],"limits":{"cgroup":"m","memory_bytes":1048576}}`
	if _, err := ParseProfile([]byte(ok)); err != nil {
		t.Fatalf("valid profile refused: %v", err)
	}
	cases := map[string]string{
		"root uid":          `{"uid":0,"gid":1000,"limits":{}}`,
		"root gid":          `{"uid":1000,"gid":0,"limits":{}}`,
		"unknown field":     `{"uid":1000,"gid":1000,"limits":{},"privileged":true}`,
		"duplicate key":     `{"uid":1000,"UID":0,"gid":1000,"limits":{}}`,
		"trailing data":     `{"uid":1000,"gid":1000,"limits":{}} {}`,
		"not json":          `uid=1000`,
		"oversized":         `{"uid":1000,"gid":1000,"limits":{},"env":["A=` + strings.Repeat("x", MaxProfileBytes) + `"]}`,
		"relative writable": `{"uid":1000,"gid":1000,"writable":["data"],"limits":{}}`,
		"unclean writable":  `{"uid":1000,"gid":1000,"writable":["/var/lib/m/../../etc"],"limits":{}}`,
		"control char path": `{"uid":1000,"gid":1000,"writable":["/var/lib/m\n"],"limits":{}}`,
		"unknown cap":       `{"uid":1000,"gid":1000,"capabilities":["CAP_SYS_ADMIN"],"limits":{}}`,
		"port zero":         `{"uid":1000,"gid":1000,"network":{"bind_tcp":[0]},"limits":{}}`,
		"port overflow":     `{"uid":1000,"gid":1000,"network":{"bind_tcp":[70000]},"limits":{}}`,
		"cgroup escape":     `{"uid":1000,"gid":1000,"limits":{"cgroup":"../../x"}}`,
		"cgroup dotdot":     `{"uid":1000,"gid":1000,"limits":{"cgroup":".."}}`,
		"limits no cgroup":  `{"uid":1000,"gid":1000,"limits":{"pids":10}}`,
		"negative memory":   `{"uid":1000,"gid":1000,"limits":{"cgroup":"m","memory_bytes":-1}}`,
		"tiny memory":       `{"uid":1000,"gid":1000,"limits":{"cgroup":"m","memory_bytes":4096}}`,
		"env without =":     `{"uid":1000,"gid":1000,"env":["PATH"],"limits":{}}`,
		"relative dir":      `{"uid":1000,"gid":1000,"dir":"x","limits":{}}`,
	}
	for name, in := range cases {
		if _, err := ParseProfile([]byte(in)); !errors.Is(err, ErrInvalidProfile) {
			t.Errorf("%s: got %v, want ErrInvalidProfile", name, err)
		}
	}
}

// TestPresetsAreValidAndRoundTrip checks both presets validate and survive
// the trip through JSON unchanged; Degraded grants no network and no
// capability.
func TestPresetsAreValidAndRoundTrip(t *testing.T) {
	lim := Limits{Cgroup: "m", MemoryBytes: 64 << 20, Pids: 32, CPUMillis: 250}
	for _, p := range []Profile{
		Degraded(1000, 1000, "/var/lib/m", lim),
		Normal(1000, 1000, "/var/lib/m", []string{"/run/m"}, []string{"CAP_NET_BIND_SERVICE"}, &Network{ConnectTCP: []uint16{443}}, lim),
	} {
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		q, err := ParseProfile(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := q.Marshal()
		if string(b) != string(b2) {
			t.Errorf("round trip changed the profile: %s != %s", b, b2)
		}
	}
	d := Degraded(1000, 1000, "/var/lib/m", lim)
	if d.Network != nil || len(d.Capabilities) != 0 || len(d.Writable) != 1 {
		t.Errorf("degraded profile grants more than the data directory: %+v", d)
	}
}

// TestCommandRefusesRelativePathsAndRoot: the agent cannot be made to
// start a helper or module by a relative path, or under uid 0.
func TestCommandRefusesRelativePathsAndRoot(t *testing.T) {
	p := Degraded(1000, 1000, "/var/lib/m", Limits{})
	if _, err := Command(t.Context(), "ztota", p, "/", []string{"/bin/true"}); !errors.Is(err, ErrNotAbsolute) {
		t.Errorf("relative helper path: got %v, want ErrNotAbsolute", err)
	}
	if _, err := Command(t.Context(), "/usr/bin/ztota", p, "/", []string{"true"}); !errors.Is(err, ErrNotAbsolute) {
		t.Errorf("relative module path: got %v, want ErrNotAbsolute", err)
	}
	p.UID = 0
	if _, err := Command(t.Context(), "/usr/bin/ztota", p, "/", []string{"/bin/true"}); !errors.Is(err, ErrInvalidProfile) {
		t.Errorf("root profile: got %v, want ErrInvalidProfile", err)
	}
}
