// Package mitm is a man-in-the-middle HTTP proxy for attack tests: it
// stands between a real agent process and a real server process (or any
// HTTP client and server), records every exchange, and lets a test read,
// replay, rewrite or withhold requests and responses. It is test
// infrastructure; nothing in the product imports it.
//
// A Proxy forwards to one upstream base URL. Hooks run in order for each
// request: Request may rewrite the request (its body already read into
// Exchange.ReqBody) or answer it itself; Response may rewrite the
// upstream's answer. Every exchange is recorded (bodies bounded) so that a
// test can replay what another device was sent.
package mitm

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// maxBody bounds what the proxy buffers per request or response.
const maxBody = 64 << 20

// Exchange is one request and its answer as the proxy saw them.
type Exchange struct {
	Method     string
	Path       string // request URI as received (path and raw query)
	ReqHeader  http.Header
	ReqBody    []byte
	Status     int
	RespHeader http.Header
	RespBody   []byte
}

// Answer is a response a hook makes up instead of asking upstream.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Proxy is a running man in the middle.
type Proxy struct {
	// URL is the proxy's base URL (give it to the client instead of the
	// server's).
	URL      string
	upstream *url.URL
	srv      *http.Server
	ln       net.Listener

	mu       sync.Mutex
	log      []Exchange
	request  func(r *http.Request, body []byte) (newBody []byte, answer *Answer)
	response func(ex *Exchange)
}

// Start starts a proxy to upstream on a loopback port; it stops when the
// test ends.
func Start(t testing.TB, upstream string) *Proxy {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{URL: "http://" + ln.Addr().String(), upstream: u, ln: ln}
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

// OnRequest sets the request hook: it may return a replacement body, or an
// answer that is sent without asking upstream (nil: forward).
func (p *Proxy) OnRequest(f func(r *http.Request, body []byte) (newBody []byte, answer *Answer)) {
	p.mu.Lock()
	p.request = f
	p.mu.Unlock()
}

// OnResponse sets the response hook: it may change ex.Status,
// ex.RespHeader and ex.RespBody before they are sent to the client.
func (p *Proxy) OnResponse(f func(ex *Exchange)) {
	p.mu.Lock()
	p.response = f
	p.mu.Unlock()
}

// Log returns a copy of the recorded exchanges.
func (p *Proxy) Log() []Exchange {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Exchange(nil), p.log...)
}

// Last returns the last recorded exchange whose path has the given prefix
// and whose status is 200, and whether there is one.
func (p *Proxy) Last(pathPrefix string) (Exchange, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.log) - 1; i >= 0; i-- {
		if strings.HasPrefix(p.log[i].Path, pathPrefix) && p.log[i].Status == http.StatusOK {
			return p.log[i], true
		}
	}
	return Exchange{}, false
}

var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// ServeHTTP forwards one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	p.mu.Lock()
	reqHook, respHook := p.request, p.response
	p.mu.Unlock()
	ex := Exchange{Method: r.Method, Path: r.RequestURI, ReqHeader: r.Header.Clone(), ReqBody: body}
	var answer *Answer
	if reqHook != nil {
		var nb []byte
		nb, answer = reqHook(r, body)
		if nb != nil {
			body = nb
			ex.ReqBody = nb
		}
	}
	if answer != nil {
		ex.Status, ex.RespHeader, ex.RespBody = answer.Status, answer.Header, answer.Body
		if ex.RespHeader == nil {
			ex.RespHeader = http.Header{}
		}
	} else {
		out, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream.Scheme+"://"+p.upstream.Host+r.RequestURI, bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out.Header = r.Header.Clone()
		for _, h := range hopHeaders {
			out.Header.Del(h)
		}
		out.ContentLength = int64(len(body))
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		rb, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		ex.Status, ex.RespHeader, ex.RespBody = resp.StatusCode, resp.Header.Clone(), rb
	}
	if respHook != nil {
		respHook(&ex)
	}
	p.mu.Lock()
	p.log = append(p.log, ex)
	p.mu.Unlock()
	for k, vs := range ex.RespHeader {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(ex.Status)
	w.Write(ex.RespBody)
}
