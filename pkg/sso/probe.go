package sso

import (
	"context"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Probe timings: short enough that an expired navigation never waits long on
// a dead issuer, cached long enough that an outage costs one probe per few
// seconds, not one per request.
const (
	probeTimeout = 2 * time.Second
	probeTTL     = 5 * time.Second
)

// issuerProbe answers "is the issuer down?" with a cached GET of its /healthz.
// It is asked only when an expired session is about to be redirected there.
type issuerProbe struct {
	client *http.Client
	url    string
	now    func() time.Time
	group  singleflight.Group

	mu      sync.Mutex
	checked time.Time
	isDown  bool
}

func newIssuerProbe(client *http.Client, healthURL string, now func() time.Time) *issuerProbe {
	return &issuerProbe{client: client, url: healthURL, now: now}
}

// down reports whether the issuer failed its last health check.
func (p *issuerProbe) down() bool {
	p.mu.Lock()
	if !p.checked.IsZero() && p.now().Sub(p.checked) < probeTTL {
		d := p.isDown
		p.mu.Unlock()
		return d
	}
	p.mu.Unlock()
	v, _, _ := p.group.Do("probe", func() (any, error) {
		d := !p.healthy()
		p.mu.Lock()
		p.checked, p.isDown = p.now(), d
		p.mu.Unlock()
		return d, nil
	})
	return v.(bool)
}

func (p *issuerProbe) healthy() bool {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return false
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode < 500
}
