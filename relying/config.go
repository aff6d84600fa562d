package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
	"github.com/canopy-sso/canopy/relying/policy"
	"github.com/canopy-sso/canopy/relying/site"
)

// readPolicy reads and parses a policy file.
func readPolicy(name string) (*policy.Policy, error) {
	data, err := readFile(name)
	if err != nil {
		return nil, err
	}
	return policy.Parse(name, data)
}

func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	defer f.Close()
	// One byte over the limit, so that Parse reports the size.
	data, err := io.ReadAll(io.LimitReader(f, policy.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	return data, nil
}

// checkPolicy prints what a valid policy serves, and warnings, for
// `relying check`.
func checkPolicy(ctx context.Context, name string, p *policy.Policy, stdout io.Writer) int {
	fmt.Fprintf(stdout, "%s: ok: %d host(s), issuer(s) %s\n", name, len(p.Hosts), strings.Join(p.Issuers(), " "))
	for _, h := range p.Hosts {
		what := "relying's page and forward auth"
		if h.Upstream != nil {
			what = "proxy to " + h.Upstream.String()
		}
		fmt.Fprintf(stdout, "  line %d: %s: %s\n", h.Line, h.Pattern, what)
	}
	for _, w := range upstreamWarnings(ctx, p) {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	return 0
}

// upstreamWarnings names every upstream that does not accept a connection
// yet: a warning, not an error, as apps may start after relying.
func upstreamWarnings(ctx context.Context, p *policy.Policy) []string {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = make([]string, len(p.Hosts))
	)
	for i, h := range p.Hosts {
		if h.Upstream == nil {
			continue
		}
		wg.Go(func() {
			addr := h.Upstream.Host
			if h.Upstream.Port() == "" {
				port := "80"
				if h.Upstream.Scheme == "https" {
					port = "443"
				}
				addr = net.JoinHostPort(h.Upstream.Hostname(), port)
			}
			d := net.Dialer{Timeout: 2 * time.Second}
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				mu.Lock()
				out[i] = fmt.Sprintf("line %d: upstream %s of %s does not answer yet: %v", h.Line, h.Upstream, h.Pattern, err)
				mu.Unlock()
				return
			}
			_ = conn.Close()
		})
	}
	wg.Wait()
	var warnings []string
	for _, w := range out {
		if w != "" {
			warnings = append(warnings, w)
		}
	}
	return warnings
}

func warnUpstreams(ctx context.Context, p *policy.Policy, log *slog.Logger) {
	go func() {
		for _, w := range upstreamWarnings(ctx, p) {
			log.Warn("policy: " + w)
		}
	}()
}

// watchPolicy reloads the policy file on SIGHUP and when its size or
// modification time changes (checked every poll; 0 is never). A file that
// cannot be read or parsed leaves the running policy in place.
func watchPolicy(ctx context.Context, name string, poll time.Duration, rt *site.Router, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if poll > 0 {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
	last, _ := readFile(name)
	stamp := statStamp(name)
	for {
		var why string
		select {
		case <-ctx.Done():
			return
		case <-hup:
			why = "SIGHUP"
		case <-tick:
			s := statStamp(name)
			if s == stamp {
				continue
			}
			stamp, why = s, "file changed"
		}
		data, err := readFile(name)
		if err != nil {
			log.Error("policy: reload failed; keeping the running policy", "file", name, "trigger", why, "err", err)
			continue
		}
		if why != "SIGHUP" && bytes.Equal(data, last) {
			continue
		}
		p, err := policy.Parse(name, data)
		if err == nil {
			err = rt.Load(p)
		}
		if err != nil {
			log.Error("policy: reload failed; keeping the running policy", "file", name, "trigger", why, "err", err)
			continue
		}
		last = data
		log.Info("policy: reloaded", "file", name, "trigger", why, "hosts", hostList(p))
		warnUpstreams(ctx, p, log)
	}
}

// statStamp is what the poll compares: size and modification time.
func statStamp(name string) string {
	fi, err := os.Stat(name)
	if err != nil {
		return "missing"
	}
	return fmt.Sprintf("%d %d", fi.Size(), fi.ModTime().UnixNano())
}

func hostList(p *policy.Policy) string {
	names := make([]string, len(p.Hosts))
	for i, h := range p.Hosts {
		names[i] = h.Pattern.String()
	}
	return strings.Join(names, " ")
}

// clientSet is every issuer's sso.Client, made as policies name them.
type clientSet struct {
	mu      sync.Mutex
	clients []*sso.Client
}

func (cs *clientSet) add(c *sso.Client) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.clients = append(cs.clients, c)
}

func (cs *clientSet) close() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, c := range cs.clients {
		_ = c.Close()
	}
}

// keySetAge is the age of the oldest key set in use (0 before any fetch).
func (cs *clientSet) keySetAge() time.Duration {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var oldest time.Duration
	for _, c := range cs.clients {
		if ks := c.KeySet(); ks != nil && !ks.LastSuccess().IsZero() {
			oldest = max(oldest, time.Since(ks.LastSuccess()))
		}
	}
	return oldest
}
