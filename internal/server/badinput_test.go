package server_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/enroll"
	"github.com/ztota/ztota/internal/server"
)

// jsonAPI is a JSON endpoint with a body it accepts.
type jsonAPI struct {
	name, path string
	valid      func() string // a body the endpoint accepts
	first      string        // the first member of valid, repeated to make duplicates
	firstFold  string        // the same member with its name in another case
	wrongType  string        // valid but with one member of the wrong JSON type
	bound      int           // body bound in bytes
	created    int           // status of a success
}

func badBodies(api jsonAPI) map[string]struct {
	body string
	code int
} {
	v := api.valid()
	rest := v[1:]
	type c = struct {
		body string
		code int
	}
	return map[string]c{
		"empty":             {"", 400},
		"truncated":         {v[:len(v)-1], 400},
		"not an object":     {"[" + v + "]", 400},
		"a string":          {`"hello"`, 400},
		"wrong type":        {api.wrongType, 400},
		"unknown field":     {`{"extra":1,` + rest, 400},
		"duplicate key":     {"{" + api.first + "," + rest, 400},
		"case-folded dup":   {"{" + api.firstFold + "," + rest, 400},
		"escaped dup":       {"{" + escapeFirstChar(api.first) + "," + rest, 400},
		"invalid UTF-8":     {"{" + strings.Replace(api.first, `":"`, "\":\"\xff", 1) + "," + rest, 400},
		"invalid UTF-8 key": {"{\"\xff\":1," + rest, 400},
		"trailing garbage":  {v + "x", 400},
		"second object":     {v + "{}", 400},
		"huge":              {"{" + strings.Repeat(" ", api.bound) + rest, 413},
		"deeply nested":     {`{"extra":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "," + rest, 400},
	}
}

// escapeFirstChar writes the first letter of a member name as a \u escape,
// so "token" becomes "\u0074oken": the same key to a JSON decoder.
func escapeFirstChar(member string) string {
	return `"\u00` + fmt.Sprintf("%x", member[1]) + member[2:]
}

func TestBadJSONIsRefusedByEveryAPIAndChangesNothing(t *testing.T) {
	e := newEnv(t, nil)
	// A device and a release to deploy, so the deployment body is valid.
	e.enroll(t, "d0", "hw1", "fleet")
	target := e.release(t, "1.0", 1, "hw1")
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	enrollTok := e.enrollToken(t, "fleet")
	apis := []jsonAPI{
		{name: "enroll", path: "/v1/enroll",
			valid: func() string {
				b, _ := json.Marshal(enroll.NewRequest(enrollTok, "d1", "hw1", pub))
				return string(b)
			},
			first: `"device_id":"x"`, firstFold: `"DEVICE_ID":"x"`,
			wrongType: strings.Replace(func() string {
				b, _ := json.Marshal(enroll.NewRequest(enrollTok, "d1", "hw1", pub))
				return string(b)
			}(), `"device_id":"d1"`, `"device_id":1`, 1),
			bound: 64 << 10, created: 201},
		{name: "enroll-tokens", path: "/v1/enroll-tokens",
			valid: func() string { return `{"group":"g","ttl_seconds":60}` }, first: `"group":"x"`, firstFold: `"Group":"x"`,
			wrongType: `{"group":"g","ttl_seconds":"60"}`, bound: 64 << 10, created: 201},
		{name: "tokens", path: "/v1/tokens",
			valid: func() string { return `{"scope":"viewer","name":"n"}` }, first: `"scope":"admin"`, firstFold: `"SCOPE":"admin"`,
			wrongType: `{"scope":["viewer"],"name":"n"}`, bound: 64 << 10, created: 201},
		{name: "deployments", path: "/v1/deployments",
			valid: func() string { return fmt.Sprintf(`{"release":%q,"devices":["d0"],"waves":[100]}`, target) },
			first: `"release":"x"`, firstFold: `"Release":"x"`,
			wrongType: fmt.Sprintf(`{"release":%q,"devices":"d0","waves":[100]}`, target), bound: 8 << 20, created: 201},
	}
	for _, api := range apis {
		for name, c := range badBodies(api) {
			t.Run(api.name+"/"+name, func(t *testing.T) {
				unchanged(t, e.Server.Store(), func() {
					wantRefused(t, api.path, e.api(t, "POST", api.path, []byte(c.body)), c.code)
				})
			})
		}
		// The valid body still works: the refusals were about the flaws.
		if a := e.api(t, "POST", api.path, []byte(api.valid())); a.code != api.created {
			t.Fatalf("%s: the valid body was refused: %s", api.name, a)
		}
	}
}

func TestEnrollRefusesBadTokensKeysAndIDs(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	st := e.Server.Store()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	body := func(tok, id, hw string, key []byte) []byte {
		b, _ := json.Marshal(enroll.NewRequest(tok, id, hw, key))
		return b
	}
	tok := e.enrollToken(t, "fleet")
	e.enroll(t, "taken", "hw1", "fleet")
	if a := e.api(t, "POST", "/v1/enroll", body(tok, "first", "hw1", pub)); a.code != http.StatusCreated {
		t.Fatalf("first use of a token: %s", a)
	}
	short, err := e.Admin.EnrollToken(ctx, "fleet", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := e.Admin.EnrollToken(ctx, "fleet", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(2 * time.Minute) // short has expired, fresh has not
	cases := []struct {
		name string
		body []byte
		code int
	}{
		{"used token", body(tok, "second", "hw1", pub), 409},
		{"expired token", body(short, "late", "hw1", pub), 401},
		{"unknown token", body(server.NewToken(), "stranger", "hw1", pub), 401},
		{"empty token", []byte(strings.Replace(string(body(fresh, "nobody", "hw1", pub)), enroll.TokenID(fresh), "", 1)), 400},
		{"the token itself", []byte(strings.Replace(string(body(fresh, "sender", "hw1", pub)), "{", fmt.Sprintf(`{"token":%q,`, fresh), 1)), 400},
		{"key of 31 bytes", body(fresh, "k31", "hw1", pub[:31]), 400},
		{"key of 33 bytes", body(fresh, "k33", "hw1", append(append([]byte{}, pub...), 0)), 400},
		{"no key", body(fresh, "k0", "hw1", nil), 400},
		{"key not base64", []byte(strings.Replace(string(body(fresh, "kb", "hw1", pub)), base64.StdEncoding.EncodeToString(pub), "not base64!", 1)), 400},
		{"path traversal id", body(fresh, "../x", "hw1", pub), 400},
		{"slash in id", body(fresh, "a/b", "hw1", pub), 400},
		{"empty id", body(fresh, "", "hw1", pub), 400},
		{"id of 200 bytes", body(fresh, strings.Repeat("d", 200), "hw1", pub), 400},
		{"id the request signer cannot carry", body(fresh, "dev+1", "hw1", pub), 400},
		{"id with a space", body(fresh, "dev 1", "hw1", pub), 400},
		{"id with NUL", body(fresh, "dev\x001", "hw1", pub), 400},
		{"traversal hardware id", body(fresh, "hwbad", "../hw", pub), 400},
		{"empty hardware id", body(fresh, "hwempty", "", pub), 400},
		{"duplicate device id", body(fresh, "taken", "hw2", pub), 409},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			unchanged(t, st, func() {
				wantRefused(t, c.name, e.api(t, "POST", "/v1/enroll", c.body), c.code)
			})
		})
	}
	// The duplicate did not replace the device's key or hardware id, and
	// the token it used is still good.
	d, err := st.Device(ctx, "taken")
	if err != nil {
		t.Fatal(err)
	}
	if d.HardwareID != "hw1" || bytes.Equal(d.PublicKey, pub) {
		t.Errorf("the enrolled device was changed by a duplicate enrollment: %+v", d)
	}
	if a := e.api(t, "POST", "/v1/enroll", body(fresh, "later", "hw1", pub)); a.code != http.StatusCreated {
		t.Errorf("a token left unused by refused enrollments: %s", a)
	}
}
