package report

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/ztota/ztota/internal/devauth"
	"github.com/ztota/ztota/internal/tufrepo"
)

// Bounds on a report and its signed form.
const (
	MaxPayload   = 8 << 10  // bytes of report JSON
	MaxVersion   = 128      // bytes
	MaxDetail    = 2048     // bytes
	MaxSignedLen = 12 << 10 // bytes of one signed report's JSON (base64 payload and signature)
)

// MaxTarget bounds the target field in bytes. It is the bound every target
// path obeys (tufrepo.CheckTargetPath), so a device can name any target the
// server accepted in the reports it signs.
const MaxTarget = tufrepo.MaxTargetPath

// Report is one status report of a device.
type Report struct {
	ID       string    `json:"id"`
	DeviceID string    `json:"device_id"`
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	State    State     `json:"state"`
	Target   string    `json:"target,omitempty"`
	Version  string    `json:"version,omitempty"`
	Progress int       `json:"progress,omitempty"` // 0..100
	Detail   string    `json:"detail,omitempty"`
	// Module names the module of the device the report is about (an agent
	// supervises several); empty in reports of the whole device and in
	// reports of agents with a single unnamed module.
	Module string `json:"module,omitempty"`
	// Mode is the module's mode after this report: "normal", "backup" or
	// "degraded" (see the Mode constants); empty when unchanged or unknown.
	Mode string `json:"mode,omitempty"`
	// Advisories lists, comma-separated, the advisory ids of the
	// certifier's revocation that put the module in its mode.
	Advisories string `json:"advisories,omitempty"`
}

// reportFields are the member names of the report JSON, spelled exactly.
var reportFields = []string{"id", "device_id", "seq", "time", "state", "target", "version", "progress", "detail", "module", "mode", "advisories"}

// Modes of a module, carried in Report.Mode.
const (
	ModeNormal   = "normal"
	ModeBackup   = "backup"
	ModeDegraded = "degraded"
)

// MaxAdvisories bounds the advisories field in bytes.
const MaxAdvisories = 1024

// State is the update state a report announces.
type State string

// The states of the update flow.
const (
	StateIdle           State = "idle"
	StateChecking       State = "checking"
	StateDownloading    State = "downloading" // progress 0..100
	StateVerifying      State = "verifying"
	StateInstalling     State = "installing"
	StateRestarting     State = "restarting"
	StateHealthChecking State = "health-checking"
	StateCommitted      State = "committed"
	StateFailed         State = "failed"      // detail = reason
	StateRolledBack     State = "rolled-back" // the previous slot came back
	StateRefused        State = "refused"     // verification refused an update; detail = reason
	// Mitigation states: the module runs on under its degraded profile
	// because the certifier's signed revocation list revokes it (detail
	// names the advisories and any kernel feature the profile lacks), and
	// the module is back to its normal profile (a fixed release committed).
	StateDegraded  State = "degraded"
	StateRecovered State = "recovered"
	// The other mitigation states: the device has seen, in a verified
	// list, the revocation of what a module runs; it is installing the
	// integrator's pre-designated backup; the backup committed and runs;
	// the device cannot refresh the list (detail says what it does).
	StateRevocationSeen    State = "revocation-seen"
	StateSwitchingToBackup State = "switching-to-backup"
	StateOnBackup          State = "on-backup"
	StateListStale         State = "list-stale"
)

// States lists every valid state.
var States = []State{StateIdle, StateChecking, StateDownloading, StateVerifying, StateInstalling,
	StateRestarting, StateHealthChecking, StateCommitted, StateFailed, StateRolledBack, StateRefused,
	StateDegraded, StateRecovered, StateRevocationSeen, StateSwitchingToBackup, StateOnBackup, StateListStale}

// Valid reports whether s is one of States.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Errors of this package; match them with errors.Is.
var (
	ErrBadSignature = errors.New("report: signature does not verify with the device key")
	ErrBadKey       = errors.New("report: key is not an ed25519 key: check the device key files")
	ErrTooLarge     = errors.New("report: too large: keep reports and batches within the documented bounds")
	ErrMalformed    = errors.New("report: malformed JSON")
	ErrDuplicateKey = errors.New("report: duplicate JSON member")
	ErrUnknownField = errors.New("report: unknown JSON member")
	ErrInvalid      = errors.New("report: invalid field")
	ErrWrongDevice  = errors.New("report: report names another device than the one that sent it")
)

// New returns a report with a fresh random id.
func New(deviceID string, seq uint64, state State, now time.Time) Report {
	return Report{ID: uuid.NewString(), DeviceID: deviceID, Seq: seq, Time: now.UTC().Round(0), State: state}
}

// Validate checks every field against its bound.
func (r Report) Validate() error {
	switch {
	case !validUUID(r.ID):
		return invalid("id", "must be a canonical lower-case UUID")
	case !devauth.ValidDeviceID(r.DeviceID):
		return invalid("device_id", fmt.Sprintf("must be 1 to %d bytes of [A-Za-z0-9._-]", devauth.MaxDeviceIDLen))
	case r.Time.IsZero():
		return invalid("time", "must be set")
	case !r.State.Valid():
		return invalid("state", fmt.Sprintf("%q is not a known state", truncate(string(r.State))))
	case !boundedText(r.Target, MaxTarget, false):
		return invalid("target", fmt.Sprintf("must be at most %d bytes of printable UTF-8", MaxTarget))
	case !boundedText(r.Version, MaxVersion, false):
		return invalid("version", fmt.Sprintf("must be at most %d bytes of printable UTF-8", MaxVersion))
	case r.Progress < 0 || r.Progress > 100:
		return invalid("progress", "must be 0 to 100")
	case !boundedText(r.Detail, MaxDetail, true):
		return invalid("detail", fmt.Sprintf("must be at most %d bytes of UTF-8", MaxDetail))
	case r.Module != "" && !tufrepo.ValidIdent(r.Module):
		return invalid("module", "must be 1-128 of [A-Za-z0-9._+-]")
	case r.Mode != "" && r.Mode != ModeNormal && r.Mode != ModeBackup && r.Mode != ModeDegraded:
		return invalid("mode", fmt.Sprintf("%q is not normal, backup or degraded", truncate(r.Mode)))
	case !boundedText(r.Advisories, MaxAdvisories, false):
		return invalid("advisories", fmt.Sprintf("must be at most %d bytes of printable UTF-8", MaxAdvisories))
	}
	return nil
}

func invalid(field, why string) error {
	return fmt.Errorf("%w: %s %s", ErrInvalid, field, why)
}

func validUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && len(s) == 36 && u.String() == s
}

// boundedText reports whether s is valid UTF-8 of at most max bytes without
// control characters (newline and tab allowed when multiline).
func boundedText(s string, max int, multiline bool) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			if multiline && (c == '\n' || c == '\t') {
				continue
			}
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
