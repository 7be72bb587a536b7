package certd

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/ztota/ztota/internal/httpbound"
)

// TestSlowSubmissionBodyIsCutOff performs attack 7 against certd: an
// unauthenticated POST /v1/submissions announcing 1 MB and sending one
// byte every 2 s. The refusal (401) comes at once, and the connection is
// closed after the body bound (2 s here) instead of being held for the
// 15 minutes the whole-request timeout allowed before.
func TestSlowSubmissionBodyIsCutOff(t *testing.T) {
	s := newService(t, sourceDir(t), func(c *Config) {
		c.InsecureHTTP = true
		c.Timeouts = httpbound.Timeouts{Body: 2 * time.Second}
	})
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, "127.0.0.1:0", func(a string) { addrc <- a }) }()
	t.Cleanup(func() { cancel(); <-errc })
	var addr string
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	io.WriteString(conn, "POST /v1/submissions HTTP/1.1\r\nHost: certd\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 1000000\r\n\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			if _, err := conn.Write([]byte("-")); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated submission: %d, want 401", resp.StatusCode)
	}
	_, rerr := br.ReadByte()
	var ne net.Error
	switch {
	case rerr == nil:
		t.Fatal("more data after the answer")
	case errors.As(rerr, &ne) && ne.Timeout():
		t.Fatalf("connection still open %s after the request began", time.Since(start))
	}
	t.Logf("connection closed after %s", time.Since(start).Round(time.Millisecond))
}

// TestCertdRefusesToServeWithoutTLS: no certificate and no InsecureHTTP
// is ErrNoTLS, before anything listens.
func TestCertdRefusesToServeWithoutTLS(t *testing.T) {
	s := newService(t, sourceDir(t), nil)
	err := s.Serve(context.Background(), "127.0.0.1:0", func(string) { t.Error("listening without TLS") })
	if !errors.Is(err, ErrNoTLS) || !regexp.MustCompile(`--tls-cert.*--insecure-http`).MatchString(err.Error()) {
		t.Fatalf("Serve without TLS: %v, want ErrNoTLS", err)
	}
}
