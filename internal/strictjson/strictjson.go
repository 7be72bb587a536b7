// Package strictjson decodes JSON documents strictly: exactly one value,
// no unknown fields, nothing after it; and, for documents that must have
// one meaning only, valid UTF-8, no duplicate object keys and bounded
// nesting. Every package that reads signed or stored JSON uses it, and so
// do the HTTP APIs (the OTA server's and certd's request bodies).
//
// Duplicate keys are compared the way encoding/json matches object keys to
// struct fields: case-insensitively (Unicode simple folding, as
// bytes.EqualFold). {"url":"a","URL":"b"} is therefore a duplicate: a
// struct decoder would read "b" while a reader that matches names exactly
// would read "a", and a document must have one meaning only.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Errors a caller may tell apart.
var (
	// ErrTrailing is data after the JSON value.
	ErrTrailing = errors.New("trailing data after the JSON value")
	// ErrDuplicateKey is an object that repeats a key, compared as
	// encoding/json compares keys with field names (case-insensitively).
	ErrDuplicateKey = errors.New("duplicate JSON object key")
	// ErrInvalidUTF8 is a document that is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("JSON is not valid UTF-8")
	// ErrTooDeep is nesting deeper than the caller allows.
	ErrTooDeep = errors.New("JSON nested too deeply")
)

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
		return ErrInvalidUTF8
	}
	if err := CheckKeys(data, maxDepth); err != nil {
		return err
	}
	return Decode(data, v)
}

// CheckKeys walks the token stream and refuses duplicate keys in any
// object (keys equal under FoldKey count as the same) and nesting deeper
// than maxDepth.
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
					return fmt.Errorf("%w: deeper than %d", ErrTooDeep, maxDepth)
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
			k := FoldKey(tok.(string))
			if top.keys[k] {
				return fmt.Errorf("%w %q", ErrDuplicateKey, tok.(string))
			}
			top.keys[k] = true
			top.wantKey = false
		} else {
			top.wantKey = true
		}
	}
}

// FoldKey maps every key that encoding/json would match to the same struct
// field (bytes.EqualFold semantics: Unicode simple case folding) to one
// string, the smallest rune of each rune's folding orbit.
func FoldKey(k string) string {
	var b strings.Builder
	b.Grow(len(k))
	for _, r := range k {
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		b.WriteRune(r)
	}
	return b.String()
}
