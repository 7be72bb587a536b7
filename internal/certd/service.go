package certd

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ztota/ztota/internal/atomicfile"
	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certpolicy"
	"github.com/ztota/ztota/internal/certroot"
	"github.com/ztota/ztota/internal/httpbound"
	"github.com/ztota/ztota/internal/inventory"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/translog"
	"github.com/ztota/ztota/internal/vulnref"
)

// The verifier's identity. VerifierVersion changes whenever what the
// verifier finds in an artifact or how it matches can change; a service
// that starts with a newer version re-inspects every certified artifact.
const (
	VerifierID      = "ztota-verifier"
	VerifierVersion = "1.2.0" // 1.2.0: symbol-level findings for Go binaries
)

// Defaults and bounds.
const (
	DefaultRevocationTTL = 24 * time.Hour
	DefaultWatchInterval = 10 * time.Second
	MaxSubmission        = 512 << 20 // default bound on an artifact's bytes
	MaxSBOM              = 16 << 20
	MaxNameLen           = 200
)

// Config configures a Service.
type Config struct {
	// DataDir holds the database, stored artifacts and keys.
	DataDir string
	// OSV lists the vulnerability sources: osv.dev all.zip files,
	// directories of OSV JSON records, or http(s) URLs of all.zip files.
	OSV []string
	// Policy is a policy document; nil means DATA/policy.json if it
	// exists, else the default policy.
	Policy []byte
	// Origin names the transparency log (its checkpoints' first line).
	// Empty means the origin the certifier root pins; a root made on first
	// start pins this one (default certroot.DefaultLogOrigin).
	Origin string
	// RevocationTTL is how long a revocation list is valid; it is
	// re-signed with a new version when half of it has passed.
	RevocationTTL time.Duration
	// WatchInterval is how often the sources are checked for changes.
	WatchInterval time.Duration
	// VerifierVersion overrides the verifier version (tests of the
	// "new verifier re-inspects everything" rule).
	VerifierVersion string
	// MaxSubmission bounds a submitted artifact's size (default
	// MaxSubmission).
	MaxSubmission int64
	// Limits bound what the verifier reads from artifacts and SBOMs.
	Limits inventory.Limits
	// HTTPClient fetches URL sources; nil means a default client. Either
	// way a source is https (redirects away from https are refused) or
	// pinned by digest: "http://host/all.zip#sha256=<hex>".
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
	// TLSCertFile and TLSKeyFile are the service's certificate and key;
	// without them Serve refuses to start unless InsecureHTTP is set.
	TLSCertFile, TLSKeyFile string
	InsecureHTTP            bool
	// Timeouts bound slow clients (zero: httpbound's defaults).
	Timeouts httpbound.Timeouts
}

// Service is a running certification service.
type Service struct {
	cfg      Config
	db       *sql.DB
	log      *translog.Log
	root     *certroot.Root
	online   certroot.Online
	policy   *certpolicy.Policy
	verifier string
	now      func() time.Time
	logger   *slog.Logger
	token    string

	mu    sync.Mutex // serialises every change of signed state
	vdb   *vulnDB
	feed  *feed
	hooks *webhooks
}

// Open opens (creating if needed) the service's state in cfg.DataDir,
// creating its keys on first use, and loads the vulnerability sources.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("certd: a data directory is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.RevocationTTL <= 0 {
		cfg.RevocationTTL = DefaultRevocationTTL
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = DefaultWatchInterval
	}
	if cfg.VerifierVersion == "" {
		cfg.VerifierVersion = VerifierVersion
	}
	if cfg.MaxSubmission <= 0 {
		cfg.MaxSubmission = MaxSubmission
	}
	if cfg.Limits == (inventory.Limits{}) {
		cfg.Limits = inventory.DefaultLimits()
	}
	if err := checkSources(cfg.OSV); err != nil {
		return nil, err
	}
	for _, d := range []string{"artifacts", "tmp", "osv"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, d), 0o700); err != nil {
			return nil, err
		}
	}
	s := &Service{cfg: cfg, now: cfg.Now, logger: cfg.Logger, verifier: cfg.VerifierVersion}
	if err := s.openKeys(); err != nil {
		return nil, err
	}
	if err := s.openPolicy(); err != nil {
		return nil, err
	}
	tok, err := loadOrCreateToken(filepath.Join(cfg.DataDir, "admin.token"))
	if err != nil {
		return nil, err
	}
	s.token = tok
	db, err := openDB(ctx, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.db = db
	signer, err := certroot.LogSigner(s.cfg.Origin, s.online.Log)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("log key: %w", err)
	}
	if s.log, err = translog.Open(db, s.cfg.Origin, signer); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening the transparency log: %w", err)
	}
	s.feed = newFeed(db)
	s.hooks = newWebhooks(s)
	if err := s.ensureRevocationList(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadSources(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.checkVerifierVersion(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.reissueUnverifiable(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the database.
func (s *Service) Close() error { return s.db.Close() }

// Token returns the admin API token.
func (s *Service) Token() string { return s.token }

// Root returns the current trust root document.
func (s *Service) Root() []byte { return s.root.Bytes() }

func (s *Service) openKeys() error {
	dir := filepath.Join(s.cfg.DataDir, "keys")
	if _, err := os.Stat(filepath.Join(dir, "root.json")); errors.Is(err, os.ErrNotExist) {
		if err := certroot.Init(dir, certroot.Options{Now: s.now(), LogOrigin: s.cfg.Origin}); err != nil {
			return fmt.Errorf("creating the certifier's keys: %w", err)
		}
		s.logger.Warn("created the certifier's trust root and keys; move the offline root keys off this machine",
			"offline", filepath.Join(dir, "offline"))
	}
	data, err := os.ReadFile(filepath.Join(dir, "root.json"))
	if err != nil {
		return err
	}
	if s.root, err = certroot.Trust(data); err != nil {
		return fmt.Errorf("certifier root %s: %w", filepath.Join(dir, "root.json"), err)
	}
	if s.online, err = certroot.LoadOnline(dir); err != nil {
		return fmt.Errorf("certifier online keys: %w", err)
	}
	if err := s.root.CheckOnline(s.online); err != nil {
		return fmt.Errorf("certifier online keys in %s do not match root version %d: %w", dir, s.root.Version(), err)
	}
	// The log's origin is the one the root pins; a root made before
	// origins were pinned keeps the configured (or default) name until the
	// next root version pins it, and verifiers refuse its receipts.
	switch pinned, err := s.root.LogOrigin(); {
	case err != nil:
		if s.cfg.Origin == "" {
			s.cfg.Origin = certroot.DefaultLogOrigin
		}
		s.logger.Warn("the certifier root pins no log origin: verifiers refuse its log receipts until the root is rotated",
			"root_version", s.root.Version(), "origin", s.cfg.Origin)
	case s.cfg.Origin == "":
		s.cfg.Origin = pinned
	case s.cfg.Origin != pinned:
		return fmt.Errorf("certifier root version %d pins the log origin %q, not the configured %q", s.root.Version(), pinned, s.cfg.Origin)
	}
	return nil
}

func (s *Service) openPolicy() error {
	data := s.cfg.Policy
	if data == nil {
		b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, "policy.json"))
		switch {
		case err == nil:
			data = b
		case errors.Is(err, os.ErrNotExist):
			s.policy = certpolicy.Default()
			return nil
		default:
			return err
		}
	}
	p, err := certpolicy.Parse(data)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	s.policy = p
	return nil
}

func loadOrCreateToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return string(trimSpace(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	tok := "ztc_" + hex.EncodeToString(raw[:])
	if err := keys.WriteFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	return tok, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// Outcome is the answer to a submission or a lookup.
type Outcome struct {
	Artifact string                 `json:"artifact"`
	State    string                 `json:"state"`
	Result   *resultRow             `json:"result"`
	Envelope json.RawMessage        `json:"envelope"`
	Findings []vulnref.Finding      `json:"findings"`
	Notes    []string               `json:"notes,omitempty"`
	Reused   bool                   `json:"reused,omitempty"`
	Disagree []vulnref.Disagreement `json:"disagreements,omitempty"`
}

// InputError is bad input from a submitter: a clear message, nothing stored.
type InputError struct {
	Err error
	// TooLarge marks input over a size bound (HTTP 413).
	TooLarge bool
}

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func inputErrorf(format string, args ...any) error {
	return &InputError{Err: fmt.Errorf(format, args...)}
}

// Submit inspects an artifact (and an optional SBOM) and issues a signed
// certificate or rejection. Resubmitting an artifact that is already
// certified against the same database, policy and verifier returns the
// existing certificate.
func (s *Service) Submit(ctx context.Context, name string, artifact io.Reader, sbom []byte) (*Outcome, error) {
	if name == "" || len(name) > MaxNameLen {
		return nil, inputErrorf("artifact name must be 1..%d bytes", MaxNameLen)
	}
	if len(sbom) > MaxSBOM {
		return nil, inputErrorf("SBOM larger than %d bytes", MaxSBOM)
	}
	tmp, err := os.CreateTemp(filepath.Join(s.cfg.DataDir, "tmp"), "submit-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(artifact, s.cfg.MaxSubmission+1))
	if err != nil {
		return nil, inputErrorf("reading the artifact: %v", err)
	}
	if n > s.cfg.MaxSubmission {
		return nil, &InputError{Err: fmt.Errorf("artifact larger than %d bytes", s.cfg.MaxSubmission), TooLarge: true}
	}
	if n == 0 {
		return nil, inputErrorf("artifact is empty")
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	sha := hex.EncodeToString(h.Sum(nil))
	inv, err := inventory.FromFile(tmp.Name(), s.cfg.Limits)
	if err != nil {
		// Name the artifact, not the service's temporary file.
		return nil, inputErrorf("inspecting the artifact: %s", strings.ReplaceAll(err.Error(), tmp.Name(), name))
	}
	var sb *inventory.SBOM
	sbomSHA := ""
	if len(sbom) > 0 {
		if sb, err = inventory.ParseSBOM(sbom, s.cfg.Limits); err != nil {
			return nil, inputErrorf("SBOM: %v", err)
		}
		sum := sha256.Sum256(sbom)
		sbomSHA = hex.EncodeToString(sum[:])
	}
	var dis []vulnref.Disagreement
	if sb != nil {
		dis = inventory.CrossCheck(inv, sb)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	if prev, err := getArtifact(ctx, s.db, sha); err == nil && prev.State == StateCertified &&
		prev.VerifierVersion == s.verifier && prev.SBOMSHA256 == sbomSHA {
		cur, err := getResult(ctx, s.db, prev.Current)
		if err == nil && cur.DBID == s.vdb.ID() && cur.PolicyDigest == s.policy.Digest() && now.Before(cur.ValidUntil) {
			out, err := s.outcome(ctx, sha)
			if out != nil {
				out.Reused = true
			}
			return out, err
		}
	}
	dst := s.artifactPath(sha)
	if _, err := os.Stat(dst); errors.Is(err, os.ErrNotExist) {
		if err := atomicfile.Rename(tmp.Name(), dst); err != nil {
			return nil, err
		}
	}
	a := &artifactRow{
		SHA256: sha, Name: name, Size: n, Kind: inv.Kind, SBOMSHA256: sbomSHA,
		VerifierVersion: s.verifier, Components: inv.Components, Disagreements: dis, Notes: inv.Notes,
		Created: now, Updated: now, // a stored artifact keeps its creation time (putArtifact)
	}
	err = inTx(ctx, s.db, func(tx *sql.Tx) error {
		if sb != nil {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO sboms (sha256, format, data) VALUES (?,?,?)`,
				sbomSHA, sb.Format, sbom); err != nil {
				return err
			}
		}
		verdict, findings := s.evaluate(a, inv.Symbols, true)
		kind := attest.KindCertificate
		a.State = StateCertified
		if verdict != attest.VerdictPass {
			kind, a.State = attest.KindRejection, StateRejected
		}
		if err := putArtifact(ctx, tx, a); err != nil {
			return err
		}
		r, err := s.issue(ctx, tx, a, kind, verdict, "", findings, now)
		if err != nil {
			return err
		}
		return setArtifactState(ctx, tx, sha, a.State, r.Digest, now)
	})
	if err != nil {
		return nil, err
	}
	s.feed.notify()
	return s.outcome(ctx, sha)
}

func (s *Service) artifactPath(sha string) string {
	return filepath.Join(s.cfg.DataDir, "artifacts", sha)
}

// evaluate matches the artifact's components against the current
// database, at symbol level for Go binaries, and applies the policy. syms
// are the function tables of its Go binaries by location; when haveSyms is
// false they are read again from the stored artifact, and only if a Go
// advisory matches at module level, so a re-inspection reads only the
// artifacts a change can affect. An artifact that cannot be read again
// keeps every Go finding present (NoteNoSymbolTable).
func (s *Service) evaluate(a *artifactRow, syms map[string]*vulnref.Symbols, haveSyms bool) (string, []vulnref.Finding) {
	findings := s.vdb.Match(a.Components, syms)
	if !haveSyms && hasGoFinding(findings) {
		if syms = s.storedSymbols(a); syms != nil {
			findings = s.vdb.Match(a.Components, syms)
		}
	}
	return s.policy.Evaluate(a.SHA256, findings)
}

func hasGoFinding(fs []vulnref.Finding) bool {
	for _, f := range fs {
		if ecoBase(f.Ecosystem) == inventory.EcosystemGo {
			return true
		}
	}
	return false
}

// storedSymbols reads the function tables of the artifact's Go binaries
// from its stored bytes; nil if it cannot.
func (s *Service) storedSymbols(a *artifactRow) map[string]*vulnref.Symbols {
	inv, err := inventoryFromFile(s.artifactPath(a.SHA256), s.cfg.Limits)
	if err != nil {
		s.logger.Warn("reading the function tables again failed; Go findings count as present", "artifact", a.SHA256, "err", err)
		return nil
	}
	return inv.Symbols
}

// issue signs a result for artifact a, appends it to the log and stores it
// with an event, all in tx.
func (s *Service) issue(ctx context.Context, tx *sql.Tx, a *artifactRow, kind, verdict, previous string,
	findings []vulnref.Finding, now time.Time) (*resultRow, error) {
	res := attest.Result{
		Kind:          kind,
		Verdict:       verdict,
		Findings:      nonNil(findings),
		Disagreements: a.Disagreements,
		Components:    len(a.Components),
		Previous:      previous,
		Issued:        now,
		ValidUntil:    now.Add(time.Duration(s.policy.ValidFor)),
	}
	res.Verifier.ID, res.Verifier.Version = VerifierID, s.verifier
	res.DB.ID, res.DB.Source = s.vdb.ID(), s.vdb.Source()
	res.Policy.Digest, res.Policy.Version = s.policy.Digest(), s.policy.Version
	res.Artifact.Name, res.Artifact.Size = a.Name, a.Size
	subjects := []attest.Subject{{Name: a.Name, SHA256: a.SHA256}}
	if a.SBOMSHA256 != "" {
		subjects = append(subjects, attest.Subject{Name: a.Name + ".sbom", SHA256: a.SBOMSHA256})
	}
	env, err := attest.Sign(subjects, res, s.online.Certify)
	if err != nil {
		return nil, fmt.Errorf("signing the %s: %w", kind, err)
	}
	idx, err := s.log.Append(ctx, tx, kind, env)
	if err != nil {
		return nil, fmt.Errorf("logging the %s: %w", kind, err)
	}
	r := &resultRow{
		Digest: digestOf(env), Artifact: a.SHA256, Kind: kind, Verdict: verdict, DBID: res.DB.ID,
		PolicyDigest: res.Policy.Digest, Previous: previous, Advisories: blockingIDs(findings),
		Issued: now, ValidUntil: res.ValidUntil, LogIndex: idx, Envelope: env,
	}
	if err := insertResult(ctx, tx, r); err != nil {
		return nil, err
	}
	if err := s.feed.add(ctx, tx, now, kind, a.SHA256, map[string]any{
		"digest": r.Digest, "verdict": verdict, "name": a.Name, "db_id": r.DBID,
		"previous": previous, "advisories": r.Advisories, "log_index": idx,
	}); err != nil {
		return nil, err
	}
	return r, nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// blockingIDs lists the advisory ids of the findings that fail policy.
func blockingIDs(fs []vulnref.Finding) []string {
	seen := map[string]bool{}
	var ids []string
	for _, f := range fs {
		if f.Blocking && !seen[f.ID] {
			seen[f.ID] = true
			ids = append(ids, f.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

// outcome describes an artifact's current state.
func (s *Service) outcome(ctx context.Context, sha string) (*Outcome, error) {
	a, err := getArtifact(ctx, s.db, sha)
	if err != nil {
		return nil, err
	}
	out := &Outcome{Artifact: sha, State: a.State, Notes: a.Notes, Disagree: a.Disagreements}
	if a.Current == "" {
		return out, nil
	}
	r, err := getResult(ctx, s.db, a.Current)
	if err != nil {
		return nil, err
	}
	out.Result = r
	out.Envelope = r.Envelope
	res, err := attest.ReadResult(r.Envelope)
	if err != nil {
		return nil, fmt.Errorf("stored result %s: %w", r.Digest, err)
	}
	out.Findings = res.Findings
	return out, nil
}

// Lookup returns an artifact's current state.
func (s *Service) Lookup(ctx context.Context, sha string) (*Outcome, error) {
	return s.outcome(ctx, sha)
}
