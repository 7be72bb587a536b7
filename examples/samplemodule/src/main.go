// Command samplemodule is the small application ztota's demo and tests
// deploy: it writes a heartbeat file every 200ms and answers "health" with
// exit status 0 when the build was marked healthy and the heartbeat is
// fresh.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Set at build time with -ldflags "-X main.version=... -X main.healthy=...".
var (
	version = "dev"
	healthy = "true"
)

const heartbeat = "heartbeat"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "health" {
		os.Exit(health())
	}
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println(version)
		return
	}
	fmt.Printf("samplemodule %s starting in slot %s\n", version, os.Getenv("ZTOTA_SLOT"))
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	dir := os.Getenv("ZTOTA_STATE_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	path := dir + "/samplemodule-" + os.Getenv("ZTOTA_DEVICE") + "." + heartbeat
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		os.WriteFile(path, []byte(version), 0o600)
		select {
		case <-stop:
			fmt.Printf("samplemodule %s stopping\n", version)
			return
		case <-t.C:
		}
	}
}

func health() int {
	if healthy != "true" {
		fmt.Println("unhealthy build")
		return 1
	}
	return 0
}
