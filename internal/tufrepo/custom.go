package tufrepo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"unicode/utf8"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ztota/ztota/internal/sandbox"
)

// ImageMeta is the integrator-signed custom metadata of an image target,
// under the key "ztota" of the target's custom object.
type ImageMeta struct {
	Name           string   `json:"name"`
	Version        string   `json:"version"`
	ReleaseCounter uint64   `json:"release_counter"`
	HardwareIDs    []string `json:"hardware_ids"`
	Module         string   `json:"module"`
	ArtifactType   string   `json:"artifact_type"`
	// Backup, optional, is the target path of the integrator's
	// pre-designated backup of this release: another release of the same
	// module that a device switches to when the certifier revokes this
	// one. The device installs it only if it is itself in the signed image
	// targets, of the same module, for its hardware, certified and not
	// revoked; it may have a lower release counter only because it is
	// designated here (the device's counter floor does not move down).
	Backup string `json:"backup,omitempty"`
	// Profiles, optional, are the privilege profiles the integrator grants
	// the module when it runs this release: normal, and degraded (the
	// least privilege it keeps when revoked with no usable backup). The
	// device's own configuration supplies them when absent.
	Profiles *Profiles `json:"profiles,omitempty"`
}

// Profiles are the privilege profiles of a release (package sandbox).
type Profiles struct {
	Normal   *sandbox.Profile `json:"normal,omitempty"`
	Degraded *sandbox.Profile `json:"degraded,omitempty"`
}

// DirectorMeta is the server-signed custom metadata of a director target.
type DirectorMeta struct {
	DeviceID   string `json:"device_id"`
	HardwareID string `json:"hardware_id"`
	Deployment string `json:"deployment,omitempty"`
}

// ArtifactBundle is the artifact type of application bundles (tar).
const ArtifactBundle = "bundle"

var identRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)

// ValidIdent reports whether s may be used as a name, version, module,
// hardware id or device id: 1–128 characters of [A-Za-z0-9._+-], not
// starting with punctuation.
func ValidIdent(s string) bool { return identRE.MatchString(s) }

// TargetPath is the path of a release's artifact in both repositories.
func TargetPath(name, version, file string) string { return name + "/" + version + "/" + file }

// Validate checks every field.
func (m ImageMeta) Validate() error {
	for what, v := range map[string]string{"name": m.Name, "version": m.Version, "module": m.Module} {
		if !ValidIdent(v) {
			return fmt.Errorf("%w: %s %q must be 1-128 of [A-Za-z0-9._+-]", ErrMalformed, what, v)
		}
	}
	if len(m.HardwareIDs) == 0 || len(m.HardwareIDs) > 64 {
		return fmt.Errorf("%w: 1 to 64 hardware ids required", ErrMalformed)
	}
	for _, h := range m.HardwareIDs {
		if !ValidIdent(h) {
			return fmt.Errorf("%w: hardware id %q", ErrMalformed, h)
		}
	}
	if m.ArtifactType != ArtifactBundle {
		return fmt.Errorf("%w: artifact type %q is not supported (use %q)", ErrMalformed, m.ArtifactType, ArtifactBundle)
	}
	if m.Backup != "" {
		if err := CheckTargetPath(m.Backup); err != nil {
			return fmt.Errorf("%w: backup: %v", ErrMalformed, err)
		}
	}
	if m.Profiles != nil {
		for what, p := range map[string]*sandbox.Profile{"normal": m.Profiles.Normal, "degraded": m.Profiles.Degraded} {
			if p == nil {
				continue
			}
			if err := p.Validate(); err != nil {
				return fmt.Errorf("%w: %s profile: %v", ErrMalformed, what, err)
			}
		}
	}
	return nil
}

// Supports reports whether the release may run on hardware hw.
func (m ImageMeta) Supports(hw string) bool {
	for _, h := range m.HardwareIDs {
		if h == hw {
			return true
		}
	}
	return false
}

type customEnvelope[T any] struct {
	Ztota *T `json:"ztota"`
}

func parseCustom[T any](tf *metadata.TargetFiles) (*T, error) {
	if tf == nil || tf.Custom == nil {
		return nil, fmt.Errorf("%w: target has no ztota custom metadata", ErrMalformed)
	}
	raw := []byte(*tf.Custom)
	if len(raw) > 64<<10 || !utf8.Valid(raw) {
		return nil, fmt.Errorf("%w: custom metadata too large or not UTF-8", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var env customEnvelope[T]
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("%w: custom metadata: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data in custom metadata", ErrMalformed)
	}
	if env.Ztota == nil {
		return nil, fmt.Errorf("%w: target has no ztota custom metadata", ErrMalformed)
	}
	return env.Ztota, nil
}

// ParseImageMeta reads and validates an image target's custom metadata.
func ParseImageMeta(tf *metadata.TargetFiles) (ImageMeta, error) {
	m, err := parseCustom[ImageMeta](tf)
	if err != nil {
		return ImageMeta{}, err
	}
	if err := m.Validate(); err != nil {
		return ImageMeta{}, err
	}
	return *m, nil
}

// ParseDirectorMeta reads a director target's custom metadata.
func ParseDirectorMeta(tf *metadata.TargetFiles) (DirectorMeta, error) {
	m, err := parseCustom[DirectorMeta](tf)
	if err != nil {
		return DirectorMeta{}, err
	}
	if !ValidIdent(m.DeviceID) || !ValidIdent(m.HardwareID) {
		return DirectorMeta{}, fmt.Errorf("%w: director target without valid device and hardware ids", ErrMalformed)
	}
	return *m, nil
}

// ImageCustom wraps m for TargetFile.
func ImageCustom(m ImageMeta) any { return customEnvelope[ImageMeta]{Ztota: &m} }

// DirectorCustom wraps m for TargetFile.
func DirectorCustom(m DirectorMeta) any { return customEnvelope[DirectorMeta]{Ztota: &m} }
