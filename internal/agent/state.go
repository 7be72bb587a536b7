package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ztota/ztota/internal/keys"
)

// persisted is the agent's small state file.
type persisted struct {
	Seq uint64 `json:"seq"`
	// Floor is the lowest release counter the module may move to
	// (anti-rollback): the counter of the last committed release.
	Floor uint64 `json:"floor"`
	// Refused maps artifact sha256 to why it was refused or rolled back,
	// so a bad release is not retried in a loop.
	Refused map[string]string `json:"refused"`
}

const maxStateSize = 1 << 20

func loadState(path string) (persisted, error) {
	st := persisted{Refused: map[string]string{}}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return st, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return st, fmt.Errorf("%s is corrupt (%v): move it aside to reset the agent's counters", path, err)
	}
	if st.Refused == nil {
		st.Refused = map[string]string{}
	}
	return st, nil
}

func saveState(path string, st persisted) error {
	if len(st.Refused) > 1000 {
		for k := range st.Refused {
			delete(st.Refused, k)
			if len(st.Refused) <= 1000 {
				break
			}
		}
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return keys.WriteFileAtomic(path, data, 0o600)
}
