// Command app is the demo's application module: a long-running service
// that processes text (text.go, with golang.org/x/text; notext.go, the
// backup build, without it), writes a heartbeat into its data directory
// every 200ms and answers "health" (exit 0 once it has a fresh
// heartbeat) and "version".
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "health":
			os.Exit(health())
		case "version":
			fmt.Println(version)
			return
		}
	}
	mode := os.Getenv("ZTOTA_MODE")
	if mode == "" {
		mode = "normal"
	}
	fmt.Printf("app %s (%s) starting in slot %s, mode %s\n", version, engine, os.Getenv("ZTOTA_SLOT"), mode)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for n := 0; ; n++ {
		out := process(n)
		os.WriteFile(heartbeat(), []byte(version+" "+out+"\n"), 0o600)
		select {
		case <-stop:
			fmt.Printf("app %s stopping\n", version)
			return
		case <-t.C:
		}
	}
}

// heartbeat is the heartbeat file in the module's data directory (the
// only tree a confined module may write), else the agent's state
// directory, else the temporary directory.
func heartbeat() string {
	for _, v := range []string{"ZTOTA_DATA_DIR", "ZTOTA_STATE_DIR"} {
		if d := os.Getenv(v); d != "" {
			return filepath.Join(d, "app-"+os.Getenv("ZTOTA_DEVICE")+".heartbeat")
		}
	}
	return filepath.Join(os.TempDir(), "app-"+os.Getenv("ZTOTA_DEVICE")+".heartbeat")
}

func health() int {
	out := process(0)
	if out == "" {
		fmt.Println("unhealthy: no output")
		return 1
	}
	fmt.Printf("app %s healthy: %s\n", version, out)
	return 0
}
