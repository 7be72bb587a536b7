// Package agent is the device agent: it pins the image and director
// repository roots, refreshes both through go-tuf's TAP 4 multi-repository
// client, checks the device's own policy (hardware id, release counter),
// streams the artifact into the inactive A/B slot while hashing it,
// re-verifies what was written, switches with a boot-once flag and boot
// counter, health-checks the module it supervises, commits or rolls back,
// and reports every step with a signed status report kept in a persistent
// outbox until the server acknowledged it.
//
// Files under the agent's data directory:
//
//	device.key           the device's ed25519 key (keys package format)
//	enrolled             present once enrollment succeeded
//	state.json           report sequence number, release counter floor, refused targets, last announced assignment
//	tuf/image, tuf/director   trusted metadata of each repository
//	download/<sha256>    partial or complete downloads (resumed with HTTP ranges)
//	slots/               A/B slots (slot package)
//	outbox/              unacknowledged signed reports (outbox package)
//	module.log           output of the supervised module
//	module-data/         the module's data directory under a profile (owned by its uid)
//	health.out           output of the last health command
//	deadletter.jsonl     reports the server refused (bounded; see DESIGN.md)
//	modules/<name>/      with config "modules": each module's slots/, download/,
//	                     module.log, module-data/ and health.out (module.go)
package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ztota/ztota/internal/boundedfile"
	"github.com/ztota/ztota/internal/sandbox"
	"github.com/ztota/ztota/internal/tlsutil"
	"github.com/ztota/ztota/internal/tufrepo"
)

// Duration is a time.Duration written in JSON as a string ("30s") or a
// number of seconds.
type Duration time.Duration

// UnmarshalJSON accepts "1m30s" or 90.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration must be a string like \"30s\" or a number of seconds")
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Health says when a started module counts as healthy.
type Health struct {
	// StayUp: the module process must keep running this long.
	StayUp Duration `json:"stay_up"`
	// Command, run in the slot directory after StayUp, must exit 0.
	Command []string `json:"command,omitempty"`
	// Timeout bounds Command (default 30s).
	Timeout Duration `json:"timeout,omitempty"`
}

// Module is the application the agent supervises.
type Module struct {
	Name string `json:"name"`
	// Command is run from the slot directory; its first element is a path
	// relative to the slot.
	Command []string `json:"command"`
	Env     []string `json:"env,omitempty"`
	Health  Health   `json:"health"`
	// Profile, optional, is the normal privilege profile (package
	// sandbox) the module runs under; absent, the module runs unconfined
	// with the agent's identity, as before.
	Profile *sandbox.Profile `json:"profile,omitempty"`
	// Degraded, optional, is the degraded profile the module is restarted
	// under when the certifier's revocation list revokes what it runs.
	// Default: sandbox.Degraded with DegradedUser and the module's data
	// directory (DATA_DIR/module-data) as the only writable tree.
	Degraded *sandbox.Profile `json:"degraded,omitempty"`
	// DegradedUser is the uid/gid of the default degraded profile
	// (default 65534:65534).
	DegradedUser *User `json:"degraded_user,omitempty"`
}

// User is a numeric uid and gid.
type User struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
}

// Config is the agent's configuration file.
type Config struct {
	DeviceID     string `json:"device_id"`
	HardwareID   string `json:"hardware_id"`
	ServerURL    string `json:"server_url"`
	DataDir      string `json:"data_dir"`
	ImageRoot    string `json:"image_root"`    // pinned image root.json
	DirectorRoot string `json:"director_root"` // pinned director root.json
	EnrollToken  string `json:"enroll_token,omitempty"`
	// Module is the one module of a device that runs one; Modules, the
	// modules of a device that runs several (exactly one of the two). A
	// single module keeps the data directory's original layout; each of
	// several has its own tree DATA_DIR/modules/<name>/.
	Module       Module   `json:"module"`
	Modules      []Module `json:"modules,omitempty"`
	PollInterval Duration `json:"poll_interval,omitempty"` // default 30s; jittered ±20%
	MaxBoots     int      `json:"max_boots,omitempty"`     // boot attempts of a new slot before rollback; default 3
	MinRate      int64    `json:"min_rate,omitempty"`      // bytes/s below which a download is aborted; default 4096
	MaxArtifact  int64    `json:"max_artifact,omitempty"`  // largest artifact accepted; default 1 GiB
	HTTPTimeout  Duration `json:"http_timeout,omitempty"`  // per metadata request; default 30s
	RateWindow   Duration `json:"rate_window,omitempty"`   // span over which min_rate is measured; default 10s
	// FullRefresh forces a complete TUF refresh at least this often even
	// when check-ins answer "not modified", so that a frozen (replayed)
	// timestamp is detected when it expires; default 5m.
	FullRefresh Duration `json:"full_refresh,omitempty"`
	// ServerCA is a PEM file of the CA pinned for the server's TLS
	// certificate (online/tls/ca.pem of 'ztota keys init'); empty: the
	// system's roots.
	ServerCA string `json:"server_ca,omitempty"`
	// InsecureHTTP allows a plain http:// server_url. Anyone on the path
	// then sees and can change the traffic; the update metadata stays
	// signed and enrollment stays bound to the token, but use it only in
	// tests or behind a trusted network.
	InsecureHTTP bool `json:"insecure_http,omitempty"`
	// CertifierRoot is the certification service's root.json pinned for
	// this device (certroot). With it, certification is enforced: a target
	// is installed only with a certificate for exactly its sha256 under
	// this root, with a log receipt, not revoked in a fresh revocation
	// list (see cert.go). Without it the agent installs what the signed
	// TUF metadata allows and logs once that certification is not
	// enforced.
	CertifierRoot string `json:"certifier_root,omitempty"`
	// CertifierLogURL, optional, is the certifier's transparency log
	// (".../log" of certd): consistency proofs between the checkpoint the
	// device recorded and a newer receipt's are fetched from it (and
	// verified). Without it they are fetched from the OTA server's mirror
	// of the certifier's log (GET /v1/devices/{device}/log/proof/consistency,
	// verified the same way); a server that follows no certifier has none,
	// and then only receipts of the recorded tree size pass (a newer one is
	// refused as transient: see DESIGN.md).
	CertifierLogURL string `json:"certifier_log_url,omitempty"`
	// RevocationsInterval is how often the running agent fetches the
	// revocation list (besides every full refresh); default 5m.
	RevocationsInterval Duration `json:"revocations_interval,omitempty"`
	// SandboxHelper is the executable started as the sandbox helper
	// (sandbox.HelperArg); default: this program (os.Executable).
	SandboxHelper string `json:"sandbox_helper,omitempty"`
	// Nudge, default true, long-polls the server's nudge channel so that
	// a new revocation list or deployment is acted on at once (a nudge
	// carries nothing the device trusts: it only refreshes sooner).
	Nudge *bool `json:"nudge,omitempty"`
	// RevocationsStale is what the device does when it cannot get a
	// fresh revocation list for longer than grace past the last list's
	// expiry: "keep" running (default) or "degrade" every module.
	RevocationsStale *StalePolicy `json:"revocations_stale,omitempty"`
}

// StalePolicy is the stale revocation list policy.
type StalePolicy struct {
	Policy string   `json:"policy"`
	Grace  Duration `json:"grace,omitempty"`
}

// Stale list policies.
const (
	StaleKeep    = "keep"
	StaleDegrade = "degrade"
)

// MaxModules bounds the modules of one device.
const MaxModules = 16

// ModuleList is the configured modules: Module alone, or Modules.
func (c *Config) ModuleList() []*Module {
	if len(c.Modules) == 0 {
		return []*Module{&c.Module}
	}
	out := make([]*Module, len(c.Modules))
	for i := range c.Modules {
		out[i] = &c.Modules[i]
	}
	return out
}

// nudgeOn says whether the nudge channel is used.
func (c *Config) nudgeOn() bool { return c.Nudge == nil || *c.Nudge }

// stalePolicy is the configured stale list policy with its defaults.
func (c *Config) stalePolicy() StalePolicy {
	p := StalePolicy{Policy: StaleKeep, Grace: Duration(24 * time.Hour)}
	if c.RevocationsStale != nil {
		if c.RevocationsStale.Policy != "" {
			p.Policy = c.RevocationsStale.Policy
		}
		if c.RevocationsStale.Grace > 0 {
			p.Grace = c.RevocationsStale.Grace
		}
	}
	return p
}

// MaxConfigSize bounds the configuration file.
const MaxConfigSize = 64 << 10

// LoadConfig reads and validates a configuration file. Relative paths in
// it are taken relative to the file's directory.
func LoadConfig(path string) (*Config, error) {
	data, err := boundedfile.Read(path, MaxConfigSize)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Relative paths are taken against the file's directory, made absolute
	// so that nothing depends on the working directory (module commands
	// run from their slot directory).
	base, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, p := range []*string{&c.DataDir, &c.ImageRoot, &c.DirectorRoot, &c.ServerCA, &c.CertifierRoot} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// Validate checks required fields and fills defaults.
func (c *Config) Validate() error {
	if !tufrepo.ValidIdent(c.DeviceID) || !tufrepo.ValidIdent(c.HardwareID) {
		return fmt.Errorf("device_id and hardware_id are required (1-128 of [A-Za-z0-9._+-])")
	}
	if c.ServerURL == "" || c.DataDir == "" || c.ImageRoot == "" || c.DirectorRoot == "" {
		return fmt.Errorf("server_url, data_dir, image_root and director_root are required")
	}
	if err := tlsutil.CheckURL("server_url", c.ServerURL, c.InsecureHTTP); err != nil {
		if errors.Is(err, tlsutil.ErrInsecureURL) {
			return fmt.Errorf("%w (set \"insecure_http\": true to allow it)", err)
		}
		return err
	}
	if len(c.Modules) == 0 {
		if !tufrepo.ValidIdent(c.Module.Name) || len(c.Module.Command) == 0 {
			return fmt.Errorf("module.name and module.command are required")
		}
	} else {
		if c.Module.Name != "" || len(c.Module.Command) > 0 {
			return fmt.Errorf("set either module or modules, not both")
		}
		if len(c.Modules) > MaxModules {
			return fmt.Errorf("modules: %d modules, at most %d", len(c.Modules), MaxModules)
		}
		seen := map[string]bool{}
		for i, m := range c.Modules {
			if !tufrepo.ValidIdent(m.Name) || len(m.Command) == 0 {
				return fmt.Errorf("modules[%d]: name and command are required", i)
			}
			if seen[m.Name] {
				return fmt.Errorf("modules[%d]: module %s is listed twice", i, m.Name)
			}
			seen[m.Name] = true
		}
	}
	if p := c.RevocationsStale; p != nil {
		if p.Policy != "" && p.Policy != StaleKeep && p.Policy != StaleDegrade {
			return fmt.Errorf("revocations_stale.policy %q: must be %q or %q", p.Policy, StaleKeep, StaleDegrade)
		}
		if p.Grace < 0 {
			return fmt.Errorf("revocations_stale.grace must not be negative")
		}
	}
	for _, p := range []*string{&c.DataDir, &c.ImageRoot, &c.DirectorRoot} {
		abs, err := filepath.Abs(*p) // a configuration made in code: against the working directory, once
		if err != nil {
			return err
		}
		*p = abs
	}
	if c.PollInterval <= 0 {
		c.PollInterval = Duration(30 * time.Second)
	}
	if c.MaxBoots <= 0 {
		c.MaxBoots = 3
	}
	if c.MinRate <= 0 {
		c.MinRate = 4096
	}
	if c.MaxArtifact <= 0 {
		c.MaxArtifact = 1 << 30
	}
	if c.HTTPTimeout <= 0 {
		c.HTTPTimeout = Duration(30 * time.Second)
	}
	if c.RateWindow <= 0 {
		c.RateWindow = Duration(10 * time.Second)
	}
	if c.FullRefresh <= 0 {
		c.FullRefresh = Duration(5 * time.Minute)
	}
	if c.RevocationsInterval <= 0 {
		c.RevocationsInterval = Duration(5 * time.Minute)
	}
	if c.CertifierLogURL != "" {
		if err := tlsutil.CheckURL("certifier_log_url", c.CertifierLogURL, c.InsecureHTTP); err != nil {
			return err
		}
	}
	if c.CertifierRoot != "" {
		abs, err := filepath.Abs(c.CertifierRoot)
		if err != nil {
			return err
		}
		c.CertifierRoot = abs
	}
	for _, m := range c.ModuleList() {
		prefix := "module"
		if len(c.Modules) > 0 {
			prefix = "modules[" + m.Name + "]"
		}
		for name, p := range map[string]*sandbox.Profile{prefix + ".profile": m.Profile, prefix + ".degraded": m.Degraded} {
			if p != nil {
				if err := p.Validate(); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
		}
		if u := m.DegradedUser; u != nil && (u.UID == 0 || u.GID == 0) {
			return fmt.Errorf("%s.degraded_user: uid and gid must be non-zero", prefix)
		}
		if m.Health.Timeout <= 0 {
			m.Health.Timeout = Duration(30 * time.Second)
		}
	}
	if c.SandboxHelper == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("sandbox_helper: %w", err)
		}
		c.SandboxHelper = exe
	}
	if !filepath.IsAbs(c.SandboxHelper) {
		return fmt.Errorf("sandbox_helper %q: must be an absolute path", c.SandboxHelper)
	}
	return nil
}
