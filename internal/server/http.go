package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ztota/ztota/internal/devauth"
	"github.com/ztota/ztota/internal/httpbound"
	"github.com/ztota/ztota/internal/report"
	"github.com/ztota/ztota/internal/store"
	"github.com/ztota/ztota/internal/strictjson"
	"github.com/ztota/ztota/internal/tufrepo"
)

// Token scopes.
const (
	ScopeAdmin      = "admin"
	ScopeIntegrator = "integrator"
	ScopeViewer     = "viewer"
)

var scopeRank = map[string]int{ScopeViewer: 1, ScopeIntegrator: 2, ScopeAdmin: 3}

// Bounds on request bodies.
const (
	maxJSONBody = 64 << 10
	// A report batch: at most maxReportsPerBatch signed reports (the agent
	// sends 64), and the bytes report.ParseBatch allows for them.
	maxReportsPerBatch = 64
	maxReportBody      = (maxReportsPerBatch + 1) * report.MaxSignedLen
	maxTargetsBody     = tufrepo.MaxMetadataSize
)

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /image/{file}", s.serveImageMeta)
	mux.HandleFunc("GET /image/targets/{path...}", s.serveArtifact)
	replay := devauth.NewReplayGuard(s.cfg.DeviceReplayWindow)
	mux.HandleFunc("GET /director/{device}/{file}", s.device(0, nil, s.serveDirectorMeta))
	mux.HandleFunc("POST /v1/enroll", s.handleEnroll)
	mux.HandleFunc("POST /v1/devices/{device}/reports", s.device(maxReportBody, replay, s.handleReports))
	mux.HandleFunc("PUT /v1/artifacts/{sha}", s.scoped(ScopeIntegrator, s.uploadDeadline(s.handlePutArtifact)))
	mux.HandleFunc("GET /v1/image/targets", s.scoped(ScopeIntegrator, s.handleGetImageTargets))
	mux.HandleFunc("POST /v1/image/targets", s.scoped(ScopeIntegrator, s.handlePostImageTargets))
	mux.HandleFunc("POST /v1/roots/{repo}", s.scoped(ScopeAdmin, s.handleRootRotation))
	mux.HandleFunc("POST /v1/enroll-tokens", s.scoped(ScopeAdmin, s.handleEnrollToken))
	mux.HandleFunc("POST /v1/tokens", s.scoped(ScopeAdmin, s.handleToken))
	mux.HandleFunc("GET /v1/tokens", s.scoped(ScopeAdmin, s.handleListTokens))
	mux.HandleFunc("POST /v1/tokens/{id}/revoke", s.scoped(ScopeAdmin, s.handleRevokeToken))
	mux.HandleFunc("POST /v1/devices/{device}/decommission", s.scoped(ScopeAdmin, s.handleDecommission))
	mux.HandleFunc("POST /v1/deployments", s.scoped(ScopeAdmin, s.handleCreateDeployment))
	mux.HandleFunc("POST /v1/deployments/{id}/halt", s.scoped(ScopeAdmin, s.handleHaltDeployment))
	mux.HandleFunc("GET /v1/deployments", s.scoped(ScopeViewer, s.handleListDeployments))
	mux.HandleFunc("GET /v1/deployments/{id}", s.scoped(ScopeViewer, s.handleGetDeployment))
	mux.HandleFunc("GET /v1/releases", s.scoped(ScopeViewer, s.handleListReleases))
	mux.HandleFunc("GET /v1/devices", s.scoped(ScopeViewer, s.handleListDevices))
	mux.HandleFunc("GET /v1/devices/{device}", s.scoped(ScopeViewer, s.handleGetDevice))
	mux.HandleFunc("GET /v1/devices/{device}/history", s.scoped(ScopeViewer, s.handleHistory))
	s.gateRoutes(mux)
	mux.HandleFunc("GET /v1/devices/{device}/nudge", s.device(0, nil, s.handleNudge)) // nudge.go
	// Mitigation bookkeeping (mitigate.go).
	mux.HandleFunc("GET /v1/mitigations", s.scoped(ScopeViewer, s.handleMitigations))
	mux.HandleFunc("GET /v1/repairs", s.scoped(ScopeViewer, s.handleRepairs))
	mux.HandleFunc("GET /v1/repairs/{id}", s.scoped(ScopeViewer, s.handleRepair))
	mux.HandleFunc("GET /v1/feed", s.scoped(ScopeViewer, s.handleFeedStatus))
	mux.HandleFunc("GET /v1/webhook-key", s.scoped(ScopeViewer, s.handleWebhookKey))
	return httpbound.Handler(s.cfg.Timeouts.Timeouts, mux)
}

// httpError is an error with an HTTP status.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	var he *httpError
	switch {
	case errors.As(err, &he):
		code = he.code
	case errors.Is(err, store.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrDuplicate):
		code = http.StatusConflict
	case errors.Is(err, tufrepo.ErrSignature), errors.Is(err, tufrepo.ErrMalformed), errors.Is(err, tufrepo.ErrVersion), errors.Is(err, tufrepo.ErrTooLarge), errors.Is(err, tufrepo.ErrExpired):
		code = http.StatusBadRequest
	}
	msg := err.Error()
	if code == http.StatusInternalServerError {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error"
	} else {
		s.log.Info("request refused", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// decodeJSON reads a strict JSON object of at most max bytes into v.
func decodeJSON(r *http.Request, max int64, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return errorf(http.StatusBadRequest, "reading body: %v", err)
	}
	return decodeJSONBytes(body, max, v)
}

func decodeJSONBytes(body []byte, max int64, v any) error {
	if int64(len(body)) > max {
		return errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", max)
	}
	// The one strict decoder (internal/strictjson): valid UTF-8, no key
	// twice in an object (case-folded, as encoding/json matches fields),
	// no unknown fields, nothing after the value.
	if err := strictjson.DecodeUnique(body, v, 64); err != nil {
		return errorf(http.StatusBadRequest, "malformed JSON: %v", err)
	}
	return nil
}

// checkDuplicateKeys refuses JSON objects that repeat a key, keys that
// differ only in case counting as the same (encoding/json fills a struct
// field from any case variant of its name): the one strict decoder's rule,
// strictjson.CheckKeys, so server and certifier read every body alike.
func checkDuplicateKeys(data []byte) error { return strictjson.CheckKeys(data, 64) }

// scoped guards a handler with an API token of at least the given scope.
func (s *Server) scoped(min string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" || len(tok) > 256 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			s.fail(w, r, errorf(http.StatusUnauthorized, "an API token is required: send 'Authorization: Bearer <token>'"))
			return
		}
		scope, err := s.checkToken(r.Context(), tok)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if scopeRank[scope] < scopeRank[min] {
			s.fail(w, r, errorf(http.StatusForbidden, "a %s token may not do this: it needs the %s scope", scope, min))
			return
		}
		h(w, r)
	}
}

type deviceCtxKey struct{}
type deviceBodyKey struct{}

// device guards a handler with a signed device request whose device id
// matches the {device} in the path.
// At most maxBody bytes of body are read, and a larger declared length is
// refused before the key lookup. Replays are refused with one window per
// device (see devauth.ReplayGuard): a device that fills its own window
// gets 503 with Retry-After, and only it.
func (s *Server) device(maxBody int64, replay *devauth.ReplayGuard, h http.HandlerFunc) http.HandlerFunc {
	v := &devauth.Verifier{
		Lookup:  s.lookupDeviceKey,
		MaxBody: maxBody,
		Replay:  replay,
		Now:     s.cfg.Now,
	}
	return func(w http.ResponseWriter, r *http.Request) {
		id, body, err := v.Verify(r.Context(), r)
		if err != nil {
			code := http.StatusUnauthorized
			if errors.Is(err, devauth.ErrBodyTooLarge) {
				code = http.StatusRequestEntityTooLarge
			} else if errors.Is(err, devauth.ErrReplay) {
				code = http.StatusConflict
			} else if errors.Is(err, devauth.ErrReplayCacheFull) {
				code = http.StatusServiceUnavailable // 5xx: the device's outbox retries, never drops the batch
				w.Header().Set("Retry-After", strconv.Itoa(int(devauth.MaxSkew/time.Second)))
			} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				// The body did not arrive within the bound: the client's
				// fault (408, retried by the agent), not the server's.
				code = http.StatusRequestTimeout
			} else if !errors.Is(err, devauth.ErrMissingAuth) && !errors.Is(err, devauth.ErrMalformedAuth) &&
				!errors.Is(err, devauth.ErrStale) && !errors.Is(err, devauth.ErrBadSignature) && !errors.Is(err, devauth.ErrUnknownDevice) {
				s.fail(w, r, err)
				return
			}
			s.fail(w, r, errorf(code, "%v", err))
			return
		}
		if id != r.PathValue("device") {
			s.fail(w, r, errorf(http.StatusForbidden, "device %s may not act for device %s", id, r.PathValue("device")))
			return
		}
		ctx := context.WithValue(r.Context(), deviceCtxKey{}, id)
		ctx = context.WithValue(ctx, deviceBodyKey{}, body)
		h(w, r.WithContext(ctx))
	}
}

// parseMetaFile splits "N.role.json" or "timestamp.json".
func parseMetaFile(file string) (role string, version int64, err error) {
	if file == "timestamp.json" {
		return tufrepo.Timestamp, 0, nil
	}
	parts := strings.Split(file, ".")
	if len(parts) != 3 || parts[2] != "json" {
		return "", 0, errorf(http.StatusNotFound, "no such metadata file %q", file)
	}
	v, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || v < 1 {
		return "", 0, errorf(http.StatusNotFound, "no such metadata file %q", file)
	}
	switch parts[1] {
	case tufrepo.Root, tufrepo.Snapshot, tufrepo.Targets:
		return parts[1], v, nil
	}
	return "", 0, errorf(http.StatusNotFound, "no such metadata file %q", file)
}

func (s *Server) serveMeta(w http.ResponseWriter, r *http.Request, repo, rootRepo, file string) {
	role, version, err := parseMetaFile(file)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var m store.Meta
	switch {
	case role == tufrepo.Timestamp:
		m, err = s.latestTimestamp(r.Context(), repo)
		if err == nil {
			etag := `"` + strconv.FormatInt(m.Version, 10) + `"`
			w.Header().Set("ETag", etag)
			w.Header().Set("Cache-Control", "no-cache")
			if r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
	case role == tufrepo.Root:
		m, err = s.st.MetaVersion(r.Context(), rootRepo, role, version)
		if errors.Is(err, store.ErrNotFound) {
			// Every TUF client asks for the root after its newest one on
			// each refresh: 404 is the normal answer, not a refusal.
			s.log.Debug("no such root version", "path", r.URL.Path)
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
	default:
		m, err = s.st.MetaVersion(r.Context(), repo, role, version)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(m.Data)))
	w.Write(m.Data)
}

func (s *Server) serveImageMeta(w http.ResponseWriter, r *http.Request) {
	s.serveMeta(w, r, repoImage, repoImage, r.PathValue("file"))
}

func (s *Server) serveDirectorMeta(w http.ResponseWriter, r *http.Request) {
	dev := r.Context().Value(deviceCtxKey{}).(string)
	s.touch(r.Context(), dev)
	s.serveMeta(w, r, directorRepo(dev), repoDirector, r.PathValue("file"))
}

// serveArtifact serves ".../<sha256>.<file>" from the content store, with
// Range support. The path's sha256 prefix is all that selects the bytes.
func (s *Server) serveArtifact(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("path")
	base := p[strings.LastIndex(p, "/")+1:]
	sha, _, ok := strings.Cut(base, ".")
	if !ok || len(sha) != 64 || strings.Trim(sha, "0123456789abcdef") != "" {
		s.fail(w, r, errorf(http.StatusNotFound, "artifact paths are <dir>/<sha256>.<name>"))
		return
	}
	f, err := openArtifact(s.st.ArtifactPath(sha))
	if err != nil {
		s.fail(w, r, errorf(http.StatusNotFound, "no artifact %s", sha))
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+sha+`"`)
	http.ServeContent(w, r, "", time.Time{}, f)
}

// touchEvery bounds how often a check-in writes the device's last-seen
// time: a fleet polling every few seconds must not turn every conditional
// GET into a database write.
const touchEvery = 30 * time.Second

// touch records that a device was seen, at most once per touchEvery.
func (s *Server) touch(ctx context.Context, dev string) {
	now := s.cfg.Now()
	if last, ok := s.touched.Load(dev); ok && now.Sub(last.(time.Time)) < touchEvery {
		return
	}
	s.touched.Store(dev, now)
	if err := s.st.TouchDevice(ctx, dev, now); err != nil {
		s.log.Warn("recording last-seen time", "device", dev, "err", err)
	}
}
