package certpolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// policyKeys are the only keys a policy document's top level may hold,
// spelled exactly (encoding/json would also accept other letter cases).
var policyKeys = map[string]bool{
	"version": true, "name": true, "reject": true, "min_severity": true,
	"unknown_severity": true, "valid_for": true, "module_only": true, "exceptions": true,
}

// checkJSON checks what encoding/json lets through: the document must be
// one JSON object whose top-level keys are spelled exactly as policyKeys,
// no object anywhere may repeat a key (compared case-insensitively, as
// encoding/json matches them), and nesting is bounded by MaxJSONDepth.
func checkJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		obj, wantKey bool
		keys         map[string]bool
	}
	var stack []frame
	done := false
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].wantKey = true
		} else if n == 0 {
			done = true
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if done {
			return errors.New("trailing data after the document")
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(stack) == 0 && d != '{' {
					return errors.New("the document is not a JSON object")
				}
				if len(stack) >= MaxJSONDepth {
					return fmt.Errorf("nested deeper than %d", MaxJSONDepth)
				}
				stack = append(stack, frame{obj: d == '{', wantKey: d == '{', keys: map[string]bool{}})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
			continue
		}
		if len(stack) == 0 {
			return errors.New("the document is not a JSON object")
		}
		top := &stack[len(stack)-1]
		if top.obj && top.wantKey {
			key, _ := tok.(string)
			folded := strings.ToLower(key)
			if top.keys[folded] {
				return fmt.Errorf("duplicate key %q", key)
			}
			top.keys[folded] = true
			if len(stack) == 1 && !policyKeys[key] {
				return fmt.Errorf("unknown field %q", key)
			}
			top.wantKey = false
			continue
		}
		valueDone()
	}
	if !done {
		return errors.New("unexpected end of the document")
	}
	return nil
}
