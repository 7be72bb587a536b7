package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/ztota/ztota/internal/boundedfile"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/tufrepo"
)

// persisted is the agent's small state file. A device running one module
// (config "module") keeps that module's state in the top-level fields, as
// before; a device running several (config "modules") keeps each one's
// under "modules". The report sequence number is the device's.
type persisted struct {
	Seq uint64 `json:"seq"`
	modState
	Modules map[string]*modState `json:"modules,omitempty"`
	// StaleSince, when set, says every module runs degraded because no
	// fresh revocation list could be had for longer than the grace of the
	// "degrade" stale policy (since then).
	StaleSince *time.Time `json:"stale_since,omitempty"`
}

// modState is the persisted state of one module.
type modState struct {
	// Floor is the lowest release counter the module may move to
	// (anti-rollback): the counter of the last committed release. The
	// committed slot's own counter (written atomically with the commit by
	// the slot package) is the authority; Floor keeps the maximum across
	// later rollbacks and is recomputed from the slot state at start.
	Floor uint64 `json:"floor"`
	// Refused maps artifact sha256 to why it was refused or rolled back
	// (final verdicts only), so a bad release is not retried in a loop.
	Refused map[string]refusal `json:"refused"`
	// Announced is the deployment and target last reported committed (or
	// installed), so that an assignment of bytes the device already runs
	// is answered once.
	Announced string `json:"announced,omitempty"`
	// Mitigation, when set, says the module runs degraded or on its
	// backup: the certifier's signed revocation list revokes the artifact
	// it ran (SHA256). A restarted agent keeps that mode; a committed
	// release with another digest than the revoked one and the backup
	// clears it.
	Mitigation *mitigation `json:"mitigation,omitempty"`
	// Profiles are the integrator-signed privilege profiles of the
	// releases in the module's slots, by artifact sha256 (at most a few).
	Profiles map[string]*tufrepo.Profiles `json:"profiles,omitempty"`
}

// Modes of the module.
const (
	ModeNormal   = "normal"
	ModeDegraded = "degraded"
	ModeBackup   = "backup"
)

// mitigation is the persisted mode of the module.
type mitigation struct {
	Mode   string `json:"mode"`
	SHA256 string `json:"sha256"`
	// Backup is the sha256 of the pre-designated backup (mode backup).
	Backup     string    `json:"backup,omitempty"`
	Advisories []string  `json:"advisories"`
	List       int64     `json:"list_version"`
	Since      time.Time `json:"since"`
}

// refusal is one entry of the refused set. Older state files hold only the
// reason as a string.
type refusal struct {
	Why string    `json:"why"`
	At  time.Time `json:"at"`
}

func (r *refusal) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &r.Why)
	}
	type plain refusal
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode((*plain)(r))
}

const (
	maxStateSize = 1 << 20
	// maxRefused bounds the refused set; past it the oldest entries go.
	maxRefused = 1000
)

func loadState(path string) (persisted, error) {
	st := persisted{modState: modState{Refused: map[string]refusal{}}}
	data, err := boundedfile.Read(path, maxStateSize)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return st, nil
	case errors.Is(err, boundedfile.ErrTooLarge):
		return st, fmt.Errorf("%s is corrupt (%v): move it aside to reset the agent's counters", path, err)
	case err != nil:
		return st, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return st, fmt.Errorf("%s is corrupt (%v): move it aside to reset the agent's counters", path, err)
	}
	if st.Refused == nil {
		st.Refused = map[string]refusal{}
	}
	for name, m := range st.Modules {
		if m == nil {
			m = &modState{}
			st.Modules[name] = m
		}
		if m.Refused == nil {
			m.Refused = map[string]refusal{}
		}
	}
	return st, nil
}

// evictRefused drops the oldest entries past maxRefused (ties broken by
// digest, so the choice is deterministic).
func evictRefused(m map[string]refusal) {
	if len(m) <= maxRefused {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := m[keys[i]].At, m[keys[j]].At
		if !a.Equal(b) {
			return a.Before(b)
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys[:len(keys)-maxRefused] {
		delete(m, k)
	}
}

func saveState(path string, st persisted) error {
	evictRefused(st.Refused)
	for _, m := range st.Modules {
		evictRefused(m.Refused)
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return keys.WriteFileAtomic(path, data, 0o600)
}
