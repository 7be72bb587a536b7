package mitm

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestProxyRecordsRewritesAndAnswers(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write([]byte("upstream:" + r.URL.Path + ":" + string(b)))
	}))
	defer up.Close()
	p := Start(t, up.URL)
	get := func(path, body string) (int, string) {
		t.Helper()
		resp, err := http.Post(p.URL+path, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, got := get("/a", "x"); code != 200 || got != "upstream:/a:x" {
		t.Fatalf("forward: %d %q", code, got)
	}
	p.OnRequest(func(r *http.Request, body []byte) ([]byte, *Answer) {
		if r.URL.Path == "/held" {
			return nil, &Answer{Status: http.StatusNotFound, Body: []byte("withheld")}
		}
		return []byte("rewritten"), nil
	})
	p.OnResponse(func(ex *Exchange) { ex.RespBody = append(ex.RespBody, '!') })
	if code, got := get("/b", "x"); code != 200 || got != "upstream:/b:rewritten!" {
		t.Fatalf("rewrite: %d %q", code, got)
	}
	if code, got := get("/held", "x"); code != 404 || got != "withheld!" {
		t.Fatalf("answer: %d %q", code, got)
	}
	if n := len(p.Log()); n != 3 {
		t.Fatalf("recorded %d exchanges, want 3", n)
	}
	if ex, ok := p.Last("/b"); !ok || string(ex.ReqBody) != "rewritten" {
		t.Fatalf("last /b: %v %q", ok, ex.ReqBody)
	}
}
