package agent_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/agent"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/certverify/certverifytest"
)

// TestCertifierRootIsResolvedAndATamperedOneRefusedAtStart: certifier_root
// is taken relative to the configuration file, revocations_interval has
// its default, and an agent given a tampered root (one signature no longer
// matching) refuses to start (certroot.ErrSignature) rather than running
// unenforced.
func TestCertifierRootIsResolvedAndATamperedOneRefusedAtStart(t *testing.T) {
	fx := certverifytest.New(t)
	dir := t.TempDir()
	root, err := os.ReadFile(filepath.Join(fx.Dir, certroot.CurrentRootFile))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "certifier-root.json"), root, 0o600)
	p := filepath.Join(dir, "agent.json")
	os.WriteFile(p, []byte(`{"device_id":"d1","hardware_id":"hw","server_url":"https://127.0.0.1:1",
		"data_dir":"data","image_root":"i.json","director_root":"d.json","certifier_root":"certifier-root.json",
		"module":{"name":"app","command":["bin/app"]}}`), 0o600)
	c, err := agent.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.CertifierRoot != filepath.Join(dir, "certifier-root.json") {
		t.Fatalf("certifier_root not resolved against the config file: %q", c.CertifierRoot)
	}
	if time.Duration(c.RevocationsInterval) != 5*time.Minute {
		t.Fatalf("revocations_interval default %v, want 5m", time.Duration(c.RevocationsInterval))
	}
	ctx := context.Background()
	a, err := agent.New(ctx, c, nil)
	if err != nil {
		t.Fatalf("a genuine certifier root: %v", err)
	}
	a.Close()

	// The same root with its version changed: its signatures no longer verify.
	tampered := bytes.Replace(root, []byte(`"version": 1`), []byte(`"version": 7`), 1)
	if bytes.Equal(tampered, root) {
		tampered = bytes.Replace(root, []byte(`"version":1`), []byte(`"version":7`), 1)
	}
	if bytes.Equal(tampered, root) {
		t.Fatal("the test could not tamper with the root")
	}
	os.WriteFile(c.CertifierRoot, tampered, 0o600)
	if _, err := agent.New(ctx, c, nil); !errors.Is(err, certroot.ErrSignature) {
		t.Fatalf("agent.New with a tampered certifier root: %v, want %v", err, certroot.ErrSignature)
	}
	os.Remove(c.CertifierRoot)
	if _, err := agent.New(ctx, c, nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("agent.New with a missing certifier root: %v, want %v", err, os.ErrNotExist)
	}
}
