package translog

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// MaxQueryLength bounds the raw query string the handler parses.
const MaxQueryLength = 256

// Wire forms of the handler's JSON responses.
type (
	// EntryResponse is the body of GET entries/{index}.
	EntryResponse struct {
		Index int64     `json:"index"`
		Kind  string    `json:"kind"`
		Data  []byte    `json:"data"` // base64
		Time  time.Time `json:"time"`
	}
	// InclusionResponse is the body of GET proof/inclusion.
	InclusionResponse struct {
		Index int64       `json:"index"`
		Size  int64       `json:"size"`
		Proof []tlog.Hash `json:"proof"` // base64 hashes
	}
	// ConsistencyResponse is the body of GET proof/consistency.
	ConsistencyResponse struct {
		Old   int64       `json:"old"`
		New   int64       `json:"new"`
		Proof []tlog.Hash `json:"proof"` // base64 hashes
	}
	// ErrorResponse is the body of every 4xx and 5xx answer.
	ErrorResponse struct {
		Error string `json:"error"`
	}
)

// Handler serves the log read-only, relative to where it is mounted:
//
//	GET checkpoint                       the signed checkpoint (text/plain)
//	GET entries/{index}                  one entry (JSON, data in base64)
//	GET proof/inclusion?index=I&size=N   proof entry I is in tree of size N
//	GET proof/consistency?old=M&new=N    proof tree N extends tree M
//
// Numbers are canonical decimals. Malformed input gets 400, entries and
// sizes beyond the log 404, other methods 405, each with a JSON
// {"error": "..."} body.
// Mount it under a prefix with http.StripPrefix.
func (l *Log) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkpoint", l.handleCheckpoint)
	mux.HandleFunc("GET /entries/{index}", l.handleEntry)
	mux.HandleFunc("GET /proof/inclusion", l.handleInclusion)
	mux.HandleFunc("GET /proof/consistency", l.handleConsistency)
	for _, p := range []string{"/checkpoint", "/entries/{index}", "/proof/inclusion", "/proof/consistency"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, ErrorResponse{Error: fmt.Sprintf("method %s not allowed: the log is read with GET", r.Method)})
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: fmt.Sprintf("no such log endpoint %q: use checkpoint, entries/{index}, proof/inclusion or proof/consistency", r.URL.Path)})
	})
	return mux
}

// badRequest is a client error found while parsing a request.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func (l *Log) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	var br *badRequest
	switch {
	case errors.As(err, &br), errors.Is(err, ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	}
	msg := err.Error()
	if code == http.StatusInternalServerError {
		l.log.Error("translog request failed", "path", r.URL.Path, "err", err)
		msg = "internal error"
	}
	writeJSON(w, code, ErrorResponse{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// queryInts parses exactly the named query parameters, each once, as
// canonical decimals. Unknown or repeated parameters are refused.
func queryInts(r *http.Request, names ...string) ([]int64, error) {
	if len(r.URL.RawQuery) > MaxQueryLength {
		return nil, &badRequest{fmt.Sprintf("query longer than %d bytes", MaxQueryLength)}
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, &badRequest{fmt.Sprintf("malformed query: %v", err)}
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for k := range q {
		if !want[k] {
			return nil, &badRequest{fmt.Sprintf("unknown query parameter %q", k)}
		}
	}
	out := make([]int64, len(names))
	for i, n := range names {
		vs := q[n]
		if len(vs) == 0 {
			return nil, &badRequest{fmt.Sprintf("missing query parameter %q", n)}
		}
		if len(vs) > 1 {
			return nil, &badRequest{fmt.Sprintf("query parameter %q given %d times", n, len(vs))}
		}
		v, err := parseDecimal(vs[0])
		if err != nil {
			return nil, &badRequest{fmt.Sprintf("query parameter %q: %v", n, err)}
		}
		out[i] = v
	}
	return out, nil
}

func (l *Log) handleCheckpoint(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "" {
		l.fail(w, r, &badRequest{"checkpoint takes no query parameters"})
		return
	}
	signed, err := l.Checkpoint(r.Context())
	if err != nil {
		l.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(signed)
}

func (l *Log) handleEntry(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "" {
		l.fail(w, r, &badRequest{"entries take no query parameters"})
		return
	}
	index, err := parseDecimal(r.PathValue("index"))
	if err != nil {
		l.fail(w, r, &badRequest{fmt.Sprintf("entry index: %v", err)})
		return
	}
	e, err := l.Entry(r.Context(), index)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, EntryResponse{Index: e.Index, Kind: e.Kind, Data: e.Data, Time: e.Time})
}

func (l *Log) handleInclusion(w http.ResponseWriter, r *http.Request) {
	v, err := queryInts(r, "index", "size")
	if err != nil {
		l.fail(w, r, err)
		return
	}
	p, err := l.InclusionProof(r.Context(), v[0], v[1])
	if err != nil {
		l.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, InclusionResponse{Index: v[0], Size: v[1], Proof: nonNil(p)})
}

func (l *Log) handleConsistency(w http.ResponseWriter, r *http.Request) {
	v, err := queryInts(r, "old", "new")
	if err != nil {
		l.fail(w, r, err)
		return
	}
	p, err := l.ConsistencyProof(r.Context(), v[0], v[1])
	if err != nil {
		l.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ConsistencyResponse{Old: v[0], New: v[1], Proof: nonNil(p)})
}

// nonNil makes an empty proof encode as [] rather than null.
func nonNil(p []tlog.Hash) []tlog.Hash {
	if p == nil {
		return []tlog.Hash{}
	}
	return p
}
