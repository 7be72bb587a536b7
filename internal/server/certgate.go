package server

// The release and deploy gate. With a certifier root configured
// (Config.CertifierRoot), the server mirrors the certification service's
// signed documents for devices and refuses deployments of releases the
// certifier has not certified or has revoked:
//
//	PUT /v1/certificates/{sha256}               certificate bundle of an artifact (integrator)
//	GET /v1/certificates/{sha256}               the stored bundle (viewer)
//	PUT /v1/revocations                         a newer signed revocation list (integrator)
//	GET /v1/revocations                         the newest stored list (viewer)
//	GET /v1/devices/{device}/certificates/{sha256}   the same, signed device request
//	GET /v1/devices/{device}/revocations             the same, signed device request
//
// Trust comes only from the certifier's signatures: a bundle is stored
// only if certverify passes it under the pinned root (subject the
// artifact's sha256, a passing certificate, a log receipt under the
// root's pinned log origin, not revoked in the stored list), and a list
// only if attest.VerifyRevocations passes it against the stored one
// (signed by the revoke keys, not expired, version never lower, no
// revocation dropped). What is served is the certifier's bytes unchanged,
// so devices verify them again with the same checks.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ztota/ztota/internal/attest"
	"github.com/ztota/ztota/internal/certverify"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/strictjson"
	"github.com/ztota/ztota/internal/translog"
	"github.com/ztota/ztota/internal/vulnref"
)

// Bounds of the gate's bodies: an envelope (attest.MaxEnvelopeSize) plus
// a receipt, and a revocation list envelope.
const (
	maxCertBundleBody  = attest.MaxEnvelopeSize + 64<<10
	maxRevocationsBody = attest.MaxRevocationsSize
	// maxFindingsShown bounds the findings named in one refusal.
	maxFindingsShown = 20
)

// CertBundle is the wire format of a certificate bundle, as the
// certification service serves it (GET /v1/results/{digest}/bundle) and
// 'ztota cert submit --out' writes it.
type CertBundle struct {
	Envelope json.RawMessage   `json:"envelope"`
	Kind     string            `json:"kind"`
	Receipt  *translog.Receipt `json:"receipt"`
}

// GateUngated is what a deployment answer says on a server without a
// certifier root.
const GateUngated = "not gated: this server has no certifier root (ztota server --certifier-root FILE)"

var errNoCertifier = errorf(http.StatusNotImplemented,
	"this server has no certifier root (ztota server --certifier-root FILE): it keeps no certificates or revocation lists, and releases are not gated")

func (s *Server) gateRoutes(mux *http.ServeMux) {
	mux.HandleFunc("PUT /v1/certificates/{sha}", s.scoped(ScopeIntegrator, s.handlePutCertificate))
	mux.HandleFunc("GET /v1/certificates/{sha}", s.scoped(ScopeViewer, s.handleGetCertificate))
	mux.HandleFunc("PUT /v1/revocations", s.scoped(ScopeIntegrator, s.handlePutRevocations))
	mux.HandleFunc("GET /v1/revocations", s.scoped(ScopeViewer, s.handleGetRevocations))
	mux.HandleFunc("GET /v1/devices/{device}/certificates/{sha}", s.device(0, nil, s.handleGetCertificate))
	mux.HandleFunc("GET /v1/devices/{device}/revocations", s.device(0, nil, s.handleGetRevocations))
	mux.HandleFunc("GET /v1/devices/{device}/log/proof/consistency", s.device(0, nil, s.handleLogProof))
}

// shaParam reads a {sha} path value: 64 lowercase hex digits.
func shaParam(r *http.Request) (string, error) {
	sha := r.PathValue("sha")
	if len(sha) != 64 || strings.Trim(sha, "0123456789abcdef") != "" {
		return "", errorf(http.StatusBadRequest, "an artifact is named by its sha256: 64 lowercase hex digits")
	}
	return sha, nil
}

// readBody reads at most max bytes of the request body.
func readBody(r *http.Request, max int64) ([]byte, error) {
	if r.ContentLength > max {
		return nil, errorf(http.StatusRequestEntityTooLarge, "body of %d bytes, at most %d allowed", r.ContentLength, max)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "reading body: %v", err)
	}
	if int64(len(body)) > max {
		return nil, errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", max)
	}
	return body, nil
}

// storedList returns the stored revocation list, verified when it was
// stored (nil when none).
func storedList(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (*attest.RevocationList, error) {
	sr, err := store.RevocationsTx(ctx, q)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var l attest.RevocationList
	if err := json.Unmarshal(sr.List, &l); err != nil {
		return nil, fmt.Errorf("the stored revocation list: %w", err)
	}
	return &l, nil
}

// findingsText names a result's findings: the blocking ones, or all when
// none is marked blocking.
func findingsText(fs []vulnref.Finding) string {
	var shown []vulnref.Finding
	for _, f := range fs {
		if f.Blocking {
			shown = append(shown, f)
		}
	}
	if len(shown) == 0 {
		shown = fs
	}
	if len(shown) == 0 {
		return "no findings listed"
	}
	var parts []string
	for i, f := range shown {
		if i == maxFindingsShown {
			parts = append(parts, fmt.Sprintf("and %d more", len(shown)-i))
			break
		}
		p := f.ID
		if f.Package != "" {
			p += " (" + f.Package + "@" + f.Version
			if f.Fixed != "" {
				p += ", fixed in " + f.Fixed
			}
			p += ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// verifyBundle checks a bundle for artifact sha under the pinned root,
// against the stored revocation list prev.
func (s *Server) verifyBundle(b CertBundle, sha string, prev *attest.RevocationList) (*certverify.Report, error) {
	if len(b.Envelope) == 0 {
		return nil, errorf(http.StatusBadRequest, "the bundle has no envelope")
	}
	if b.Receipt == nil {
		return nil, errorf(http.StatusBadRequest, "the bundle has no log receipt: fetch the bundle from the certification service (ztota cert submit --out)")
	}
	rep, err := certverify.Verify(b.Envelope, certverify.Options{
		Root: s.cfg.CertifierRoot, Now: s.cfg.Now(), ArtifactSHA256: sha,
		Receipt: b.Receipt, Kind: b.Kind, RequireReceipt: true, PrevRevocations: prev,
	})
	if err == nil {
		return rep, nil
	}
	switch {
	case errors.Is(err, certverify.ErrNotCertified) && rep != nil && rep.Certificate != nil:
		c := rep.Certificate
		return nil, errorf(http.StatusConflict, "the certifier rejected artifact %s (%s %s, verdict %s, database %s): %s",
			sha, c.Result.Kind, c.Digest, c.Result.Verdict, c.Result.DB.ID, findingsText(c.Result.Findings))
	case errors.Is(err, certverify.ErrRevoked):
		return nil, errorf(http.StatusConflict, "artifact %s: %v", sha, err)
	}
	return nil, errorf(http.StatusBadRequest, "certificate bundle for artifact %s refused: %v", sha, err)
}

func (s *Server) handlePutCertificate(w http.ResponseWriter, r *http.Request) {
	if s.cfg.CertifierRoot == nil {
		s.fail(w, r, errNoCertifier)
		return
	}
	sha, err := shaParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := readBody(r, maxCertBundleBody)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stored, err := s.storeBundle(r.Context(), sha, body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("certificate stored", "artifact", sha, "certificate", stored.CertDigest, "valid_until", stored.ValidUntil)
	s.afterCertificate(sha)
	writeJSON(w, http.StatusOK, stored)
}

func (s *Server) handleGetCertificate(w http.ResponseWriter, r *http.Request) {
	if s.cfg.CertifierRoot == nil {
		s.fail(w, r, errNoCertifier)
		return
	}
	sha, err := shaParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b, err := s.st.Certificate(r.Context(), sha)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b.Bundle)))
	w.Write(b.Bundle)
}

// RevocationsAnswer is the answer to PUT /v1/revocations.
type RevocationsAnswer struct {
	Version   int64     `json:"version"`
	Expires   time.Time `json:"expires"`
	Entries   int       `json:"entries"`
	Unchanged bool      `json:"unchanged,omitempty"` // the stored list was this one already
}

func (s *Server) handlePutRevocations(w http.ResponseWriter, r *http.Request) {
	if s.cfg.CertifierRoot == nil {
		s.fail(w, r, errNoCertifier)
		return
	}
	body, err := readBody(r, maxRevocationsBody)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ans, err := s.storeRevocations(r.Context(), body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// storeRevocations verifies a signed revocation list under the pinned
// certifier root against the stored one (never older, drops nothing) and
// stores it when it is newer; every device is then nudged to refresh.
func (s *Server) storeRevocations(ctx context.Context, body []byte) (RevocationsAnswer, error) {
	var ans RevocationsAnswer
	if len(body) > maxRevocationsBody {
		return ans, errorf(http.StatusRequestEntityTooLarge, "revocation list of %d bytes, at most %d", len(body), maxRevocationsBody)
	}
	// The server's one rule for JSON it reads: no key twice (case-folded).
	if err := checkDuplicateKeys(body); err != nil {
		return ans, errorf(http.StatusBadRequest, "malformed revocation list: %v", err)
	}
	err := s.st.Tx(ctx, func(tx *sql.Tx) error {
		prev, err := storedList(ctx, tx)
		if err != nil {
			return err
		}
		l, err := attest.VerifyRevocations(s.cfg.CertifierRoot, body, prev, s.cfg.Now())
		if err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, attest.ErrRollback) || errors.Is(err, attest.ErrConflict) || errors.Is(err, attest.ErrForgotten) {
				code = http.StatusConflict
			}
			return errorf(code, "revocation list refused: %v", err)
		}
		ans = RevocationsAnswer{Version: l.Version, Expires: l.Expires, Entries: len(l.Entries)}
		if prev != nil && prev.Version == l.Version {
			ans.Unchanged = true // the same content (VerifyRevocations checked it)
			return nil
		}
		list, err := json.Marshal(l)
		if err != nil {
			return err
		}
		return store.SetRevocationsTx(ctx, tx, store.StoredRevocations{Version: l.Version, Data: body, List: list,
			Expires: l.Expires, Stored: s.cfg.Now()})
	})
	if err != nil {
		return RevocationsAnswer{}, err
	}
	if !ans.Unchanged {
		s.cacheRevocations(&store.StoredRevocations{Version: ans.Version, Data: body, Expires: ans.Expires})
		s.log.Info("revocation list stored", "version", ans.Version, "entries", ans.Entries, "expires", ans.Expires)
		s.NudgeAll() // every device refreshes its list now (nudge.go)
	}
	return ans, nil
}

// currentRevocations is the newest stored list, from memory once read:
// every device asks for it at each refresh (a nudged fleet at once), and
// it changes only through storeRevocations.
func (s *Server) currentRevocations(ctx context.Context) (*store.StoredRevocations, error) {
	if sr := s.revs.Load(); sr != nil {
		return sr, nil
	}
	sr, err := s.st.Revocations(ctx)
	if err != nil {
		return nil, err
	}
	return s.cacheRevocations(&sr), nil
}

// cacheRevocations keeps sr in memory unless a newer list is there (a
// read that raced a store cannot put the older list back), and returns
// the list kept.
func (s *Server) cacheRevocations(sr *store.StoredRevocations) *store.StoredRevocations {
	for {
		cur := s.revs.Load()
		if cur != nil && cur.Version >= sr.Version {
			return cur
		}
		if s.revs.CompareAndSwap(cur, sr) {
			return sr
		}
	}
}

func (s *Server) handleGetRevocations(w http.ResponseWriter, r *http.Request) {
	if s.cfg.CertifierRoot == nil {
		s.fail(w, r, errNoCertifier)
		return
	}
	sr, err := s.currentRevocations(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	etag := `"` + strconv.FormatInt(sr.Version, 10) + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Ztota-Revocations-Version", strconv.FormatInt(sr.Version, 10))
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(sr.Data)))
	w.Write(sr.Data)
}

// gateRelease decides whether a release may be deployed and says why: on
// a server with a certifier root, its artifact needs a stored certificate
// that still verifies now under the pinned root and is not revoked in the
// stored revocation list; a refusal is 409 naming the reason (advisories
// for a revocation).
func (s *Server) gateRelease(ctx context.Context, rel store.Release) (string, error) {
	if s.cfg.CertifierRoot == nil {
		return GateUngated, nil
	}
	cb, err := s.st.Certificate(ctx, rel.SHA256)
	if errors.Is(err, store.ErrNotFound) {
		return "", errorf(http.StatusConflict, "release %s (sha256 %s) has no certificate from the certifier: certify it and upload the bundle (ztota release --certd URL or --certificate BUNDLE)", rel.Target, rel.SHA256)
	}
	if err != nil {
		return "", err
	}
	prev, err := storedList(ctx, s.st.DB())
	if err != nil {
		return "", err
	}
	var b CertBundle
	if err := strictjson.Decode(cb.Bundle, &b); err != nil {
		return "", fmt.Errorf("the stored bundle of %s: %w", rel.SHA256, err)
	}
	rep, err := s.verifyBundle(b, rel.SHA256, prev)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			return "", errorf(http.StatusConflict, "release %s may not be deployed: %s", rel.Target, he.msg)
		}
		return "", err
	}
	note := fmt.Sprintf("certified: certificate %s valid until %s", rep.Certificate.Digest, rep.Certificate.Result.ValidUntil.UTC().Format(time.RFC3339))
	if prev != nil {
		note += fmt.Sprintf(", not revoked in revocation list version %d", prev.Version)
		if s.cfg.Now().After(prev.Expires) {
			note += fmt.Sprintf(" (expired %s: push a newer list with 'ztota revocations push')", prev.Expires.UTC().Format(time.RFC3339))
		}
	} else {
		note += ", no revocation list stored yet"
	}
	return note, nil
}

// revokedTx says why a release may no longer be assigned to more devices
// ("" when it may): the stored revocation list revokes its artifact. It
// is checked when a running deployment assigns pending devices (a new
// wave), so a revocation pushed after the deployment began stops it
// before the next wave; the list was verified when stored.
func (s *Server) revokedTx(ctx context.Context, tx *sql.Tx, rel store.Release) (string, error) {
	if s.cfg.CertifierRoot == nil {
		return "", nil
	}
	l, err := storedList(ctx, tx)
	if err != nil || l == nil {
		return "", err
	}
	r, ok := l.Lookup(rel.SHA256, "")
	if !ok {
		return "", nil
	}
	return fmt.Sprintf("the certifier revoked release %s (revocation list version %d, %v: %s): the next waves are not opened",
		rel.Target, l.Version, r.Advisories, r.Reason), nil
}
