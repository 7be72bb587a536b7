package certd

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSubmissionWithARepeatedPartIsRefused performs the multipart
// counterpart of duplicate JSON keys: a submission naming the artifact
// twice ("name" then "name") or carrying two SBOMs. Which one counts was
// the last one, silently; now the submission is refused with 400 naming
// the repeated part, and nothing is stored.
func TestSubmissionWithARepeatedPartIsRefused(t *testing.T) {
	s := newService(t, sourceDir(t), nil)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	before := stateCounts(t, s)
	for name, parts := range map[string][][2]string{
		"name twice": {{"name", "one"}, {"name", "other"}, {"artifact", string(dpkgStatus("liba=1.0"))}},
		"sbom twice": {{"name", "one"}, {"sbom", "{}"}, {"sbom", "{}"}, {"artifact", string(dpkgStatus("liba=1.0"))}},
	} {
		ct, body := multipartBody(t, parts)
		req, _ := http.NewRequest("POST", srv.URL+"/v1/submissions", body)
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+s.Token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error, "more than once") {
			t.Errorf("%s: %d %q, want 400 naming the repeated part", name, resp.StatusCode, e.Error)
		}
	}
	if after := stateCounts(t, s); after != before {
		t.Fatalf("state changed by refused submissions: %+v -> %+v", before, after)
	}
}
