package translog_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/translog"
)

func TestHandlerServesTheLogAndRefusesBadInput(t *testing.T) {
	ctx := testCtx(t)
	k := newKey(t, testOrigin)
	db := openDB(t, "")
	l := newLog(t, db, k)
	var recs []rec
	for i := 0; i < 5; i++ {
		recs = append(recs, mkRec("h", i))
	}
	appendAll(t, ctx, l, db, recs, 5)
	h := l.Handler()
	do := func(method, target string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
		return w
	}

	w := do("GET", "/checkpoint")
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("checkpoint: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	cp, err := translog.VerifyCheckpoint(w.Body.Bytes(), k.verifier)
	if err != nil || cp.Size != 5 {
		t.Fatalf("served checkpoint: %+v %v", cp, err)
	}

	w = do("GET", "/entries/3")
	var e translog.EntryResponse
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Index != 3 || e.Kind != recs[3].kind || string(e.Data) != string(recs[3].data) {
		t.Fatalf("entry: %d %s", w.Code, w.Body)
	}

	w = do("GET", "/proof/inclusion?index=2&size=4")
	var ip translog.InclusionResponse
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &ip) != nil || ip.Index != 2 || ip.Size != 4 {
		t.Fatalf("inclusion: %d %s", w.Code, w.Body)
	}
	h4, _ := l.TreeHash(ctx, 4)
	if err := translog.VerifyInclusion(translog.Checkpoint{Origin: testOrigin, Size: 4, Hash: h4}, 2, recs[2].kind, recs[2].data, ip.Proof); err != nil {
		t.Fatalf("served inclusion proof: %v", err)
	}

	w = do("GET", "/proof/consistency?old=0&new=5")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"proof":[]`) {
		t.Fatalf("consistency from empty: %d %s", w.Code, w.Body)
	}

	cases := []struct {
		method, target string
		code           int
		msg            string
	}{
		{"GET", "/entries/abc", 400, "not a decimal number"},
		{"GET", "/entries/-1", 400, "not a decimal number"},
		{"GET", "/entries/007", 400, "leading zeros"},
		{"GET", "/entries/99999999999999999999", 400, "longer than 19 digits"},
		{"GET", "/entries/9999999999999999999", 400, "out of range"},
		{"GET", "/entries/9223372036854775807", 404, "not found"},
		{"GET", "/entries/5", 404, "entry 5: not found (log size 5)"},
		{"GET", "/entries/3?x=1", 400, "no query parameters"},
		{"GET", "/checkpoint?x=1", 400, "no query parameters"},
		{"GET", "/proof/inclusion", 400, `missing query parameter "index"`},
		{"GET", "/proof/inclusion?index=1", 400, `missing query parameter "size"`},
		{"GET", "/proof/inclusion?index=1&size=2&size=3", 400, "given 2 times"},
		{"GET", "/proof/inclusion?index=1&size=2&extra=1", 400, `unknown query parameter "extra"`},
		{"GET", "/proof/inclusion?index=5&size=5", 400, "index 5 is not in a tree of size 5"},
		{"GET", "/proof/inclusion?index=0&size=0", 400, "not in a tree of size 0"},
		{"GET", "/proof/inclusion?index=0&size=6", 404, "tree size 6 is beyond the log's size 5"},
		{"GET", "/proof/inclusion?index=0&size=0x10", 400, "not a decimal number"},
		{"GET", "/proof/inclusion?index=%zz&size=1", 400, "malformed query"},
		{"GET", "/proof/inclusion?index=1&size=2&pad=" + strings.Repeat("a", translog.MaxQueryLength), 400, "query longer than"},
		{"GET", "/proof/consistency?old=5&new=3", 400, "old size 5 must be between 0 and new size 3"},
		{"GET", "/proof/consistency?old=1&new=6", 404, "beyond the log's size 5"},
		{"GET", "/proof/consistency?old=1", 400, `missing query parameter "new"`},
		{"GET", "/nope", 404, "no such log endpoint"},
		{"GET", "/entries/", 404, "no such log endpoint"},
		{"POST", "/checkpoint", 405, "method POST not allowed"},
		{"DELETE", "/entries/1", 405, "method DELETE not allowed"},
	}
	for _, c := range cases {
		w := do(c.method, c.target)
		if w.Code != c.code {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.target, w.Code, w.Body, c.code)
			continue
		}
		if c.msg == "" {
			continue
		}
		var er translog.ErrorResponse
		if err := json.Unmarshal(w.Body.Bytes(), &er); err != nil || !strings.Contains(er.Error, c.msg) {
			t.Errorf("%s %s: body %s, want an error containing %q", c.method, c.target, w.Body, c.msg)
		}
	}
}

func TestHandlerHidesInternalErrors(t *testing.T) {
	k := newKey(t, testOrigin)
	db := openDB(t, "")
	l := newLog(t, db, k)
	l.SetLogger(slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	db.Close() // every query now fails inside the server
	resp, err := http.Get(srv.URL + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 500 || !strings.Contains(string(body), "internal error") || strings.Contains(string(body), "sql") {
		t.Fatalf("closed database: %d %s", resp.StatusCode, body)
	}
}
