package server_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestTokenNameWithTerminalControlsIsRefused performs a hostile token
// name: C1 controls (U+009B is the 8-bit CSI that starts a terminal escape
// sequence), a right-to-left override that makes 'ztota token list' show
// another text than the one stored, and a zero-width space. Each is 400
// and no token is made; names used to be checked for C0 controls only.
func TestTokenNameWithTerminalControlsIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	for name, bad := range map[string]string{
		"8-bit CSI":          "ops\u009b2J",
		"right-to-left mark": "ops \u202egnp.exe",
		"zero-width space":   "ad\u200bmin",
	} {
		body, _ := json.Marshal(map[string]string{"scope": "viewer", "name": bad})
		a := e.api(t, "POST", "/v1/tokens", body)
		wantRefused(t, name, a, http.StatusBadRequest)
	}
	body, _ := json.Marshal(map[string]string{"scope": "viewer", "name": "Jörg's laptop – CI"})
	if a := e.api(t, "POST", "/v1/tokens", body); a.code != http.StatusCreated {
		t.Fatalf("a plain non-ASCII name: %s", a)
	}
}
