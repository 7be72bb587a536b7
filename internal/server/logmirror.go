package server

// The server mirrors the certifier's transparency-log consistency proofs
// for devices that cannot reach the certifier themselves:
//
//	GET /v1/devices/{device}/log/proof/consistency?old=N&new=M
//
// It fetches the proof from the certifier's log (the --certd service whose
// feed it follows) and passes it on. Nothing in it is trusted because the
// server sent it: the device checks the proof against the checkpoint it
// recorded and the newer one in a receipt signed under its pinned root
// (certverify), so a lying server or log gains nothing but a refusal.
// Proofs between two sizes of an append-only log never change, so the
// answers are cached (bounded) and a fleet refreshing at once costs the
// certifier one request per pair of sizes.

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ztota/ztota/internal/translog"
)

// Bounds of the proof mirror.
const (
	maxLogSize        = 1 << 40 // tree sizes beyond this are refused
	logProofCacheSize = 4096    // (old, new) pairs kept
	logProofTimeout   = 15 * time.Second
)

// logMirror fetches and caches consistency proofs.
type logMirror struct {
	client *translog.Client
	mu     sync.Mutex
	cache  map[[2]int64]tlog.TreeProof
	order  [][2]int64 // insertion order, for eviction
}

// newLogMirror makes the mirror of the followed certifier's log, or nil
// when the server follows no certifier.
func (s *Server) newLogMirror() (*logMirror, error) {
	if s.feed == nil {
		return nil, nil
	}
	key, err := s.feed.root.PinnedLogVerifierKey()
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(key)
	if err != nil {
		return nil, err
	}
	hc := *s.feed.client.HTTP
	hc.Timeout = logProofTimeout
	return &logMirror{
		client: &translog.Client{BaseURL: strings.TrimRight(s.cfg.CertdURL, "/") + "/v1/log", HTTP: &hc, Verifier: v, Timeout: logProofTimeout},
		cache:  map[[2]int64]tlog.TreeProof{},
	}, nil
}

func (m *logMirror) proof(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error) {
	k := [2]int64{oldSize, newSize}
	m.mu.Lock()
	p, ok := m.cache[k]
	m.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := m.client.ConsistencyProof(ctx, oldSize, newSize)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.cache[k]; !ok {
		if len(m.order) >= logProofCacheSize {
			delete(m.cache, m.order[0])
			m.order = m.order[1:]
		}
		m.cache[k] = p
		m.order = append(m.order, k)
	}
	return p, nil
}

// parseTreeSize reads a tree size query parameter.
func parseTreeSize(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" || len(v) > 14 {
		return 0, errorf(http.StatusBadRequest, "%s must be a tree size from 0 to %d", name, int64(maxLogSize))
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > maxLogSize {
		return 0, errorf(http.StatusBadRequest, "%s must be a tree size from 0 to %d", name, int64(maxLogSize))
	}
	return n, nil
}

// handleLogProof: GET /v1/devices/{device}/log/proof/consistency?old=&new=
func (s *Server) handleLogProof(w http.ResponseWriter, r *http.Request) {
	if s.logs == nil {
		s.fail(w, r, errorf(http.StatusNotFound, "this server follows no certifier (--certd): fetch consistency proofs from the certifier's log"))
		return
	}
	oldSize, err := parseTreeSize(r, "old")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	newSize, err := parseTreeSize(r, "new")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if oldSize > newSize {
		s.fail(w, r, errorf(http.StatusBadRequest, "old (%d) must not exceed new (%d)", oldSize, newSize))
		return
	}
	p, err := s.logs.proof(r.Context(), oldSize, newSize)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		s.fail(w, r, errorf(http.StatusBadGateway, "the certifier's log: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, translog.ConsistencyResponse{Old: oldSize, New: newSize, Proof: p})
}
