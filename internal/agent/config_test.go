package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigResolvesPathsAndFillsDefaults(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "agent.json")
	os.WriteFile(p, []byte(`{"device_id":"d1","hardware_id":"hw","server_url":"https://127.0.0.1:1",
		"data_dir":"data","image_root":"i.json","director_root":"/abs/d.json",
		"module":{"name":"app","command":["bin/app"],"health":{"stay_up":"2s"}},"poll_interval":1.5}`), 0o600)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != filepath.Join(dir, "data") || c.DirectorRoot != "/abs/d.json" {
		t.Fatalf("paths not resolved against the config file: %q %q", c.DataDir, c.DirectorRoot)
	}
	if time.Duration(c.PollInterval) != 1500*time.Millisecond || time.Duration(c.Module.Health.StayUp) != 2*time.Second {
		t.Fatalf("durations: %v %v", c.PollInterval, c.Module.Health.StayUp)
	}
	if c.MaxBoots != 3 || c.MinRate == 0 || c.FullRefresh == 0 {
		t.Fatalf("defaults not filled: %+v", c)
	}
}

func TestBadConfigsAreRefusedWithAReason(t *testing.T) {
	base := `"device_id":"d1","hardware_id":"hw","server_url":"https://x","data_dir":"d","image_root":"i","director_root":"r","module":{"name":"app","command":["bin/app"]}`
	for name, c := range map[string]struct{ body, want string }{
		"unknown field":  {`{` + base + `,"extra":1}`, "unknown field"},
		"bad device id":  {`{"device_id":"../x",` + base[len(`"device_id":"d1",`):] + `}`, "device_id"},
		"no module":      {`{"device_id":"d1","hardware_id":"hw","server_url":"https://x","data_dir":"d","image_root":"i","director_root":"r"}`, "module"},
		"bad duration":   {`{` + base + `,"poll_interval":"soon"}`, "time"},
		"not json":       {`device_id = d1`, "invalid"},
		"oversized file": {`{` + base + `,"enroll_token":"` + strings.Repeat("a", MaxConfigSize) + `"}`, "larger"},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "agent.json")
			os.WriteFile(p, []byte(c.body), 0o600)
			_, err := LoadConfig(p)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("LoadConfig: %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}
