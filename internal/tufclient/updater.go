package tufclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/ztota/ztota/internal/boundedfile"
)

const (
	// DefaultHTTPTimeout bounds one whole request (connect, headers and
	// body) when Options.HTTPClient sets no Timeout.
	DefaultHTTPTimeout = 30 * time.Second
	// MaxHTTPTimeout is the longest Options.HTTPClient.Timeout accepted.
	MaxHTTPTimeout = 10 * time.Minute
	// maxRedirects bounds the redirects followed for one request.
	maxRedirects = 3
	// maxURLLength bounds the metadata and targets URLs.
	maxURLLength = 2048
	// userAgent is sent with every request.
	userAgent = "ztota-tuf-client"
)

// Options configures one repository's updater.
type Options struct {
	MetadataURL string // http(s) base URL of the metadata (required)
	TargetsURL  string // http(s) base URL of the targets; empty = MetadataURL + "/targets"
	MetadataDir string // trusted metadata of this repository only (required)
	TargetsDir  string // where DownloadTarget stores files; empty = MetadataDir/targets; never MetadataDir
	TrustedRoot []byte // bootstrap root.json; may be nil when MetadataDir holds root.json

	// HTTPClient carries every request (required); the agent passes one
	// whose Transport signs requests. It is copied, never modified.
	HTTPClient *http.Client
	// RefTime is the time expiry is checked against; zero means now.
	RefTime time.Time
	// Limits bounds sizes and walks; zero fields take DefaultLimits.
	Limits Limits
	// Device, when set, makes this the director repository of that
	// device: every metadata document other than root fetched under
	// MetadataURL must name Device in its signed DeviceField
	// (tufrepo.CheckDevice), or the download fails with
	// tufrepo.ErrNotForDevice before go-tuf parses, compares or stores
	// it. Empty for plain TUF repositories (the image repository, the
	// conformance entry point).
	Device string
}

// NewUpdater validates o and returns a fresh go-tuf updater for one
// refresh. All its requests are bound to ctx, which must outlive the use of
// the updater.
func NewUpdater(ctx context.Context, o Options) (*updater.Updater, error) {
	up, _, err := newUpdater(ctx, o)
	return up, err
}

// newUpdater is NewUpdater that also returns the root it started from.
func newUpdater(ctx context.Context, o Options) (*updater.Updater, []byte, error) {
	cfg, err := o.config(ctx)
	if err != nil {
		return nil, nil, err
	}
	up, err := updater.New(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("start TUF updater for %s: %w", o.MetadataURL, err)
	}
	if !o.RefTime.IsZero() {
		up.UnsafeSetRefTime(o.RefTime.UTC())
	}
	return up, cfg.LocalTrustedRoot, nil
}

// config validates o and builds the go-tuf configuration.
func (o Options) config(ctx context.Context) (*config.UpdaterConfig, error) {
	if ctx == nil {
		return nil, fmt.Errorf("%w: nil context", ErrInvalidOptions)
	}
	if o.HTTPClient == nil {
		return nil, fmt.Errorf("%w: HTTPClient is required; pass an *http.Client (the agent's signs requests)", ErrInvalidOptions)
	}
	if err := checkURL("MetadataURL", o.MetadataURL); err != nil {
		return nil, err
	}
	if o.TargetsURL != "" {
		if err := checkURL("TargetsURL", o.TargetsURL); err != nil {
			return nil, err
		}
	}
	if o.MetadataDir == "" {
		return nil, fmt.Errorf("%w: MetadataDir is required: trusted metadata must persist for rollback protection", ErrInvalidOptions)
	}
	targetsDir := o.TargetsDir
	if targetsDir == "" {
		targetsDir = filepath.Join(o.MetadataDir, "targets")
	}
	if same, err := sameDir(o.MetadataDir, targetsDir); err != nil {
		return nil, err
	} else if same {
		return nil, fmt.Errorf("%w: TargetsDir %q is the metadata directory; a target named root.json would replace the trusted root, so use another directory", ErrInvalidOptions, targetsDir)
	}
	limits, err := o.Limits.withDefaults()
	if err != nil {
		return nil, err
	}
	client, err := boundClient(o.HTTPClient)
	if err != nil {
		return nil, err
	}
	root, err := chooseRoot(o.TrustedRoot, o.MetadataDir, limits.RootMaxLength)
	if err != nil {
		return nil, err
	}

	cfg, err := config.New(o.MetadataURL, root)
	if err != nil {
		return nil, fmt.Errorf("%w: MetadataURL %q: %v", ErrInvalidOptions, o.MetadataURL, err)
	}
	if o.TargetsURL != "" {
		cfg.RemoteTargetsURL = o.TargetsURL
	}
	cfg.LocalMetadataDir = o.MetadataDir
	cfg.LocalTargetsDir = targetsDir
	cfg.RootMaxLength = limits.RootMaxLength
	cfg.TimestampMaxLength = limits.TimestampMaxLength
	cfg.SnapshotMaxLength = limits.SnapshotMaxLength
	cfg.TargetsMaxLength = limits.TargetsMaxLength
	cfg.MaxRootRotations = limits.MaxRootRotations
	cfg.MaxDelegations = limits.MaxDelegations
	cfg.PrefixTargetsWithHash = true
	cfg.DisableLocalCache = false
	cfg.UnsafeLocalMode = false

	f := fetcher.NewDefaultFetcher()
	f.SetHTTPUserAgent(userAgent)
	f.SetHTTPClient(ctxClient{ctx: ctx, client: client})
	f.SetRetry(0, 1) // one try: the caller's refresh loop retries with backoff
	cfg.Fetcher = f
	if o.Device != "" {
		mbase, tbase := ensureSlash(cfg.RemoteMetadataURL), ensureSlash(cfg.RemoteTargetsURL)
		if strings.HasPrefix(mbase, tbase) {
			return nil, fmt.Errorf("%w: TargetsURL %q holds the metadata URL; with Device set, targets need a URL of their own so that every metadata file is checked", ErrInvalidOptions, cfg.RemoteTargetsURL)
		}
		cfg.Fetcher = deviceFetcher{next: f, metaBase: mbase, targetsBase: tbase, device: o.Device}
	}
	return cfg, nil
}

// ctxClient binds every request of go-tuf's fetcher (whose interface takes
// no context) to the context of the refresh. It lives only as long as the
// updater built for that refresh.
type ctxClient struct {
	ctx    context.Context
	client *http.Client
}

// Do sends req under the refresh's context.
func (c ctxClient) Do(req *http.Request) (*http.Response, error) {
	return c.client.Do(req.WithContext(c.ctx))
}

// boundClient copies hc with a whole-request timeout and a redirect policy.
func boundClient(hc *http.Client) (*http.Client, error) {
	c := *hc
	switch {
	case c.Timeout == 0:
		c.Timeout = DefaultHTTPTimeout
	case c.Timeout < 0 || c.Timeout > MaxHTTPTimeout:
		return nil, fmt.Errorf("%w: HTTPClient.Timeout is %v; set it between 1ns and %v, or 0 for %v", ErrInvalidOptions, c.Timeout, MaxHTTPTimeout, DefaultHTTPTimeout)
	}
	inner := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		if len(via) > 0 && via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
			return fmt.Errorf("refused redirect from https to %s", req.URL.Scheme)
		}
		if inner != nil {
			return inner(req, via)
		}
		return nil
	}
	return &c, nil
}

func checkURL(field, s string) error {
	if len(s) == 0 || len(s) > maxURLLength {
		return fmt.Errorf("%w: %s must be an http(s) URL of at most %d bytes", ErrInvalidOptions, field, maxURLLength)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: %s %q must be an absolute http(s) URL", ErrInvalidOptions, field, s)
	}
	return nil
}

// sameDir reports whether two directory paths name the same place.
func sameDir(a, b string) (bool, error) {
	aa, err := filepath.Abs(a)
	if err != nil {
		return false, fmt.Errorf("%w: directory %q: %v", ErrInvalidOptions, a, err)
	}
	bb, err := filepath.Abs(b)
	if err != nil {
		return false, fmt.Errorf("%w: directory %q: %v", ErrInvalidOptions, b, err)
	}
	if aa == bb {
		return true, nil
	}
	sa, errA := os.Stat(aa)
	sb, errB := os.Stat(bb)
	return errA == nil && errB == nil && os.SameFile(sa, sb), nil
}

// chooseRoot returns the root to start from: the root.json cached in dir
// when it verifies against itself and is at least as new as bootstrap,
// else bootstrap.
func chooseRoot(bootstrap []byte, dir string, maxLen int64) ([]byte, error) {
	var bootVersion int64
	if len(bootstrap) > 0 {
		if int64(len(bootstrap)) > maxLen {
			return nil, fmt.Errorf("%w: TrustedRoot is %d bytes, more than Limits.RootMaxLength %d", ErrInvalidOptions, len(bootstrap), maxLen)
		}
		r, err := metadata.Root().FromBytes(bootstrap)
		if err != nil {
			return nil, fmt.Errorf("%w: TrustedRoot is not root metadata: %v", ErrInvalidOptions, err)
		}
		bootVersion = r.Signed.Version
	}
	cached, err := boundedfile.Read(filepath.Join(dir, "root.json"), maxLen)
	if err == nil {
		if _, verr := trustedmetadata.New(cached); verr == nil {
			if r, perr := metadata.Root().FromBytes(cached); perr == nil && r.Signed.Version >= bootVersion {
				return cached, nil
			}
		} else if len(bootstrap) == 0 {
			return nil, fmt.Errorf("cached %s does not verify (%v); run `tuf-client init` again or pass a bootstrap root: %w",
				filepath.Join(dir, "root.json"), verr, ErrNoTrustedRoot)
		}
	} else if len(bootstrap) == 0 {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNoTrustedRoot
		}
		return nil, fmt.Errorf("%w: %v", ErrNoTrustedRoot, err)
	}
	return bootstrap, nil
}
