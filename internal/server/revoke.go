package server

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ztota/ztota/internal/devauth"
	"github.com/ztota/ztota/internal/keys"
	"github.com/ztota/ztota/internal/store"
)

// API token lifetimes. A token made by POST /v1/tokens lives
// DefaultTokenTTL unless the request asks for another lifetime, at most
// MaxTokenTTL. The initial admin token (DataDir/admin.token) does not
// expire, so that a server never locks its operator out; revoke it once
// personal admin tokens exist.
const (
	DefaultTokenTTL = 90 * 24 * time.Hour
	MaxTokenTTL     = 5 * 365 * 24 * time.Hour
)

// TokenRequest is the body of POST /v1/tokens.
type TokenRequest struct {
	Scope string `json:"scope"`
	Name  string `json:"name"`
	// TTLSeconds is the token's lifetime; 0 means DefaultTokenTTL.
	TTLSeconds int64 `json:"ttl_seconds,omitempty"`
}

// TokenResponse answers POST /v1/tokens: the secret, shown only once.
type TokenResponse struct {
	Token   string    `json:"token"`
	ID      string    `json:"id"`
	Scope   string    `json:"scope"`
	Expires time.Time `json:"expires"`
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	var req TokenRequest
	if err := decodeJSON(r, maxJSONBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if scopeRank[req.Scope] == 0 {
		s.fail(w, r, errorf(http.StatusBadRequest, "scope must be admin, integrator or viewer"))
		return
	}
	if len(req.Name) > 128 || !printable(req.Name) {
		s.fail(w, r, errorf(http.StatusBadRequest, "name must be at most 128 bytes of printable text"))
		return
	}
	ttl := DefaultTokenTTL
	if req.TTLSeconds < 0 || req.TTLSeconds > int64(MaxTokenTTL/time.Second) {
		s.fail(w, r, errorf(http.StatusBadRequest, "ttl_seconds must be between 1 and %d (0 for the default of %s)", int64(MaxTokenTTL/time.Second), DefaultTokenTTL))
		return
	} else if req.TTLSeconds > 0 {
		ttl = time.Duration(req.TTLSeconds) * time.Second
	}
	now := s.cfg.Now()
	tok := NewToken()
	exp := now.Add(ttl).UTC().Truncate(time.Second)
	id, err := s.st.AddAPITokenUntil(r.Context(), tok, req.Scope, req.Name, now, exp)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("API token created", "id", id, "scope", req.Scope, "name", req.Name, "expires", exp)
	writeJSON(w, http.StatusCreated, TokenResponse{Token: tok, ID: id, Scope: req.Scope, Expires: exp})
}

func printable(s string) bool {
	for _, c := range s {
		// Controls (C0, DEL and the C1 range, where U+009B starts a
		// terminal escape sequence) and format characters (bidi
		// overrides, zero-width) would make 'ztota token list' show
		// another text than the one stored.
		if unicode.IsControl(c) || unicode.Is(unicode.Cf, c) || c == utf8.RuneError {
			return false
		}
	}
	return true
}

func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := s.st.APITokens(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ts)
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	t, err := s.st.RevokeAPIToken(r.Context(), r.PathValue("id"), s.cfg.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Warn("API token revoked", "id", t.ID, "scope", t.Scope, "name", t.Name)
	writeJSON(w, http.StatusOK, t)
}

// checkToken returns the scope of a valid API token, or an HTTP error: 401
// for an unknown, expired or revoked token.
func (s *Server) checkToken(ctx context.Context, tok string) (string, error) {
	scope, err := s.st.CheckAPIToken(ctx, tok, s.cfg.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", errorf(http.StatusUnauthorized, "unknown API token")
	case errors.Is(err, store.ErrTokenExpired), errors.Is(err, store.ErrTokenRevoked):
		return "", errorf(http.StatusUnauthorized, "%v", err)
	}
	return scope, err
}

// errDecommissioned answers a decommissioned device's signed requests.
var errDecommissioned = errors.New("device decommissioned")

// deviceKey is a cached device key lookup.
type deviceKey struct {
	pub            ed25519.PublicKey
	decommissioned bool
}

func (s *Server) lookupDeviceKey(ctx context.Context, id string) (ed25519.PublicKey, error) {
	if k, ok := s.dkeys.Load(id); ok {
		dk := k.(deviceKey)
		if dk.decommissioned {
			return nil, errorf(http.StatusForbidden, "%v: %s no longer may update or report", errDecommissioned, id)
		}
		return dk.pub, nil
	}
	// Misses and decommissions are serialised, so a lookup that read the
	// key before a decommission cannot cache it after.
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	pub, dc, err := s.st.DeviceKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, devauth.ErrUnknownDevice
	}
	if err != nil {
		return nil, err
	}
	// A key stored before enrollment refused weak keys must not sign
	// anything: under a small-order key trivial signatures verify.
	if err := keys.CheckEd25519Public(pub); err != nil {
		return nil, fmt.Errorf("%w: device %s has a weak key (%v); enroll it again", devauth.ErrUnknownDevice, id, err)
	}
	s.dkeys.Store(id, deviceKey{pub: pub, decommissioned: !dc.IsZero()})
	if !dc.IsZero() {
		return nil, errorf(http.StatusForbidden, "%v: %s no longer may update or report", errDecommissioned, id)
	}
	return pub, nil
}

// DecommissionResponse answers POST /v1/devices/{device}/decommission.
type DecommissionResponse struct {
	Device    store.Device `json:"device"`
	Cancelled []string     `json:"cancelled_in"` // running deployments the device was cancelled in
}

// handleDecommission revokes a device: its signed requests are refused
// with 403, its director is no longer signed, it counts as cancelled in
// running deployments, and no new deployment may name it.
func (s *Server) handleDecommission(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("device")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	var resp DecommissionResponse
	err := s.tx(ctx, func(tx *sql.Tx) error {
		d, deps, err := store.DecommissionDeviceTx(ctx, tx, id, s.cfg.Now())
		if err != nil {
			return err
		}
		resp = DecommissionResponse{Device: d, Cancelled: deps}
		if err := s.abandonMitigationsTx(ctx, tx, id); err != nil {
			return err
		}
		for _, dep := range deps {
			// The device no longer counts: the wave may be done.
			if err := s.advanceTx(ctx, tx, dep); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.dkeys.Store(id, deviceKey{pub: resp.Device.PublicKey, decommissioned: true})
	s.log.Warn("device decommissioned", "device", id, "cancelled_in", strings.Join(resp.Cancelled, ","))
	if resp.Cancelled == nil {
		resp.Cancelled = []string{}
	}
	writeJSON(w, http.StatusOK, resp)
}

// decommissionedRepo reports whether repo is the director repository of a
// decommissioned device, whose metadata is no longer signed.
func (s *Server) decommissionedRepo(ctx context.Context, repo string) bool {
	dev, ok := strings.CutPrefix(repo, "director/")
	if !ok {
		return false
	}
	d, err := s.st.Device(ctx, dev)
	return err == nil && !d.Decommissioned.IsZero()
}

// checkNotDecommissioned refuses a deployment naming decommissioned devices.
func checkNotDecommissioned(devs []store.Device) error {
	var gone []string
	for _, d := range devs {
		if !d.Decommissioned.IsZero() {
			gone = append(gone, d.ID)
		}
	}
	if len(gone) > 0 {
		return errorf(http.StatusBadRequest, "devices are decommissioned: %s", strings.Join(gone, ", "))
	}
	return nil
}
