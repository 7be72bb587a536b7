package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// readFlatObject reads one JSON object from dec, which must have UseNumber
// set. Every member name must be in allowed, spelled exactly, and appear at
// most once; every value must be a string, number or boolean (no null, no
// nested object or array). It returns the values by name as string,
// json.Number or bool. The decoder's Token method checks the syntax between
// tokens, so this walk refuses anything encoding/json would refuse.
func readFlatObject(dec *json.Decoder, allowed []string) (map[string]any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%w: expected an object", ErrMalformed)
	}
	out := make(map[string]any, len(allowed))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed(err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%w: expected a member name", ErrMalformed)
		}
		if !slices.Contains(allowed, key) {
			return nil, fmt.Errorf("%w: %q", ErrUnknownField, truncate(key))
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateKey, key)
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, malformed(err)
		}
		switch v := tok.(type) {
		case string, json.Number, bool:
			out[key] = v
		case nil:
			return nil, fmt.Errorf("%w: %q is null", ErrMalformed, key)
		default:
			return nil, fmt.Errorf("%w: %q must be a string, number or boolean", ErrMalformed, key)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, malformed(err)
	}
	return out, nil
}

// expectEOF fails unless only white space is left in dec.
func expectEOF(dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after the JSON value", ErrMalformed)
	}
	return nil
}

func malformed(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: unexpected end of input", ErrMalformed)
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}
