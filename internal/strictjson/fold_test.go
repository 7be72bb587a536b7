package strictjson

import (
	"errors"
	"testing"
)

// TestDuplicateKeysDifferingInCaseAreRefused performs attack 9 of issue 6
// on the decoder itself: a body that names one field twice in different
// case ({"url":…,"URL":…}), which encoding/json reads as the last one and
// an exact-match reader as the first. The old CheckKeys compared keys
// byte for byte and accepted it.
func TestDuplicateKeysDifferingInCaseAreRefused(t *testing.T) {
	type req struct {
		URL string `json:"url"`
	}
	for _, in := range []string{
		`{"url":"https://a.example","URL":"https://b.example"}`,
		`{"url":"a","Url":"b"}`,
		`{"x":{"kelvin":1,"` + "\u212a" + `elvin":2}}`, // KELVIN SIGN folds to k
		`{"list":[{"s":1,"` + "\u017f" + `":2}]}`,      // LONG S folds to s
	} {
		var r req
		err := DecodeUnique([]byte(in), &r, 16)
		if !errors.Is(err, ErrDuplicateKey) {
			t.Errorf("%s: error %v, want ErrDuplicateKey", in, err)
		}
	}
	var r req
	if err := DecodeUnique([]byte(`{"url":"a"}`), &r, 16); err != nil || r.URL != "a" {
		t.Fatalf("a plain body: %v %+v", err, r)
	}
	// Distinct keys in different objects are not duplicates.
	var v any
	if err := DecodeUnique([]byte(`{"a":{"k":1},"b":{"K":2}}`), &v, 16); err != nil {
		t.Fatalf("keys in different objects: %v", err)
	}
	if err := DecodeUnique([]byte("{\"a\":\"\xff\"}"), &v, 16); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("invalid UTF-8: %v", err)
	}
	if err := DecodeUnique([]byte(`[[[[1]]]]`), &v, 3); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("too deep: %v", err)
	}
}

func TestFoldKey(t *testing.T) {
	for _, c := range [][2]string{{"url", "URL"}, {"k", "\u212a"}, {"s", "\u017f"}, {"ß", "ẞ"}} {
		if FoldKey(c[0]) != FoldKey(c[1]) {
			t.Errorf("FoldKey(%q) != FoldKey(%q)", c[0], c[1])
		}
	}
	if FoldKey("a") == FoldKey("b") {
		t.Error("a and b fold together")
	}
}
