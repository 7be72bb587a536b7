// Package samplemodule builds the sample application that the demo and the
// end-to-end tests deploy, from source embedded in the binary, and packs
// it as an application bundle (a tar of bin/app and VERSION).
package samplemodule

import (
	"archive/tar"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

//go:embed src/main.go
var source []byte

// GoTool returns the go command to build with.
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// Build compiles the sample module into dir/app-<version> and returns its path.
func Build(ctx context.Context, dir, version string, healthy bool) (string, error) {
	src := filepath.Join(dir, "src-"+version)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), source, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module samplemodule\n\ngo 1.22\n"), 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "app-"+version)
	cmd := exec.CommandContext(ctx, GoTool(), "build", "-trimpath", "-o", out,
		"-ldflags", fmt.Sprintf("-s -w -X main.version=%s -X main.healthy=%t", version, healthy), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the sample module: %v: %s", err, out)
	}
	return out, nil
}

// Bundle writes a tar bundle holding bin/app (the binary) and VERSION.
func Bundle(bin, version, out string) error {
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	now := time.Unix(0, 0)
	entries := []struct {
		name string
		mode int64
		data []byte
	}{
		{"bin/app", 0o755, data},
		{"VERSION", 0o644, []byte(version + "\n")},
	}
	if err := tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now}); err != nil {
		return err
	}
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: e.mode, Size: int64(len(e.data)), ModTime: now}); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Sync()
}

// BuildBundle builds the module and bundles it as dir/app-<version>.tar.
func BuildBundle(ctx context.Context, dir, version string, healthy bool) (string, error) {
	bin, err := Build(ctx, dir, version, healthy)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "app-"+version+".tar")
	return out, Bundle(bin, version, out)
}
