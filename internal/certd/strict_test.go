package certd

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestWebhookBodyWithKeysDifferingInCaseIsRefused performs attack 9 of
// issue 6 against certd: a webhook registration whose body names "url"
// twice, once as "URL". The old handler decoded it with encoding/json,
// which kept the last variant and registered it (201); the OTA server
// already refused such bodies. Now both go through strictjson.DecodeUnique
// and certd answers 400 without registering any hook.
func TestWebhookBodyWithKeysDifferingInCaseIsRefused(t *testing.T) {
	s := newService(t, sourceDir(t), nil)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	post := func(body string) (int, string) {
		r, _ := http.NewRequest("POST", srv.URL+"/v1/webhooks", bytes.NewReader([]byte(body)))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+s.Token())
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error
	}
	hooks := func() int {
		var n int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM webhooks`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, body := range []string{
		`{"url":"http://a.example/hook","URL":"http://b.example/hook"}`,
		`{"URL":"http://b.example/hook","url":"http://a.example/hook"}`,
		`{"url":"http://a.example/hook","after":0,"After":5}`,
	} {
		code, msg := post(body)
		if code != http.StatusBadRequest {
			t.Errorf("%s: status %d (%s), want 400", body, code, msg)
		}
		if !bytes.Contains([]byte(msg), []byte("duplicate")) {
			t.Errorf("%s: error %q does not name the duplicate key", body, msg)
		}
	}
	if n := hooks(); n != 0 {
		t.Fatalf("%d webhooks registered from refused bodies", n)
	}
	if code, msg := post(`{"url":"http://a.example/hook"}`); code != http.StatusCreated {
		t.Fatalf("a plain body: %d %s", code, msg)
	}
	if n := hooks(); n != 1 {
		t.Fatalf("%d webhooks after one registration", n)
	}
}
