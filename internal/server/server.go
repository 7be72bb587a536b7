// Package server is the OTA server: it serves the image repository and one
// director repository per device, enrolls devices, takes signed status
// reports, and rolls releases out in waves.
//
// HTTP API (JSON bodies, bounded in size; errors are {"error": "..."} with
// a 4xx status for bad input):
//
//	GET  /image/{N}.root.json | timestamp.json | {N}.snapshot.json | {N}.targets.json
//	GET  /image/targets/{name}/{version}/{sha256}.{file}        artifact (Range supported)
//	GET  /director/{device}/...                                 that device's director (signed request)
//	POST /v1/enroll                                             {device_id, hardware_id, public_key, token_id, nonce, proof} (package enroll)
//	POST /v1/devices/{device}/reports                           [signed reports] (signed request)
//	PUT  /v1/artifacts/{sha256}                                 artifact bytes (integrator)
//	GET  /v1/image/targets                                      latest image targets.json (integrator)
//	POST /v1/image/targets                                      new signed image targets.json (integrator)
//	POST /v1/roots/{image|director}                             rotated root (admin)
//	POST /v1/enroll-tokens                                      {group, ttl_seconds} (admin)
//	POST /v1/tokens                                             {scope, name, ttl_seconds} (admin)
//	GET  /v1/tokens, POST /v1/tokens/{id}/revoke                list (no secrets), revoke (admin)
//	POST /v1/devices/{device}/decommission                      revoke a device (admin)
//	POST /v1/deployments                                        {release, devices | group, waves, failure_threshold} (admin)
//	POST /v1/deployments/{id}/halt                              stop a running deployment (admin)
//	GET  /v1/deployments[/{id}], /v1/releases, /v1/devices[/{id}[/history]]   (viewer)
//	PUT  /v1/certificates/{sha256}, PUT /v1/revocations         certifier's bundle, newer list (integrator; certgate.go)
//	GET  /v1/certificates/{sha256}, /v1/revocations             (viewer); /v1/devices/{device}/... (signed device request)
//	GET  /v1/mitigations[?state=&device=&artifact=&repair=], /v1/repairs[/{id}], /v1/feed   (viewer; see mitigate.go)
//	GET  /v1/devices/{device}/nudge?after=N&wait=S              long poll, {"seq": M} when nudged (signed request; nudge.go)
//	GET  /v1/webhook-key                                        the repair webhook's public key (viewer; see webhook.go)
//
// API tokens travel as "Authorization: Bearer <token>" with scope admin,
// integrator or viewer (admin may do everything, integrator may also view).
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/diskspace"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/store"
)

// Config configures a server.
type Config struct {
	DataDir string
	// KeysDir holds the online keys and the initial signed metadata made
	// by "ztota keys init" (its online/ folder). Needed on first start only.
	KeysDir string
	Logger  *slog.Logger
	Now     func() time.Time

	TimestampTTL      time.Duration // default 24h
	SnapshotTTL       time.Duration // default 7 days
	DirectorTargetTTL time.Duration // default 30 days
	ResignInterval    time.Duration // how often expiring metadata is re-signed; default 1m
	MaxArtifactSize   int64         // default 2 GiB
	// DeviceReplayWindow bounds the signed non-GET requests one device may
	// make within the replay window (2 × devauth.MaxSkew); default 1024.
	DeviceReplayWindow int
	// FreeSpace reports free bytes in a directory; nil means statfs. Tests
	// replace it to play a full disk.
	FreeSpace diskspace.Func

	// TLSCertFile and TLSKeyFile are the server's certificate and key
	// (see ResolveTLS for the defaults). Without them Serve refuses to
	// start unless InsecureHTTP allows plain HTTP.
	TLSCertFile, TLSKeyFile string
	InsecureHTTP            bool
	// Timeouts bound slow clients (see Timeouts; zero: defaults).
	Timeouts Timeouts
	// CertifierRoot is the certification service's trusted root
	// (certroot.Trust of the root.json 'ztota cert fetch' writes). With
	// it, the server mirrors certificate bundles and the revocation list
	// and refuses deployments of uncertified or revoked releases (see
	// certgate.go); without it releases are not gated.
	CertifierRoot *certroot.Root

	// CertdURL is the certification service whose event feed the server
	// follows to mitigate revocations ("" = none; needs CertifierRoot,
	// whose certify keys must sign every event, see mitigate.go);
	// CertdCAFile pins its TLS CA.
	CertdURL, CertdCAFile string
	// FeedWait is the feed's long-poll wait (default 30s); FeedMaxBackoff
	// bounds the delay between retries after an error (default 1 min).
	FeedWait, FeedMaxBackoff time.Duration
	// OnMitigation, if set, is called after an event's mitigations are
	// committed (tests; see afterMitigation).
	OnMitigation func(context.Context, MitigationOutcome)
	// Repair configures the fix roll-out and the repair webhook (autofix.go, webhook.go).
	Repair RepairConfig
	// OnNudge, if set, is called with the devices nudged to refresh now
	// (besides the nudge long polls, Server.Nudge).
	OnNudge func(devices ...string)
}

// Server is a running OTA server.
type Server struct {
	cfg     Config
	st      *store.Store
	log     *slog.Logger
	keys    onlineKeys
	mu      sync.Mutex // serialises metadata writers
	dirty   []string   // repositories published in the running transaction (under mu)
	cache   *metaCache
	dkeys   sync.Map                                // device id -> deviceKey
	keyMu   sync.Mutex                              // serialises device key cache misses and decommissions
	touched sync.Map                                // device id -> time.Time of the last last-seen write
	feed    *feedState                              // the certifier feed follower (nil: not configured)
	logs    *logMirror                              // the certifier's log proofs for devices (nil: no feed)
	nudges  nudger                                  // the nudge long polls (nudge.go)
	repair  *repairState                            // fix roll-out and webhook workers (autofix.go)
	revs    atomic.Pointer[store.StoredRevocations] // the newest revocation list (certgate.go)
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.TimestampTTL == 0 {
		c.TimestampTTL = 24 * time.Hour
	}
	if c.SnapshotTTL == 0 {
		c.SnapshotTTL = 7 * 24 * time.Hour
	}
	if c.DirectorTargetTTL == 0 {
		c.DirectorTargetTTL = 30 * 24 * time.Hour
	}
	if c.ResignInterval == 0 {
		c.ResignInterval = time.Minute
	}
	if c.MaxArtifactSize == 0 {
		c.MaxArtifactSize = 2 << 30
	}
	if c.DeviceReplayWindow <= 0 {
		c.DeviceReplayWindow = 1024
	}
	if c.FeedWait <= 0 || c.FeedWait > maxFeedWait {
		c.FeedWait = min(max(c.FeedWait, defaultFeedWait), maxFeedWait)
	}
	if c.FeedMaxBackoff <= 0 {
		c.FeedMaxBackoff = defaultFeedMaxBackoff
	}
}

// AdminTokenFile is where a new server writes its first admin token.
const AdminTokenFile = "admin.token"

// New opens the data directory, importing keys and initial metadata on the
// first start, and writes an admin token to DataDir/admin.token if there is
// none yet.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg.defaults()
	if cfg.DataDir == "" {
		return nil, errors.New("server: a data directory is required (--data DIR)")
	}
	st, err := store.Open(ctx, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, st: st, log: cfg.Logger, cache: newMetaCache()}
	if err := s.initFeed(); err != nil {
		st.Close()
		return nil, err
	}
	if s.logs, err = s.newLogMirror(); err != nil {
		st.Close()
		return nil, err
	}
	if err := s.bootstrap(ctx); err != nil {
		st.Close()
		return nil, err
	}
	if err := s.ensureAdminToken(ctx); err != nil {
		st.Close()
		return nil, err
	}
	if err := s.initRepair(); err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

// Store exposes the state (for tests and the demo's timeline).
func (s *Server) Store() *store.Store { return s.st }

// Close releases the database.
func (s *Server) Close() error { s.stopRepair(); return s.st.Close() }

func (s *Server) ensureAdminToken(ctx context.Context) error {
	path := filepath.Join(s.cfg.DataDir, AdminTokenFile)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	tok := NewToken()
	if err := s.st.AddAPIToken(ctx, tok, ScopeAdmin, "initial admin"); err != nil {
		return err
	}
	if err := keys.WriteFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
		return err
	}
	s.log.Info("wrote the initial admin token", "file", path)
	return nil
}

// NewToken returns a random secret token.
func NewToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func (s *Server) resignLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ResignInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.ResignExpiring(ctx); err != nil {
				s.log.Error("re-signing expiring metadata", "err", err)
			}
		}
	}
}
