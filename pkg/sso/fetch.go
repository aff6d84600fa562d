package sso

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// fetchTimeout bounds one fetch whatever the HTTP client's own timeout.
const fetchTimeout = 30 * time.Second

// fetchResult is one conditional GET of a JSON document from the issuer.
type fetchResult struct {
	body        []byte
	etag        string
	notModified bool
	maxAge      time.Duration // -1 when the response gave none
}

// fetchJSON GETs url with If-None-Match: etag (when set) and returns the body
// of a 200, or notModified for a 304. Every other outcome is an error, so the
// caller keeps what it had: an error status, an HTML error page from a proxy,
// a body over limit bytes, or one cut short (the transport reports a body
// shorter than its Content-Length as an error).
func fetchJSON(ctx context.Context, client *http.Client, url, etag string, limit int64) (*fetchResult, error) {
	// Callers may share one fetch (the unknown-kid refetch): a client without
	// a timeout must not leave them all waiting on a stuck issuer.
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	res := &fetchResult{etag: resp.Header.Get("ETag"), maxAge: maxAge(resp.Header)}
	switch {
	case resp.StatusCode == http.StatusNotModified && etag != "":
		res.notModified = true
		if res.etag == "" {
			res.etag = etag
		}
		return res, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: status %s", url, resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" {
		// A captive portal or a proxy's error page; say so rather than "invalid JSON".
		return nil, fmt.Errorf("GET %s: got an HTML page, not JSON", url)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading body: %w", url, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("GET %s: body over %d bytes", url, limit)
	}
	res.body = body
	return res, nil
}

// maxAge reads Cache-Control's max-age; no-store and no-cache mean 0, and
// -1 means the header gave no lifetime.
func maxAge(h http.Header) time.Duration {
	age := time.Duration(-1)
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			switch {
			case d == "no-store" || d == "no-cache":
				return 0
			case strings.HasPrefix(d, "max-age="):
				n, err := strconv.ParseInt(strings.Trim(d[len("max-age="):], `"`), 10, 64)
				if err == nil && n >= 0 && n < 1<<31 {
					age = time.Duration(n) * time.Second
				}
			}
		}
	}
	return age
}

// errClosed is returned to callers waiting on a fetch when the owner stops.
var errClosed = errors.New("sso: stopped")
