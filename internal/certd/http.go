package certd

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ztota/ztota/internal/httpbound"
	"github.com/ztota/ztota/internal/strictjson"
	"github.com/ztota/ztota/internal/tlsutil"
	"github.com/ztota/ztota/internal/translog"
)

// HTTP API:
//
//	POST /v1/submissions        multipart: name, artifact, [sbom]      (token)
//	GET  /v1/artifacts/{sha256}  state, current result, findings
//	GET  /v1/artifacts           list (?state=&after=&limit=)
//	GET  /v1/results/{digest}    the signed envelope
//	GET  /v1/results/{digest}/bundle  envelope + inclusion proof + checkpoint
//	GET  /v1/revocations         the newest signed revocation list
//	GET  /v1/root.json, /v1/roots/{n}.root.json   the trust root chain
//	GET  /v1/status              verifier, DB snapshot, policy, log size
//	GET  /v1/events?after=N&wait=30s&limit=100   the event feed (long poll), each event with its signed envelope
//	POST /v1/webhooks            {"url": "...", "after": N}             (token)
//	POST /v1/db?source=N         body: an OSV all.zip                   (token)
//	POST /v1/db/poll             check the sources now                  (token)
//	GET  /v1/log/...             transparency log: checkpoint, entries, proofs
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("POST /v1/submissions", s.auth(uploadTime(s.handleSubmit)))
	mux.HandleFunc("GET /v1/artifacts/{sha}", s.handleArtifact)
	mux.HandleFunc("GET /v1/artifacts", s.handleListArtifacts)
	mux.HandleFunc("GET /v1/results/{digest}", s.handleResult)
	mux.HandleFunc("GET /v1/results/{digest}/bundle", s.handleBundle)
	mux.HandleFunc("GET /v1/revocations", s.handleRevocations)
	mux.HandleFunc("GET /v1/root.json", s.handleRoot)
	mux.HandleFunc("GET /v1/roots/{file}", s.handleRootVersion)
	mux.HandleFunc("GET /v1/status", s.handleStatus)
	mux.HandleFunc("GET /v1/events", s.handleEvents)
	mux.HandleFunc("POST /v1/webhooks", s.auth(s.handleWebhook))
	mux.HandleFunc("POST /v1/db", s.auth(uploadTime(s.handleUpload)))
	mux.HandleFunc("POST /v1/db/poll", s.auth(s.handlePoll))
	mux.Handle("/v1/log/", http.StripPrefix("/v1/log", s.log.Handler()))
	return httpbound.Handler(s.cfg.Timeouts, mux)
}

// uploadTime gives an authenticated upload (an artifact, a vulnerability
// database) UploadTimeout for its body instead of the small default.
func uploadTime(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		httpbound.ExtendRead(w, UploadTimeout)
		h(w, r)
	}
}

// UploadTimeout bounds the body of an authenticated upload.
const UploadTimeout = 15 * time.Minute

type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	var ae *apiError
	var ie *InputError
	switch {
	case errors.As(err, &ae):
		code = ae.code
	case errors.As(err, &ie) && ie.TooLarge:
		code = http.StatusRequestEntityTooLarge
	case errors.As(err, &ie):
		code = http.StatusUnprocessableEntity
	case errors.Is(err, errNotFound):
		code = http.StatusNotFound
	}
	msg := err.Error()
	if code == http.StatusInternalServerError {
		s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error"
	}
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (s *Service) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a valid bearer token is required"})
			return
		}
		h(w, r)
	}
}

// maxJSONDepth bounds the nesting of JSON request bodies.
const maxJSONDepth = 32

var (
	shaRE    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

func (s *Service) handleSubmit(w http.ResponseWriter, r *http.Request) {
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "multipart/form-data" || params["boundary"] == "" {
		s.fail(w, r, errorf(http.StatusUnsupportedMediaType, "send multipart/form-data with parts name, artifact and optionally sbom"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxSubmission+MaxSBOM+1<<20)
	mr := multipart.NewReader(r.Body, params["boundary"])
	var name string
	var sbom []byte
	seen := map[string]bool{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			s.fail(w, r, errorf(http.StatusBadRequest, "no artifact part"))
			return
		}
		if err != nil {
			s.fail(w, r, errorf(http.StatusBadRequest, "malformed multipart body: %v", err))
			return
		}
		// A part given twice is ambiguous (which one counts?), as a JSON
		// key given twice: refused, never the last one silently.
		if seen[p.FormName()] {
			s.fail(w, r, errorf(http.StatusBadRequest, "part %q given more than once", p.FormName()))
			return
		}
		seen[p.FormName()] = true
		switch p.FormName() {
		case "name":
			b, err := io.ReadAll(io.LimitReader(p, MaxNameLen+1))
			if err != nil {
				s.fail(w, r, errorf(http.StatusBadRequest, "reading name: %v", err))
				return
			}
			name = string(b)
		case "sbom":
			b, err := io.ReadAll(io.LimitReader(p, MaxSBOM+1))
			if err != nil {
				s.fail(w, r, errorf(http.StatusBadRequest, "reading sbom: %v", err))
				return
			}
			if len(b) > MaxSBOM {
				s.fail(w, r, errorf(http.StatusRequestEntityTooLarge, "SBOM larger than %d bytes", MaxSBOM))
				return
			}
			sbom = b
		case "artifact":
			if name == "" {
				name = p.FileName()
			}
			out, err := s.Submit(r.Context(), name, p, sbom)
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					err = errorf(http.StatusRequestEntityTooLarge, "request larger than %d bytes", mbe.Limit)
				}
				s.fail(w, r, err)
				return
			}
			code := http.StatusCreated
			if out.Reused {
				code = http.StatusOK
			}
			writeJSON(w, code, out)
			return
		default:
			s.fail(w, r, errorf(http.StatusBadRequest, "unknown part %q (want name, sbom, artifact; artifact last)", p.FormName()))
			return
		}
	}
}

func (s *Service) handleArtifact(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha")
	if !shaRE.MatchString(sha) {
		s.fail(w, r, errorf(http.StatusBadRequest, "artifact must be 64 lowercase hex digits"))
		return
	}
	out, err := s.Lookup(r.Context(), sha)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// ArtifactSummary is a line of the artifact list.
type ArtifactSummary struct {
	SHA256  string    `json:"sha256"`
	Name    string    `json:"name"`
	State   string    `json:"state"`
	Current string    `json:"current"`
	Updated time.Time `json:"updated"`
}

func (s *Service) handleListArtifacts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state != "" && state != StateCertified && state != StateRejected && state != StateRevoked {
		s.fail(w, r, errorf(http.StatusBadRequest, "state must be certified, rejected or revoked"))
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.fail(w, r, errorf(http.StatusBadRequest, "limit must be 1..1000"))
			return
		}
		limit = n
	}
	after := q.Get("after")
	if after != "" && !shaRE.MatchString(after) {
		s.fail(w, r, errorf(http.StatusBadRequest, "after must be an artifact sha256"))
		return
	}
	rows, err := s.db.QueryContext(r.Context(), `SELECT sha256, name, state, current, updated FROM artifacts
		WHERE sha256 > ? AND (? = '' OR state = ?) ORDER BY sha256 LIMIT ?`, after, state, state, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rows.Close()
	list := []ArtifactSummary{}
	for rows.Next() {
		var a ArtifactSummary
		var u int64
		if err := rows.Scan(&a.SHA256, &a.Name, &a.State, &a.Current, &u); err != nil {
			s.fail(w, r, err)
			return
		}
		a.Updated = time.Unix(u, 0).UTC()
		list = append(list, a)
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Service) digestParam(w http.ResponseWriter, r *http.Request) (*resultRow, bool) {
	d := r.PathValue("digest")
	if !digestRE.MatchString(d) {
		s.fail(w, r, errorf(http.StatusBadRequest, "digest must be sha256:<64 lowercase hex digits>"))
		return nil, false
	}
	res, err := getResult(r.Context(), s.db, d)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return res, true
}

func (s *Service) handleResult(w http.ResponseWriter, r *http.Request) {
	res, ok := s.digestParam(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(res.Envelope)
}

// Bundle is a result with what an offline verifier needs to check that it
// is in the transparency log: the log entry's kind and a receipt (index,
// signed checkpoint, inclusion proof).
type Bundle struct {
	Envelope json.RawMessage  `json:"envelope"`
	Kind     string           `json:"kind"`
	Receipt  translog.Receipt `json:"receipt"`
}

// Bundle builds a result's bundle against the current checkpoint.
func (s *Service) Bundle(ctx context.Context, digest string) (*Bundle, error) {
	res, err := getResult(ctx, s.db, digest)
	if err != nil {
		return nil, err
	}
	rc, err := s.log.Receipt(ctx, res.LogIndex)
	if err != nil {
		return nil, err
	}
	return &Bundle{Envelope: res.Envelope, Kind: res.Kind, Receipt: rc}, nil
}

func (s *Service) handleBundle(w http.ResponseWriter, r *http.Request) {
	res, ok := s.digestParam(w, r)
	if !ok {
		return
	}
	b, err := s.Bundle(r.Context(), res.Digest)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Service) handleRevocations(w http.ResponseWriter, r *http.Request) {
	data, v, err := s.RevocationList(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", strconv.Quote("v"+strconv.FormatInt(v, 10)))
	if r.Header.Get("If-None-Match") == w.Header().Get("ETag") {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(data)
}

func (s *Service) handleRoot(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.root.Bytes())
}

var rootFileRE = regexp.MustCompile(`^([1-9][0-9]{0,8})\.root\.json$`)

func (s *Service) handleRootVersion(w http.ResponseWriter, r *http.Request) {
	m := rootFileRE.FindStringSubmatch(r.PathValue("file"))
	if m == nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "want N.root.json"))
		return
	}
	data, err := readRootVersion(s.cfg.DataDir, m[1])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(data)
}

// Status is the service's self-description.
type Status struct {
	Verifier     string      `json:"verifier"`
	DBID         string      `json:"db_id"`
	Sources      []SourceRef `json:"sources"`
	PolicyDigest string      `json:"policy_digest"`
	PolicyVer    int         `json:"policy_version"`
	LogSize      int64       `json:"log_size"`
	Revocations  int64       `json:"revocation_list_version"`
	RootVersion  int64       `json:"root_version"`
	LogKey       string      `json:"log_key"`
}

// SourceRef is one vulnerability source.
type SourceRef struct {
	Index   int    `json:"index"`
	Spec    string `json:"spec"`
	ID      string `json:"id"`
	Records int    `json:"records"`
	// Rejected counts malformed records skipped when it was loaded.
	Rejected int `json:"rejected_records"`
}

// Status describes the service.
func (s *Service) Status(ctx context.Context) (*Status, error) {
	s.mu.Lock()
	st := &Status{Verifier: VerifierID + "/" + s.verifier, DBID: s.vdb.ID(), PolicyDigest: s.policy.Digest(),
		PolicyVer: s.policy.Version, RootVersion: s.root.Version()}
	for i, src := range s.vdb.sources {
		st.Sources = append(st.Sources, SourceRef{Index: i, Spec: src.spec, ID: src.db.ID(), Records: src.db.Len(),
			Rejected: len(src.db.Rejected())})
	}
	s.mu.Unlock()
	var err error
	if st.LogSize, err = s.log.Size(ctx); err != nil {
		return nil, err
	}
	if _, st.Revocations, err = s.RevocationList(ctx); err != nil {
		return nil, err
	}
	if st.LogKey, err = s.root.LogVerifierKey(s.cfg.Origin); err != nil {
		return nil, err
	}
	return st, nil
}

func (s *Service) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.Status(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Service) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after int64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.fail(w, r, errorf(http.StatusBadRequest, "after must be a non-negative integer"))
			return
		}
		after = n
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxEventsPerPage {
			s.fail(w, r, errorf(http.StatusBadRequest, "limit must be 1..%d", MaxEventsPerPage))
			return
		}
		limit = n
	}
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > MaxLongPoll {
			s.fail(w, r, errorf(http.StatusBadRequest, "wait must be a duration up to %s", MaxLongPoll))
			return
		}
		wait = d
	}
	evs, err := s.Events(r.Context(), after, limit, wait)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	signed, err := s.signEvents(evs)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, signed)
}

func (s *Service) handleWebhook(w http.ResponseWriter, r *http.Request) {
	var req struct {
		URL   string `json:"url"`
		After int64  `json:"after"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<10))
	if err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "reading body: %v", err))
		return
	}
	if err := strictjson.DecodeUnique(body, &req, maxJSONDepth); err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "malformed JSON: %v", err))
		return
	}
	if req.After < 0 {
		s.fail(w, r, errorf(http.StatusBadRequest, "after must be non-negative"))
		return
	}
	id, err := s.AddWebhook(r.Context(), req.URL, req.After)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]int64{"id": id})
}

func (s *Service) handleUpload(w http.ResponseWriter, r *http.Request) {
	i := 0
	if v := r.URL.Query().Get("source"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.fail(w, r, errorf(http.StatusBadRequest, "source must be an integer index"))
			return
		}
		i = n
	}
	rep, err := s.Upload(r.Context(), i, r.Body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if rep == nil {
		writeJSON(w, http.StatusOK, map[string]string{"result": "unchanged"})
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Service) handlePoll(w http.ResponseWriter, r *http.Request) {
	reps, err := s.Poll(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(reps))
}

// ErrNoTLS is certd asked to serve without a certificate and without an
// explicit permission to serve plain HTTP.
var ErrNoTLS = errors.New("certd: no TLS certificate: pass --tls-cert FILE --tls-key FILE, or --insecure-http to serve plain HTTP on a trusted network only")

// Serve runs the HTTP API on addr (HTTPS with Config.TLSCertFile, or plain
// HTTP when Config.InsecureHTTP allows it) and the background loops until
// ctx ends. Header, body, write and idle times are bounded (httpbound).
func (s *Service) Serve(ctx context.Context, addr string, ready func(addr string)) error {
	var tc *tls.Config
	if s.cfg.TLSCertFile != "" || s.cfg.TLSKeyFile != "" {
		var err error
		if tc, err = tlsutil.ServerConfig(s.cfg.TLSCertFile, s.cfg.TLSKeyFile); err != nil {
			return fmt.Errorf("certd: %w", err)
		}
	} else if !s.cfg.InsecureHTTP {
		return ErrNoTLS
	}
	ln, err := listen(addr)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	go s.Watch(ctx)
	go s.hooks.Run(ctx)
	return httpbound.Serve(ctx, ln, s.Handler(), s.cfg.Timeouts, tc)
}
