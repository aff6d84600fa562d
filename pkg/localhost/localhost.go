// Package localhost dials "localhost" and "*.localhost" names on loopback, as
// RFC 6761 §6.3 says resolvers should; Go's own resolver does not, so without it
// a Go client cannot reach http://domain.localhost:8080 on a machine with no
// hosts entries.
package localhost

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"
)

// IsLocal reports whether host (no port) is "localhost" or a name under ".localhost".
func IsLocal(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// DialContext is a net.Dialer's DialContext that sends *.localhost names to
// 127.0.0.1 (then ::1) and every other address to the ordinary dialer.
func DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if d == nil {
		d = &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || !IsLocal(host) {
			return d.DialContext(ctx, network, addr)
		}
		conn, err := d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		if err == nil {
			return conn, nil
		}
		if c6, err6 := d.DialContext(ctx, network, net.JoinHostPort("::1", port)); err6 == nil {
			return c6, nil
		}
		return nil, err
	}
}

// Transport returns a clone of http.DefaultTransport that dials *.localhost on loopback.
func Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = DialContext(nil)
	return t
}

// Client returns an HTTP client with Transport and the given timeout.
func Client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: Transport(), Timeout: timeout}
}
