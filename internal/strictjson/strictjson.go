// Package strictjson decodes JSON documents strictly: exactly one value,
// no unknown fields, nothing after it; and, for documents that must have
// one meaning only, valid UTF-8, no duplicate object keys and bounded
// nesting. Every package that reads signed or stored JSON uses it.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// ErrTrailing is data after the JSON value.
var ErrTrailing = errors.New("trailing data after the JSON value")

// Decode decodes exactly one JSON value from data into v, refusing unknown
// fields and trailing data.
func Decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailing
	}
	return nil
}

// DecodeUnique is Decode that also refuses invalid UTF-8, duplicate object
// keys and nesting deeper than maxDepth.
func DecodeUnique(data []byte, v any, maxDepth int) error {
	if !utf8.Valid(data) {
		return errors.New("not valid UTF-8")
	}
	if err := CheckKeys(data, maxDepth); err != nil {
		return err
	}
	return Decode(data, v)
}

// CheckKeys walks the token stream and refuses duplicate keys in any
// object and nesting deeper than maxDepth.
func CheckKeys(data []byte, maxDepth int) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		obj     bool
		keys    map[string]bool
		wantKey bool
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(stack) > 0 && stack[len(stack)-1].obj {
					stack[len(stack)-1].wantKey = true
				}
				if len(stack) >= maxDepth {
					return fmt.Errorf("JSON nested deeper than %d", maxDepth)
				}
				stack = append(stack, frame{obj: d == '{', keys: map[string]bool{}, wantKey: true})
			case '}', ']':
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].obj {
					stack[len(stack)-1].wantKey = true
				}
			}
			continue
		}
		if len(stack) == 0 || !stack[len(stack)-1].obj {
			continue
		}
		top := &stack[len(stack)-1]
		if top.wantKey {
			k := tok.(string)
			if top.keys[k] {
				return fmt.Errorf("duplicate key %q", k)
			}
			top.keys[k] = true
			top.wantKey = false
		} else {
			top.wantKey = true
		}
	}
}
