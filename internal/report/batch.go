package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// ParseBatch parses a JSON array of at most max signed reports strictly
// (see Signed.UnmarshalJSON), refusing data longer than max signed reports
// could be. It does not verify signatures; call Verify on each element.
func ParseBatch(data []byte, max int) ([]Signed, error) {
	if max < 0 {
		max = 0
	}
	if limit := int64(max+1) * MaxSignedLen; int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: batch of %d bytes, at most %d allowed for %d reports", ErrTooLarge, len(data), limit, max)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: batch is not valid UTF-8", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("%w: a batch is a JSON array of signed reports", ErrMalformed)
	}
	out := []Signed{}
	for dec.More() {
		if len(out) == max {
			return nil, fmt.Errorf("%w: more than %d reports in one batch: send smaller batches", ErrTooLarge, max)
		}
		s, err := readSigned(dec)
		if err != nil {
			return nil, fmt.Errorf("report %d: %w", len(out), err)
		}
		out = append(out, s)
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return nil, malformed(err)
	}
	if err := expectEOF(dec); err != nil {
		return nil, err
	}
	return out, nil
}
