package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

var jsonSeeds = []string{
	`{"token":"t","device_id":"d","hardware_id":"h","public_key":"AAAA"}`,
	`{"a":1,"a":2}`,
	`{"token":"a","TOKEN":"b"}`,
	`{"\u0061":1,"a":2}`,
	`{"K":1,"\u212a":2}`,
	`{"a":{"b":1,"b":2}}`,
	`[{"a":1},{"a":1}]`,
	`{"a":1} x`,
	`{"a":1}{}`,
	"{\"\xff\":1}",
	`{"a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`,
	``,
	`null`,
	`{`,
}

// FuzzCheckDuplicateKeys: never panics; a document it accepts has no
// object whose keys encoding/json would fold together.
func FuzzCheckDuplicateKeys(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		err := checkDuplicateKeys(data)
		if err != nil || !json.Valid(data) || !utf8.Valid(data) {
			return
		}
		// Independent check: decode objects into maps keyed by folded name
		// and compare member counts.
		dec := json.NewDecoder(bytes.NewReader(data))
		var check func() bool
		check = func() bool {
			tok, err := dec.Token()
			if err != nil {
				return true
			}
			switch tok {
			case json.Delim('{'):
				seen := map[string]bool{}
				for dec.More() {
					k, _ := dec.Token()
					ks, _ := k.(string)
					for other := range seen {
						if strings.EqualFold(other, ks) {
							return false
						}
					}
					seen[ks] = true
					if !check() {
						return false
					}
				}
				dec.Token()
			case json.Delim('['):
				for dec.More() {
					if !check() {
						return false
					}
				}
				dec.Token()
			}
			return true
		}
		if !check() {
			t.Fatalf("accepted keys that differ only in case: %q", data)
		}
	})
}

type fuzzBody struct {
	Token string   `json:"token"`
	N     int64    `json:"n"`
	List  []string `json:"list"`
	Inner struct {
		A bool `json:"a"`
	} `json:"inner"`
}

// FuzzDecodeJSONBytes: never panics; refuses with a 4xx httpError only;
// what it accepts is one valid UTF-8 JSON object that encoding/json reads
// the same way, within the bound.
func FuzzDecodeJSONBytes(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"token":"x","n":5,"list":["a"],"inner":{"a":true}}`))
	f.Add([]byte(`{"token":"x","Token":"y"}`))
	f.Add([]byte(`{"n":"5"}`))
	const max = 4096
	f.Fuzz(func(t *testing.T, data []byte) {
		var v fuzzBody
		err := decodeJSONBytes(data, max, &v)
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) || he.code < 400 || he.code > 499 || he.msg == "" {
				t.Fatalf("refusal is not a 4xx with a message: %v", err)
			}
			if len(data) > max && he.code != http.StatusRequestEntityTooLarge {
				t.Fatalf("over-bound body answered %d", he.code)
			}
			return
		}
		if len(data) > max || !utf8.Valid(data) || !json.Valid(data) {
			t.Fatalf("accepted an oversized, non-UTF-8 or invalid body: %q", data)
		}
		if checkDuplicateKeys(data) != nil {
			t.Fatalf("accepted duplicate keys: %q", data)
		}
		var again fuzzBody
		if err := json.Unmarshal(data, &again); err != nil {
			t.Fatalf("accepted what encoding/json refuses: %v", err)
		}
		a, _ := json.Marshal(v)
		b, _ := json.Marshal(again)
		if !bytes.Equal(a, b) {
			t.Fatalf("decoded %s, encoding/json reads %s", a, b)
		}
	})
}
