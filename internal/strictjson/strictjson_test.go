package strictjson

import (
	"errors"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	type doc struct {
		A int `json:"a"`
	}
	for _, c := range []struct {
		in     string
		unique bool
		ok     bool
	}{
		{`{"a":1}`, false, true},
		{`{"a":1}`, true, true},
		{`{"a":1} {}`, false, false},
		{`{"a":1,"b":2}`, false, false},
		{`{"a":1,"a":2}`, false, true}, // plain Decode keeps the last
		{`{"a":1,"a":2}`, true, false},
		{"{\"a\":1,\"\xff\":2}", true, false},
		{`{"a":` + strings.Repeat("[", 20) + strings.Repeat("]", 20) + `}`, true, false},
		{`not json`, false, false},
	} {
		var d doc
		var err error
		if c.unique {
			err = DecodeUnique([]byte(c.in), &d, 16)
		} else {
			err = Decode([]byte(c.in), &d)
		}
		if (err == nil) != c.ok {
			t.Errorf("%q (unique %v): err %v, want ok=%v", c.in, c.unique, err, c.ok)
		}
	}
	var d struct{}
	if err := Decode([]byte(`{} x`), &d); !errors.Is(err, ErrTrailing) {
		t.Errorf("trailing data: %v", err)
	}
}
