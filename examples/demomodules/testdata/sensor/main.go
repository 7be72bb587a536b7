// Command sensor is the demo's second module: a long-running process
// with no dependencies beyond the standard library that samples a
// counter every 200ms into its data directory and answers "health" (a
// build marked unhealthy fails it) and "version".
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Set at build time with -ldflags "-X main.version=... -X main.healthy=false".
var (
	version = "dev"
	healthy = "true"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "health":
			if healthy != "true" {
				fmt.Printf("sensor %s: unhealthy build\n", version)
				os.Exit(1)
			}
			fmt.Printf("sensor %s healthy\n", version)
			return
		case "version":
			fmt.Println(version)
			return
		}
	}
	fmt.Printf("sensor %s starting in slot %s, pid %d\n", version, os.Getenv("ZTOTA_SLOT"), os.Getpid())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	dir := os.Getenv("ZTOTA_DATA_DIR")
	if dir == "" {
		dir = os.Getenv("ZTOTA_STATE_DIR")
	}
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, "sensor-"+os.Getenv("ZTOTA_DEVICE")+".samples")
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for n := 0; ; n++ {
		// Written aside and renamed: a reader never sees a partial sample.
		if os.WriteFile(path+".tmp", []byte(strconv.Itoa(n)+" "+strconv.Itoa(os.Getpid())+"\n"), 0o644) == nil {
			os.Rename(path+".tmp", path)
		}
		select {
		case <-stop:
			fmt.Printf("sensor %s stopping\n", version)
			return
		case <-t.C:
		}
	}
}
