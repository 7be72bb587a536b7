package tufclient

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"

	"github.com/ztota/ztota/internal/tufrepo"
)

// deviceFetcher is the fetcher of a device's director repository: it
// hands go-tuf a timestamp, snapshot or targets document only if the
// document names this device (tufrepo.CheckDevice). A refused document is
// a failed download: go-tuf never parses it, never compares its version
// with the trusted one and never writes it to the metadata directory, so
// another device's director metadata, however new its versions, cannot
// change what this device trusts. Root documents are shared by every
// device and pass unchecked; target files (under the targets URL) too.
type deviceFetcher struct {
	next        fetcher.Fetcher
	metaBase    string // metadata URL as go-tuf joins it (trailing slash)
	targetsBase string // targets URL as go-tuf joins it; not a prefix of metaBase
	device      string
}

// metadataName matches the file names go-tuf asks for under the metadata
// URL: "<role>.json" or "<version>.<role>.json" (role path-escaped).
var metadataName = regexp.MustCompile(`^(?:[0-9]+\.)?([^/]+)\.json$`)

// DownloadFile downloads as the wrapped fetcher does and refuses director
// metadata that was not issued for the device.
func (f deviceFetcher) DownloadFile(urlPath string, maxLength int64, timeout time.Duration) ([]byte, error) {
	data, err := f.next.DownloadFile(urlPath, maxLength, timeout)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(urlPath, f.targetsBase) {
		return data, nil // a target file; its hashes are checked against trusted targets
	}
	name, _ := strings.CutPrefix(urlPath, f.metaBase)
	m := metadataName.FindStringSubmatch(name)
	if m == nil || !strings.HasPrefix(urlPath, f.metaBase) {
		return nil, fmt.Errorf("%w: %s is not a metadata file of this director repository", tufrepo.ErrNotForDevice, urlPath)
	}
	if m[1] == "root" {
		return data, nil
	}
	if err := tufrepo.CheckDevice(data, f.device); err != nil {
		return nil, fmt.Errorf("refused %s: %w", urlPath, err)
	}
	return data, nil
}

// ensureSlash returns u ending in a slash, exactly as go-tuf joins a base
// URL and a file name.
func ensureSlash(u string) string {
	if strings.HasSuffix(u, "/") {
		return u
	}
	return u + "/"
}
