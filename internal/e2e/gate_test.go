package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/enroll"
	"github.com/ztota/ztota/internal/keyset"
	"github.com/ztota/ztota/internal/tlsutil"
	"github.com/ztota/ztota/internal/vulnfixture"
)

// TestReleaseGateRealProcesses runs a real certd and a real server that
// pins certd's root, and drives them with the CLI only: 'release --certd'
// of a vulnerable program fails with exit 3 naming the advisory and
// publishes nothing; a clean one is released with its certificate and
// deployed; once a newer vulnerability snapshot revokes it, 'revocations
// push --from-certd' brings the signed list to the server and the next
// deployment is refused naming the advisory.
func TestReleaseGateRealProcesses(t *testing.T) {
	needBinary(t)
	osv, err := vulnfixture.FindOSVData()
	if err != nil {
		t.Skipf("SKIPPING: real OSV data not available: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	progs, err := vulnfixture.Build(ctx, vulnfixture.DefaultCacheDir())
	if err != nil {
		t.Fatal(err)
	}
	path := map[string]string{}
	for _, p := range progs {
		path[p.Name] = p.Path
	}

	s := &stack{dir: t.TempDir()}
	s.keys = filepath.Join(s.dir, "keys")
	ztota(t, "keys", "init", "--out", s.keys)
	s.online = filepath.Join(s.keys, keyset.OnlineDir)
	s.data = filepath.Join(s.dir, "server")
	ca, cert, key := keyset.TLSFiles(s.online)
	s.ca = ca

	src := filepath.Join(s.dir, "go-all.zip")
	copyInto(t, filepath.Join(osv, vulnfixture.Snapshot20250101+".zip"), src)
	cdata := filepath.Join(s.dir, "certd")
	cd := startProc(t, "certd", baseEnv(), "certd", "--data", cdata, "--osv", src,
		"--listen", "127.0.0.1:0", "--watch", "200ms", "--tls-cert", cert, "--tls-key", key)
	caddr := cd.waitLine(regexp.MustCompile(`certification service listening" addr=(\S+)`), 60*time.Second)[1]
	certd := []string{"--certd", "https://" + caddr, "--certd-ca", ca, "--certd-token-file", filepath.Join(cdata, "admin.token")}

	// The server pins certd's root (here read from certd's directory; in
	// the field it is handed over out of band).
	s.srv = startProc(t, "server", baseEnv(), "server", "--data", s.data, "--keys", s.online, "--listen", "127.0.0.1:0",
		"--certifier-root", filepath.Join(cdata, "keys", "root.json"))
	s.addr = s.srv.waitLine(regexp.MustCompile(`msg=serving addr=(\S+) scheme=https `), 30*time.Second)[1]
	s.url = "https://" + s.addr
	s.api = []string{"--server", s.url, "--token-file", filepath.Join(s.data, "admin.token"), "--ca", s.ca}

	rel := func(name, version string, counter string) (string, string, int) {
		return ztotaExit(t, append(append([]string{"release", path[name], "--name", name, "--version", version, "--counter", counter,
			"--hardware", "board-a", "--keys", s.keys}, certd...), s.api...)...)
	}
	out, errOut, code := rel("textold", "1.0", "1")
	if code != 3 || !strings.Contains(out, "GO-2021-0113") || !strings.Contains(errOut, "release refused") {
		t.Fatalf("release of a vulnerable program: exit %d, want 3 naming GO-2021-0113\n%s%s", code, out, errOut)
	}
	admin := s.admin(t)
	if rels, err := admin.Releases(ctx); err != nil || len(rels) != 0 {
		t.Fatalf("a rejected release was published: %+v %v", rels, err)
	}
	out, errOut, code = rel("recent", "1.0", "1")
	if code != 0 || !strings.Contains(out, "certified by the certifier") || !strings.Contains(out, "certificate sha256:") {
		t.Fatalf("release of a clean program: exit %d\n%s%s", code, out, errOut)
	}
	target := releasedLine.FindStringSubmatch(out)[1]

	// A device, enrolled over HTTPS.
	tok, err := admin.EnrollToken(ctx, "fleet", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	body, _ := json.Marshal(enroll.NewRequest(tok, "dev-1", "board-a", pub))
	tr, err := tlsutil.Transport(s.ca)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Post(s.url+"/v1/enroll", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("enrolling: %d", resp.StatusCode)
	}

	out = ztota(t, append([]string{"deploy", target, "--devices", "dev-1"}, s.api...)...)
	if !strings.Contains(out, "certified: certificate sha256:") {
		t.Fatalf("deploy of the certified release says %q", out)
	}
	ztota(t, append([]string{"deploy", "halt", strings.Fields(out)[1]}, s.api...)...)

	// The watched source moves to 2025-07-01: certd revokes "recent".
	copyInto(t, filepath.Join(osv, vulnfixture.Snapshot20250701+".zip"), src)
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := ztota(t, "cert", "show", path["recent"], "--certd", "https://"+caddr, "--ca", ca)
		if strings.Contains(out, "state      revoked") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recent not revoked after the source changed:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Until the server has the list, it does not know; then it refuses.
	out = ztota(t, append([]string{"revocations", "push", "--from-certd", "https://" + caddr, "--certd-ca", ca}, s.api...)...)
	if !strings.Contains(out, "stored") {
		t.Fatalf("revocations push: %q", out)
	}
	out, errOut, code = ztotaExit(t, append([]string{"deploy", target, "--devices", "dev-1"}, s.api...)...)
	if code != 1 || !strings.Contains(errOut, "409") || !strings.Contains(errOut, "certificate revoked") || !strings.Contains(errOut, "GO-2025-3553") {
		t.Fatalf("deploy of the revoked release: exit %d, want 409 naming GO-2025-3553\n%s%s", code, out, errOut)
	}
}
