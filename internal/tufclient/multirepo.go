package tufclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata/multirepo"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// Bounds on a TAP 4 repository map.
const (
	MaxRepoMapLength  = 64 << 10 // bytes of map JSON
	maxRepos          = 16       // repositories in one map
	maxMappings       = 64       // mapping entries
	maxPathsPerMap    = 64       // path patterns in one mapping
	maxURLsPerRepo    = 8        // mirrors listed for one repository
	maxRepoNameLength = 64       // bytes of a repository name
)

var repoNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// CheckRepoName returns ErrInvalidRepoName unless name is safe to use as a
// directory name: [A-Za-z0-9][A-Za-z0-9._-]*, at most 64 bytes.
func CheckRepoName(name string) error {
	if len(name) > maxRepoNameLength || !repoNamePattern.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("%w: %q must start with a letter or digit, use only letters, digits, '.', '-', '_', and be at most %d bytes", ErrInvalidRepoName, name, maxRepoNameLength)
	}
	return nil
}

// NewMultiRepo builds a TAP 4 multi-repository client from one updater per
// repository. repos and the map's "repositories" must name the same
// repositories; each repository's metadata directory must be its own. An
// empty Options.MetadataURL takes the map's first URL; a set one must be
// among the map's URLs for that repository. The caller refreshes the
// returned client (Refresh works once) and makes a new one per refresh.
func NewMultiRepo(ctx context.Context, repos map[string]Options, repoMap []byte) (*multirepo.MultiRepoClient, error) {
	m, err := ParseRepoMap(repoMap)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(repos))
	for name := range repos {
		if err := CheckRepoName(name); err != nil {
			return nil, err
		}
		if _, ok := m.Repositories[name]; !ok {
			return nil, fmt.Errorf("%w: repository %q has options but is not in the map's \"repositories\"; add it to the map or drop its options", ErrInvalidRepoMap, name)
		}
		names = append(names, name)
	}
	for name := range m.Repositories {
		if _, ok := repos[name]; !ok {
			return nil, fmt.Errorf("%w: the map names repository %q but no options were given for it", ErrInvalidRepoMap, name)
		}
	}
	sort.Strings(names)

	clients := make(map[string]*updater.Updater, len(repos))
	roots := make(map[string][]byte, len(repos))
	for i, name := range names {
		o := repos[name]
		urls := m.Repositories[name]
		if o.MetadataURL == "" {
			o.MetadataURL = urls[0]
		} else if !slices.Contains(urls, o.MetadataURL) {
			return nil, fmt.Errorf("%w: repository %q: MetadataURL %q is not among the map's URLs %q; make them agree", ErrInvalidRepoMap, name, o.MetadataURL, urls)
		}
		for _, other := range names[:i] {
			if same, err := sameDir(o.MetadataDir, repos[other].MetadataDir); err != nil {
				return nil, err
			} else if same && o.MetadataDir != "" {
				return nil, fmt.Errorf("%w: repositories %q and %q share metadata directory %q; give each its own", ErrInvalidOptions, other, name, o.MetadataDir)
			}
		}
		up, root, err := newUpdater(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("repository %q: %w", name, err)
		}
		clients[name] = up
		roots[name] = root
	}
	return &multirepo.MultiRepoClient{
		TUFClients: clients,
		Config: &multirepo.MultiRepoConfig{
			RepoMap:      m,
			TrustedRoots: roots,
		},
	}, nil
}

// ParseRepoMap strictly parses a TAP 4 repository map and checks that it
// is usable: every mapping names only defined repositories, at most once,
// with 1 ≤ threshold ≤ its repository count, and valid path patterns.
func ParseRepoMap(data []byte) (*multirepo.MultiRepoMapType, error) {
	if len(data) == 0 || len(data) > MaxRepoMapLength {
		return nil, fmt.Errorf("%w: map is %d bytes; it must be 1 to %d bytes of JSON", ErrInvalidRepoMap, len(data), MaxRepoMapLength)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m multirepo.MultiRepoMapType
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRepoMap, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the map object", ErrInvalidRepoMap)
	}
	if len(m.Repositories) == 0 || len(m.Repositories) > maxRepos {
		return nil, fmt.Errorf("%w: \"repositories\" must list 1 to %d repositories", ErrInvalidRepoMap, maxRepos)
	}
	for name, urls := range m.Repositories {
		if err := CheckRepoName(name); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidRepoMap, err)
		}
		if len(urls) == 0 || len(urls) > maxURLsPerRepo {
			return nil, fmt.Errorf("%w: repository %q must list 1 to %d URLs", ErrInvalidRepoMap, name, maxURLsPerRepo)
		}
		for _, u := range urls {
			if err := checkURL("repository URL", u); err != nil {
				return nil, fmt.Errorf("%w: repository %q: %w", ErrInvalidRepoMap, name, err)
			}
		}
	}
	if len(m.Mapping) == 0 || len(m.Mapping) > maxMappings {
		return nil, fmt.Errorf("%w: \"mapping\" must have 1 to %d entries", ErrInvalidRepoMap, maxMappings)
	}
	for i, mp := range m.Mapping {
		if mp == nil {
			return nil, fmt.Errorf("%w: mapping %d is null", ErrInvalidRepoMap, i)
		}
		if len(mp.Paths) == 0 || len(mp.Paths) > maxPathsPerMap {
			return nil, fmt.Errorf("%w: mapping %d must have 1 to %d paths", ErrInvalidRepoMap, i, maxPathsPerMap)
		}
		for _, p := range mp.Paths {
			if _, err := filepath.Match(p, ""); err != nil || p == "" {
				return nil, fmt.Errorf("%w: mapping %d: bad path pattern %q", ErrInvalidRepoMap, i, p)
			}
		}
		if len(mp.Repositories) == 0 {
			return nil, fmt.Errorf("%w: mapping %d names no repositories", ErrInvalidRepoMap, i)
		}
		for j, r := range mp.Repositories {
			if _, ok := m.Repositories[r]; !ok {
				return nil, fmt.Errorf("%w: mapping %d names repository %q, which \"repositories\" does not define", ErrInvalidRepoMap, i, r)
			}
			if slices.Contains(mp.Repositories[:j], r) {
				return nil, fmt.Errorf("%w: mapping %d names repository %q twice; a repository counts once toward the threshold", ErrInvalidRepoMap, i, r)
			}
		}
		if mp.Threshold < 1 || mp.Threshold > len(mp.Repositories) {
			return nil, fmt.Errorf("%w: mapping %d has threshold %d; it must be between 1 and %d", ErrInvalidRepoMap, i, mp.Threshold, len(mp.Repositories))
		}
	}
	return &m, nil
}
