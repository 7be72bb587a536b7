package certd

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Errors about vulnerability sources given as URLs.
var (
	// ErrInsecureSource is a plain-http source without a pinned digest:
	// anyone on the path could replace the snapshot and make the service
	// certify vulnerable artifacts.
	ErrInsecureSource = errors.New("vulnerability source must be https, or http with a pinned #sha256=<hex> digest")
	// ErrSourceDigest is a fetched snapshot whose sha256 is not the pinned one.
	ErrSourceDigest = errors.New("vulnerability source snapshot does not match its pinned sha256")
)

// sourceURL is a vulnerability source given as a URL: https, or any
// http(s) URL with a fragment "#sha256=<64 hex>" pinning the snapshot's
// digest (the fragment is never sent to the server).
type sourceURL struct {
	fetch string // the URL to GET, without the fragment
	pin   string // hex sha256 the body must have; "" for none
}

// parseSourceURL checks a URL source spec.
func parseSourceURL(spec string) (sourceURL, error) {
	u, err := url.Parse(spec)
	if err != nil {
		return sourceURL{}, fmt.Errorf("vulnerability source %q: %v", spec, err)
	}
	if u.Host == "" || u.User != nil {
		return sourceURL{}, fmt.Errorf("vulnerability source %q: a URL needs a host and no user information", spec)
	}
	var s sourceURL
	if u.Fragment != "" {
		pin, ok := strings.CutPrefix(u.Fragment, "sha256=")
		if _, err := hex.DecodeString(pin); !ok || err != nil || len(pin) != 64 || strings.ToLower(pin) != pin {
			return sourceURL{}, fmt.Errorf("vulnerability source %q: the fragment must be sha256=<64 lower-case hex digits>", spec)
		}
		s.pin = pin
	}
	switch u.Scheme {
	case "https":
	case "http":
		if s.pin == "" {
			return sourceURL{}, fmt.Errorf("%w: %s", ErrInsecureSource, spec)
		}
	default:
		return sourceURL{}, fmt.Errorf("vulnerability source %q: scheme %q is not http(s)", spec, u.Scheme)
	}
	u.Fragment, u.RawFragment = "", ""
	s.fetch = u.String()
	return s, nil
}

// checkSources refuses, before anything is loaded, URL sources that are
// neither https nor pinned.
func checkSources(specs []string) error {
	for _, spec := range specs {
		if isURL(spec) {
			if _, err := parseSourceURL(spec); err != nil {
				return fmt.Errorf("certd: %w", err)
			}
		}
	}
	return nil
}

// sourceClient returns the HTTP client for URL sources: the configured one
// (or a default one) that refuses to follow a redirect away from https
// unless the snapshot is pinned by digest.
func sourceClient(base *http.Client, src sourceURL) *http.Client {
	c := &http.Client{}
	if base != nil {
		*c = *base
	}
	prev := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if src.pin == "" && req.URL.Scheme != "https" {
			return fmt.Errorf("%w: redirected to %s", ErrInsecureSource, req.URL.Redacted())
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if prev != nil {
			return prev(req, via)
		}
		return nil
	}
	return c
}
