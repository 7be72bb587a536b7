package tufclient

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

func twoRepos(t *testing.T, imageBytes, directorBytes []byte) (map[string]Options, []byte) {
	t.Helper()
	image, director := newTestRepo(t), newTestRepo(t)
	image.addTarget(payloadPath, imageBytes)
	director.addTarget(payloadPath, directorBytes)
	dir := t.TempDir()
	repos := map[string]Options{
		"image":    {MetadataDir: filepath.Join(dir, "image"), TrustedRoot: image.rootBytes(), HTTPClient: image.srv.Client()},
		"director": {MetadataDir: filepath.Join(dir, "director"), TrustedRoot: director.rootBytes(), HTTPClient: director.srv.Client()},
	}
	repoMap := fmt.Appendf(nil, `{"repositories":{"image":[%q],"director":[%q]},
		"mapping":[{"paths":["*/*/*"],"repositories":["image","director"],"threshold":2,"terminating":true}]}`,
		image.metadataURL(), director.metadataURL())
	return repos, repoMap
}

func TestReposDisagreeingOnHashesYieldNoTarget(t *testing.T) {
	repos, repoMap := twoRepos(t, []byte("image says this"), []byte("director says that"))
	mr, err := NewMultiRepo(context.Background(), repos, repoMap)
	if err != nil {
		t.Fatal(err)
	}
	if err := mr.Refresh(); err != nil {
		t.Fatal(err)
	}
	// Each repository alone vouches for the target, and the mapping covers
	// its path: only the disagreement can make the search fail.
	for name, up := range mr.TUFClients {
		if _, err := up.GetTargetInfo(payloadPath); err != nil {
			t.Fatalf("%s alone: %v", name, err)
		}
	}
	if ok, _ := filepath.Match(mr.Config.RepoMap.Mapping[0].Paths[0], payloadPath); !ok {
		t.Fatal("the mapping does not cover the target path")
	}
	if info, _, err := mr.GetTargetInfo(payloadPath); err == nil {
		t.Fatalf("repositories disagree, yet target info %v was returned", info.Hashes)
	}
}

func TestReposAgreeingYieldTarget(t *testing.T) {
	same := []byte("both say this")
	repos, repoMap := twoRepos(t, same, same)
	mr, err := NewMultiRepo(context.Background(), repos, repoMap)
	if err != nil {
		t.Fatal(err)
	}
	if err := mr.Refresh(); err != nil {
		t.Fatal(err)
	}
	info, names, err := mr.GetTargetInfo(payloadPath)
	if err != nil {
		t.Fatal(err)
	}
	if info.Length != int64(len(same)) || len(names) != 2 {
		t.Fatalf("got length %d from %v", info.Length, names)
	}
}

func TestRepoMapNamingUnknownRepoIsRefused(t *testing.T) {
	repos, _ := twoRepos(t, []byte("a"), []byte("a"))
	// go-tuf would dereference a nil updater for "ghost" while searching.
	bad := []byte(`{"repositories":{"image":["http://127.0.0.1:1/m"],"director":["http://127.0.0.1:1/d"]},
		"mapping":[{"paths":["*"],"repositories":["image","ghost"],"threshold":1}]}`)
	if _, err := NewMultiRepo(context.Background(), repos, bad); !errors.Is(err, ErrInvalidRepoMap) {
		t.Fatalf("got %v, want ErrInvalidRepoMap", err)
	}
}

func TestMultiRepoOptionsMustMatchMap(t *testing.T) {
	repos, repoMap := twoRepos(t, []byte("a"), []byte("a"))
	extra := map[string]Options{"other": repos["image"]}
	for k, v := range repos {
		extra[k] = v
	}
	if _, err := NewMultiRepo(context.Background(), extra, repoMap); !errors.Is(err, ErrInvalidRepoMap) {
		t.Errorf("options for a repository the map lacks: got %v", err)
	}
	missing := map[string]Options{"image": repos["image"]}
	if _, err := NewMultiRepo(context.Background(), missing, repoMap); !errors.Is(err, ErrInvalidRepoMap) {
		t.Errorf("map repository without options: got %v", err)
	}
	wrongURL := map[string]Options{"image": repos["image"], "director": repos["director"]}
	d := wrongURL["director"]
	d.MetadataURL = "http://127.0.0.1:1/elsewhere"
	wrongURL["director"] = d
	if _, err := NewMultiRepo(context.Background(), wrongURL, repoMap); !errors.Is(err, ErrInvalidRepoMap) {
		t.Errorf("MetadataURL not in the map: got %v", err)
	}
	shared := map[string]Options{"image": repos["image"], "director": repos["director"]}
	d = shared["director"]
	d.MetadataDir = shared["image"].MetadataDir
	shared["director"] = d
	if _, err := NewMultiRepo(context.Background(), shared, repoMap); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("shared metadata directory: got %v", err)
	}
}

func TestRepoNameWithPathTraversalIsRefused(t *testing.T) {
	for _, name := range []string{"../etc", "a/b", "", ".hidden", "-x", string(make([]byte, 65))} {
		if err := CheckRepoName(name); !errors.Is(err, ErrInvalidRepoName) {
			t.Errorf("CheckRepoName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"image", "director", "repo.v2", "my_repo-1"} {
		if err := CheckRepoName(name); err != nil {
			t.Errorf("CheckRepoName(%q) = %v", name, err)
		}
	}
}

func TestParseRepoMapRefusesMalformedMaps(t *testing.T) {
	for name, m := range map[string]string{
		"empty":           ``,
		"trailing":        `{"repositories":{"a":["http://h/a"]},"mapping":[{"paths":["*"],"repositories":["a"],"threshold":1}]} {}`,
		"unknown field":   `{"repositories":{"a":["http://h/a"]},"mapping":[{"paths":["*"],"repositories":["a"],"threshold":1}],"x":1}`,
		"zero threshold":  `{"repositories":{"a":["http://h/a"]},"mapping":[{"paths":["*"],"repositories":["a"],"threshold":0}]}`,
		"threshold>repos": `{"repositories":{"a":["http://h/a"]},"mapping":[{"paths":["*"],"repositories":["a"],"threshold":2}]}`,
		"duplicate repo":  `{"repositories":{"a":["http://h/a"]},"mapping":[{"paths":["*"],"repositories":["a","a"],"threshold":2}]}`,
		"bad pattern":     `{"repositories":{"a":["http://h/a"]},"mapping":[{"paths":["["],"repositories":["a"],"threshold":1}]}`,
		"no url":          `{"repositories":{"a":[]},"mapping":[{"paths":["*"],"repositories":["a"],"threshold":1}]}`,
		"file url":        `{"repositories":{"a":["file:///x"]},"mapping":[{"paths":["*"],"repositories":["a"],"threshold":1}]}`,
		"no mapping":      `{"repositories":{"a":["http://h/a"]},"mapping":[]}`,
		"null mapping":    `{"repositories":{"a":["http://h/a"]},"mapping":[null]}`,
		"bad name":        `{"repositories":{"../a":["http://h/a"]},"mapping":[{"paths":["*"],"repositories":["../a"],"threshold":1}]}`,
	} {
		if _, err := ParseRepoMap([]byte(m)); !errors.Is(err, ErrInvalidRepoMap) {
			t.Errorf("%s: got %v, want ErrInvalidRepoMap", name, err)
		}
	}
}

func FuzzParseRepoMap(f *testing.F) {
	f.Add([]byte(`{"repositories":{"image":["https://o/i"],"director":["https://o/d"]},"mapping":[{"paths":["*"],"repositories":["image","director"],"threshold":2,"terminating":true}]}`))
	f.Add([]byte(`{"repositories":{"a":["http://h/a"]},"mapping":[{"paths":["x/*"],"repositories":["a"],"threshold":1}]}`))
	f.Add([]byte(`{"repositories":{},"mapping":[null]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseRepoMap(data)
		if err != nil {
			return
		}
		for _, mp := range m.Mapping {
			if mp.Threshold < 1 || mp.Threshold > len(mp.Repositories) {
				t.Fatalf("accepted threshold %d of %d", mp.Threshold, len(mp.Repositories))
			}
			for _, r := range mp.Repositories {
				if _, ok := m.Repositories[r]; !ok {
					t.Fatalf("accepted mapping to undefined repository %q", r)
				}
			}
		}
		for name := range m.Repositories {
			if CheckRepoName(name) != nil {
				t.Fatalf("accepted repository name %q", name)
			}
		}
	})
}
