// Package sandbox confines a module's processes with kernel-enforced
// privilege profiles: an unprivileged uid/gid, no capabilities beyond the
// ones a profile keeps, no_new_privs, Landlock file-system and TCP rules,
// a seccomp filter, a fresh network namespace holding only loopback when
// the network is denied, and memory, CPU and pids limits through cgroups.
//
// The agent starts a module through Command, which runs the device binary
// itself again as a small helper ("ztota __ztota-sandbox-exec PROFILE --
// MODULE ARGS"); the helper applies every layer to itself and then execs
// the module, so the module never runs unconfined for an instant. Main is
// the helper's entry point; cmd/ztota calls it when its first argument is
// HelperArg.
package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ztota/ztota/internal/strictjson"
)

// HelperArg is the reserved first argument under which the device binary
// runs as the sandbox helper.
const HelperArg = "__ztota-sandbox-exec"

// Bounds on a profile; it travels in signed target custom metadata and on
// the helper's command line.
const (
	MaxProfileBytes = 16 << 10
	maxPaths        = 32
	maxPathLen      = 1024
	maxPorts        = 32
	maxEnv          = 64
	maxEnvLen       = 4096
	maxCaps         = 8
	maxNameLen      = 64
	maxDepth        = 8
)

// ErrInvalidProfile is wrapped by every refusal of a profile.
var ErrInvalidProfile = errors.New("sandbox: invalid profile")

// Profile is a privilege profile for a module's processes. The zero value
// of every optional field is the least privilege.
type Profile struct {
	// UID and GID the module runs as; both must be non-zero.
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
	// Capabilities kept (names such as "CAP_NET_BIND_SERVICE"), raised as
	// ambient capabilities; none by default. Every other capability is
	// dropped from the bounding set too.
	Capabilities []string `json:"capabilities,omitempty"`
	// Readable trees (read and execute); "/" when empty.
	Readable []string `json:"readable,omitempty"`
	// Writable trees (read, write, create, remove), for example the
	// module's data directory. Nothing else is writable except /dev/null,
	// /dev/zero and /dev/full.
	Writable []string `json:"writable,omitempty"`
	// Network granted; nil denies the network: a fresh network namespace
	// with only loopback, no TCP bind or connect (Landlock) and no socket
	// family but AF_UNIX (seccomp).
	Network *Network `json:"network,omitempty"`
	// Limits through cgroups.
	Limits Limits `json:"limits"`
	// Env is the module's whole environment ("KEY=value").
	Env []string `json:"env,omitempty"`
	// Dir is the module's working directory (absolute); Command's dir
	// argument overrides it.
	Dir string `json:"dir,omitempty"`
}

// Network is the network a profile grants: AF_INET and AF_INET6 sockets,
// the host's network namespace, TCP connect and bind only to the listed
// ports (Landlock, ABI >= 4).
type Network struct {
	// LoopbackOnly keeps the module in a fresh network namespace holding
	// only loopback: AF_INET sockets and the granted ports work between
	// the module's own processes, nothing outside is reachable.
	LoopbackOnly bool     `json:"loopback_only,omitempty"`
	ConnectTCP   []uint16 `json:"connect_tcp,omitempty"`
	BindTCP      []uint16 `json:"bind_tcp,omitempty"`
}

// Limits are the cgroup limits of a module's processes. Cgroup names the
// cgroup created below the agent's own one in each controller; the limits
// are applied only when it is set. Zero limits mean "no limit".
type Limits struct {
	Cgroup      string `json:"cgroup,omitempty"`
	MemoryBytes int64  `json:"memory_bytes,omitempty"`
	// CPUMillis is the CPU bandwidth in thousandths of a core.
	CPUMillis int64 `json:"cpu_millis,omitempty"`
	Pids      int64 `json:"pids,omitempty"`
}

// Degraded is the least-privilege profile of a module whose software is
// revoked and for which no backup exists: no network but loopback in its
// own namespace, nothing writable but dataDir, no capabilities, the strict
// seccomp filter, and the given limits.
func Degraded(uid, gid uint32, dataDir string, limits Limits) Profile {
	return Profile{
		UID:      uid,
		GID:      gid,
		Writable: []string{dataDir},
		Limits:   limits,
		Env:      []string{"PATH=/usr/bin:/bin"},
	}
}

// freshNetNS reports whether the module runs in its own network namespace.
func (p Profile) freshNetNS() bool { return p.Network == nil || p.Network.LoopbackOnly }

// Normal is the profile the integrator grants: Degraded's confinement plus
// the given writable trees, kept capabilities and network.
func Normal(uid, gid uint32, dataDir string, writable []string, caps []string, network *Network, limits Limits) Profile {
	p := Degraded(uid, gid, dataDir, limits)
	p.Writable = append(p.Writable, writable...)
	p.Capabilities = append([]string(nil), caps...)
	p.Network = network
	return p
}

// ParseProfile decodes a profile strictly (no unknown or duplicate keys,
// bounded size) and validates it.
func ParseProfile(data []byte) (Profile, error) {
	var p Profile
	if len(data) > MaxProfileBytes {
		return p, fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidProfile, len(data), MaxProfileBytes)
	}
	if err := strictjson.DecodeUnique(data, &p, maxDepth); err != nil {
		return Profile{}, fmt.Errorf("%w: %v", ErrInvalidProfile, err)
	}
	if err := p.Validate(); err != nil {
		return Profile{}, err
	}
	return p, nil
}

// Marshal encodes a valid profile.
func (p Profile) Marshal() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxProfileBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidProfile, len(b), MaxProfileBytes)
	}
	return b, nil
}

// Validate checks every field of the profile.
func (p Profile) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidProfile}, a...)...)
	}
	if p.UID == 0 || p.GID == 0 {
		return bad("uid and gid must be unprivileged (non-zero), got %d:%d", p.UID, p.GID)
	}
	if len(p.Capabilities) > maxCaps {
		return bad("%d capabilities, limit %d", len(p.Capabilities), maxCaps)
	}
	for _, c := range p.Capabilities {
		if _, ok := capByName[c]; !ok {
			return bad("unknown or unsupported capability %q", c)
		}
	}
	for _, set := range []struct {
		name  string
		paths []string
	}{{"readable", p.Readable}, {"writable", p.Writable}} {
		if len(set.paths) > maxPaths {
			return bad("%d %s paths, limit %d", len(set.paths), set.name, maxPaths)
		}
		for _, d := range set.paths {
			if err := checkPath(d); err != nil {
				return bad("%s path: %v", set.name, err)
			}
		}
	}
	if p.Network != nil {
		if len(p.Network.ConnectTCP) > maxPorts || len(p.Network.BindTCP) > maxPorts {
			return bad("more than %d ports", maxPorts)
		}
		for _, port := range append(append([]uint16(nil), p.Network.ConnectTCP...), p.Network.BindTCP...) {
			if port == 0 {
				return bad("port 0")
			}
		}
	}
	l := p.Limits
	if l.MemoryBytes < 0 || l.CPUMillis < 0 || l.Pids < 0 {
		return bad("negative limit")
	}
	if l.MemoryBytes != 0 && l.MemoryBytes < 1<<20 {
		return bad("memory limit %d below 1 MiB", l.MemoryBytes)
	}
	if l.CPUMillis > 1024*1000 || l.Pids > 1<<22 {
		return bad("limit out of range")
	}
	if l.Cgroup != "" {
		if len(l.Cgroup) > maxNameLen || strings.ContainsAny(l.Cgroup, "/\x00") || l.Cgroup == "." || l.Cgroup == ".." || !printable(l.Cgroup) {
			return bad("cgroup name %q: one path element, printable, at most %d bytes", l.Cgroup, maxNameLen)
		}
	} else if l.MemoryBytes != 0 || l.CPUMillis != 0 || l.Pids != 0 {
		return bad("limits need a cgroup name")
	}
	if len(p.Env) > maxEnv {
		return bad("%d environment entries, limit %d", len(p.Env), maxEnv)
	}
	for _, e := range p.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" || len(e) > maxEnvLen || strings.ContainsRune(e, 0) {
			return bad("environment entry %.40q: want KEY=value, at most %d bytes", e, maxEnvLen)
		}
	}
	if p.Dir != "" {
		if err := checkPath(p.Dir); err != nil {
			return bad("dir: %v", err)
		}
	}
	return nil
}

func checkPath(d string) error {
	switch {
	case d == "" || len(d) > maxPathLen:
		return fmt.Errorf("%.40q: empty or longer than %d bytes", d, maxPathLen)
	case !filepath.IsAbs(d) || filepath.Clean(d) != d:
		return fmt.Errorf("%.40q: not an absolute clean path", d)
	case !printable(d):
		return fmt.Errorf("%.40q: control characters", d)
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
