package apiclient

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestUnknownCAErrorSaysToPassTheCA performs what a new operator does
// first against a server of 'ztota keys init': an https:// URL without
// --ca, then http:// against the TLS port. The first error is still an
// x509.UnknownAuthorityError and names --ca; the second says to use
// https:// (it used to be the server's bare 400 text).
func TestUnknownCAErrorSaysToPassTheCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("[]"))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := New(srv.URL, "tok").Devices(ctx, "")
	var ua x509.UnknownAuthorityError
	if !errors.As(err, &ua) {
		t.Fatalf("error %v, want an x509.UnknownAuthorityError", err)
	}
	if !strings.Contains(err.Error(), "--ca") {
		t.Errorf("error %q does not say to pass --ca", err)
	}

	_, err = New("http://"+strings.TrimPrefix(srv.URL, "https://"), "tok").Devices(ctx, "")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Fatalf("plain http to the TLS port: %v, want a 400 APIError", err)
	}
	if !strings.Contains(err.Error(), "use an https:// URL") {
		t.Errorf("error %q does not say to use https://", err)
	}
}
