package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/canopy-sso/canopy/issuer/metrics"
	"github.com/canopy-sso/canopy/issuer/store"
)

// This file delivers OpenID Back-Channel Logout 1.0 logout tokens from the
// store's durable outbox (store.LogoutOutbox). Whatever ends a session
// (sign-out, signing out others, a password change, refresh-token reuse,
// `issuer user disable` or delete, an admin's revocation) writes the rows
// in the same transaction, in this process or another one; a session that
// runs out is picked up by ExpireGrants here. A worker delivers them in the
// background, so a sign-out never waits for a client, and a row left when
// the issuer stops is delivered after it starts again.

const (
	// LogoutTokenType is the logout token's typ header (Back-Channel
	// Logout §2.4, as updated): no ID token or access token validator
	// accepts it.
	LogoutTokenType = "logout+jwt"
	// BackchannelEvent is the one member of a logout token's events claim.
	BackchannelEvent = "http://schemas.openid.net/event/backchannel-logout"
	// logoutTokenTTL is how long a logout token is valid after it is made
	// (each attempt makes a new one).
	logoutTokenTTL = 2 * time.Minute

	// DefaultBackchannelPoll is how often the worker looks for due rows
	// when nothing woke it (another instance's or the CLI's revocations).
	DefaultBackchannelPoll = time.Second
	// backchannelTimeout bounds one delivery, connection to answer.
	backchannelTimeout = 5 * time.Second
	// BackchannelMaxAttempts: a row that failed this often is dropped.
	BackchannelMaxAttempts = 10
	// BackchannelMaxAge: a row older than this is dropped undelivered.
	BackchannelMaxAge = 24 * time.Hour
	// BackchannelPerClient: a client with more rows pending than this
	// (its receiver down while many sessions end) loses its oldest ones.
	BackchannelPerClient = 10_000
	// backoffBase and backoffCap shape the retry delay: base·2^(n-1) after
	// the nth failed attempt, at most cap, with jitter (half to all of it).
	backoffBase = 2 * time.Second
	backoffCap  = 10 * time.Minute
	// backchannelBatch rows are read per round, backchannelParallel of
	// them delivered at once.
	backchannelBatch    = 50
	backchannelParallel = 4
	// DefaultBackchannelHousekeep is how often the worker also expires
	// the grants of sessions that ran out and prunes the outbox.
	DefaultBackchannelHousekeep = 30 * time.Second
	expireBatch                 = 200
)

// backoff is the delay before the attempt after the nth failed one.
func backoff(n int) time.Duration {
	d := backoffCap
	if n < 20 {
		d = min(backoffCap, backoffBase<<(n-1))
	}
	return d/2 + rand.N(d/2+1)
}

// backchannel is the delivery worker's state.
type backchannel struct {
	client *http.Client
	poll   time.Duration
	// housekeep is how often grants are expired and the outbox pruned.
	housekeep time.Duration
	wakeC     chan struct{}
	cancel    context.CancelFunc
	wg        sync.WaitGroup // the worker and the deliveries in flight
	// slots bounds the deliveries in flight; inflight names them, so that
	// a slow receiver's row, due again before its attempt ends, is not
	// sent twice at once.
	slots    chan struct{}
	mu       sync.Mutex
	inflight map[[2]string]bool
}

// begin marks k in flight; false when it already is.
func (b *backchannel) begin(k [2]string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inflight[k] {
		return false
	}
	b.inflight[k] = true
	return true
}

func (b *backchannel) end(k [2]string) {
	b.mu.Lock()
	delete(b.inflight, k)
	b.mu.Unlock()
}

// newBackchannelClient is the delivery HTTP client: bounded in time, and
// following no redirect (a 3xx is a failed delivery). The URIs are the
// operator's (`issuer client add --backchannel-logout-uri`), never a
// client's or a browser's, so any address is allowed, loopback included:
// the issuer POSTs only where an administrator told it to.
func newBackchannelClient() *http.Client {
	return &http.Client{
		Timeout:       backchannelTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (b *backchannel) wake() {
	if b == nil {
		return
	}
	select {
	case b.wakeC <- struct{}{}:
	default:
	}
}

// startBackchannel starts the delivery worker.
func (s *Server) startBackchannel(client *http.Client, poll, housekeep time.Duration) {
	if client == nil {
		client = newBackchannelClient()
	}
	s.bc = &backchannel{client: client, poll: poll, housekeep: housekeep, wakeC: make(chan struct{}, 1),
		slots: make(chan struct{}, backchannelParallel), inflight: map[[2]string]bool{}}
	var ctx context.Context
	ctx, s.bc.cancel = context.WithCancel(context.Background())
	s.bc.wg.Go(func() { s.runBackchannel(ctx) })
}

// stopBackchannel ends the worker; deliveries in flight are cancelled and
// stay in the outbox, claimed for their retry time.
func (s *Server) stopBackchannel() {
	if s.bc != nil {
		s.bc.cancel()
		s.bc.wg.Wait()
	}
}

func (s *Server) runBackchannel(ctx context.Context) {
	t := time.NewTicker(s.bc.poll)
	defer t.Stop()
	var kept time.Time
	for {
		if time.Since(kept) >= s.bc.housekeep {
			s.housekeepOutbox(ctx)
			kept = time.Now()
		}
		s.deliverDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.bc.wakeC:
		}
	}
}

// housekeepOutbox moves the grants of sessions that ran out to the outbox
// and drops what is too old or too many.
func (s *Server) housekeepOutbox(ctx context.Context) {
	now := s.now()
	for {
		n, err := s.store.ExpireGrants(ctx, now, s.cfg.IdleTTL, expireBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("back-channel logout: expiring grants", "err", err)
			}
			return
		}
		if n < expireBatch {
			break
		}
	}
	dropped, err := s.store.PruneLogouts(ctx, now.Add(-BackchannelMaxAge), BackchannelPerClient)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("back-channel logout: pruning the outbox", "err", err)
		}
		return
	}
	for _, p := range dropped {
		s.metrics.Backchannel(metrics.BackchannelDropped)
		s.log.Warn("back-channel logout dropped undelivered (too old, or too many pending for the client)",
			"client_id", p.ClientID, "sid", p.SessionID, "attempts", p.Attempts, "since", p.CreatedAt)
	}
}

// deliverDue starts delivering the rows due now, at most
// backchannelParallel at once, without waiting for them: a receiver that
// hangs until the timeout holds one slot, not the worker. Each delivery
// wakes the worker when it ends, for the rows that waited for a slot.
func (s *Server) deliverDue(ctx context.Context) {
	due, err := s.store.DueLogouts(ctx, s.now(), backchannelBatch)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("back-channel logout: reading the outbox", "err", err)
		}
		return
	}
	for _, p := range due {
		k := [2]string{p.ClientID, p.SessionID}
		if !s.bc.begin(k) {
			continue // its last attempt has not ended yet
		}
		select {
		case s.bc.slots <- struct{}{}:
		default:
			s.bc.end(k)
			return // every slot busy: a delivery that ends wakes the worker
		}
		s.bc.wg.Go(func() {
			defer func() {
				<-s.bc.slots
				s.bc.end(k)
				s.bc.wake()
			}()
			s.deliverLogout(ctx, p)
		})
	}
}

// deliverLogout makes one attempt at p: it claims the attempt (moving the
// row to its retry time first, so a crash mid-way only delays it), POSTs a
// fresh logout token, and deletes the row once delivered or given up.
func (s *Server) deliverLogout(ctx context.Context, p store.PendingLogout) {
	now := s.now()
	attempt := p.Attempts + 1
	ok, err := s.store.ClaimLogout(ctx, p, now.Add(backoff(attempt)))
	if err != nil || !ok {
		if err != nil && ctx.Err() == nil {
			s.log.Warn("back-channel logout: claiming", "client_id", p.ClientID, "err", err)
		}
		return
	}
	err = s.postLogout(ctx, p, now)
	if ctx.Err() != nil {
		return // stopping: the row stays for after the restart
	}
	if err == nil {
		s.metrics.Backchannel(metrics.BackchannelDelivered)
		if derr := s.store.DeleteLogout(ctx, p.ClientID, p.SessionID); derr != nil {
			s.log.Warn("back-channel logout delivered, but its outbox row stays (it will be sent again)", "client_id", p.ClientID, "err", derr)
		}
		return
	}
	if attempt >= BackchannelMaxAttempts {
		s.metrics.Backchannel(metrics.BackchannelGaveUp)
		s.log.Warn("back-channel logout given up", "client_id", p.ClientID, "sid", p.SessionID, "attempts", attempt, "err", err)
		if derr := s.store.DeleteLogout(ctx, p.ClientID, p.SessionID); derr != nil {
			s.log.Warn("back-channel logout: dropping", "client_id", p.ClientID, "err", derr)
		}
		return
	}
	s.metrics.Backchannel(metrics.BackchannelFailed)
	s.log.Info("back-channel logout failed; will retry", "client_id", p.ClientID, "attempt", attempt, "err", err)
}

// logoutClaims are a logout token's claims (Back-Channel Logout §2.4): no
// nonce, an events claim, and both sub and sid.
type logoutClaims struct {
	Issuer    string         `json:"iss"`
	Audience  string         `json:"aud"`
	IssuedAt  int64          `json:"iat"`
	Expiry    int64          `json:"exp"`
	ID        string         `json:"jti"`
	Subject   string         `json:"sub"`
	SessionID string         `json:"sid"`
	Events    map[string]any `json:"events"`
}

// logoutToken signs a logout token for p with the client's ID token
// algorithm's active key.
func (s *Server) logoutToken(p store.PendingLogout, now time.Time) (string, error) {
	payload, err := json.Marshal(logoutClaims{
		Issuer: s.cfg.URL, Audience: p.ClientID, IssuedAt: now.Unix(), Expiry: now.Add(logoutTokenTTL).Unix(),
		ID: randomID(16), Subject: p.UserID, SessionID: p.SessionID,
		Events: map[string]any{BackchannelEvent: map[string]any{}},
	})
	if err != nil {
		return "", err
	}
	return s.keys.SignAs(p.IDTokenAlg, LogoutTokenType, payload)
}

// postLogout POSTs a logout token to p's URI (Back-Channel Logout §2.5):
// any 2xx is delivered.
func (s *Server) postLogout(ctx context.Context, p store.PendingLogout, now time.Time) error {
	if p.URI == "" {
		return errors.New("the client has no back-channel logout URI")
	}
	tok, err := s.logoutToken(p, now)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URI, strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.bc.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the client answered %s", resp.Status)
	}
	return nil
}
