package certd

import (
	"errors"
	"net"
	"os"
	"path/filepath"
)

func listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// readRootVersion reads version n of the certifier's root from the key
// directory's history.
func readRootVersion(dataDir, n string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "keys", "root", n+".root.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNotFound
	}
	return b, err
}
