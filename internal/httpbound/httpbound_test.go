package httpbound

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func serve(t *testing.T, to Timeouts, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := Server(Handler(to, h), to, nil)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestHandlerOutlivesTheBodyDeadline: once the body is read, the body
// deadline is lifted; a handler that works past it (here 3 times the
// bound) keeps its context and its answer reaches the client. A request
// without a body gets no read deadline at all.
func TestHandlerOutlivesTheBodyDeadline(t *testing.T) {
	const bound = 200 * time.Millisecond
	url := serve(t, Timeouts{Body: bound}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		select {
		case <-r.Context().Done():
			http.Error(w, "cancelled", 500)
			return
		case <-time.After(3 * bound):
		}
		w.Write(body)
	}))
	for _, method := range []string{"POST", "GET"} {
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader("payload")
		}
		req, _ := http.NewRequest(method, url, body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := ""
		if method == "POST" {
			want = "payload"
		}
		if resp.StatusCode != 200 || string(got) != want {
			t.Fatalf("%s: %d %q, want 200 %q", method, resp.StatusCode, got, want)
		}
	}
}

// TestStalledReaderIsCutOff: a client that asks for a large answer and
// never reads it does not hold the handler past WriteIdle.
func TestStalledReaderIsCutOff(t *testing.T) {
	done := make(chan error, 1)
	url := serve(t, Timeouts{WriteIdle: 300 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for i := 0; i < 4096; i++ { // 256 MiB: far more than socket buffers
			if _, err := w.Write(chunk); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}))
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-done:
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("handler write to a stalled reader: %v, want a timeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the handler is still writing to a client that reads nothing after 30 s")
	}
}
