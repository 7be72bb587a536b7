package certd

import (
	"context"
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/certroot"
)

// TestLogOriginComesFromTheRoot: certd names its log with the origin the
// certifier root pins, and refuses to start with another configured one
// (its receipts would fail every verifier).
func TestLogOriginComesFromTheRoot(t *testing.T) {
	dir := sourceDir(t)
	data := t.TempDir()
	s, err := Open(context.Background(), Config{DataDir: data, OSV: []string{dir}, Origin: "example/log"})
	if err != nil {
		t.Fatal(err)
	}
	if o, err := s.root.LogOrigin(); err != nil || o != "example/log" || s.log.Origin() != "example/log" {
		t.Fatalf("root origin %q (%v), log origin %q", o, err, s.log.Origin())
	}
	s.Close()
	s, err = Open(context.Background(), Config{DataDir: data, OSV: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	if s.log.Origin() != "example/log" {
		t.Fatalf("restarted without --origin: log origin %q, want the pinned one", s.log.Origin())
	}
	s.Close()
	_, err = Open(context.Background(), Config{DataDir: data, OSV: []string{dir}, Origin: certroot.DefaultLogOrigin})
	if err == nil || !strings.Contains(err.Error(), "pins the log origin") {
		t.Fatalf("a configured origin other than the pinned one: %v", err)
	}
}
