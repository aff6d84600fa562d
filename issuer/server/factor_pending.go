package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/metrics"
	"github.com/canopy-sso/canopy/issuer/store"
)

// A sign-in whose password was right but whose account has a second factor
// is pending: no session exists yet. The browser holds a host-only cookie
// "<handle>.<expiry>.<mac>", the mac an HMAC under a server secret over the
// handle, the user id and the expiry; the store holds a single-use
// challenge under the handle's SHA-256 with the user and where to go next.
// The second factor takes the challenge, so a pending sign-in completes at
// most once, and not after pendingTTL.
const pendingTTL = 5 * time.Minute

// pendingCookie is the pending sign-in's cookie name: __Host- on https.
func (s *Server) pendingCookie() string {
	if s.cfg.Secure() {
		return "__Host-canopy-pending"
	}
	return "canopy-pending"
}

// pendingData is what a pending sign-in remembers.
type pendingData struct {
	ReturnTo string   `json:"return_to"`
	AMR      []string `json:"amr"` // the methods already used: ["pwd"], or ["fed"] after a provider
	// A sign-in at an upstream provider: what its session keeps.
	IDP      string        `json:"idp,omitempty"`
	Groups   []string      `json:"groups,omitempty"`
	AuthTime time.Time     `json:"auth_time,omitzero"`
	MaxLife  time.Duration `json:"max_life,omitempty"`
}

// pending is a verified pending sign-in.
type pending struct {
	id   string // the challenge's ID
	user store.User
	data pendingData
}

func (s *Server) pendingMAC(handle, userID string, exp int64) string {
	m := hmac.New(sha256.New, s.mfaKey)
	fmt.Fprintf(m, "canopy pending sign-in\x00%s\x00%s\x00%d", handle, userID, exp)
	return rawURL(m.Sum(nil))
}

// startPending records a pending sign-in for u and sets its cookie.
func (s *Server) startPending(c echo.Context, u store.User, d pendingData) error {
	now := s.now()
	exp := now.Add(pendingTTL)
	handle := randomID(32)
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	err = s.store.PutChallenge(c.Request().Context(), store.Challenge{ID: hashToken(handle), Kind: store.ChallengeSecondFactor,
		UserID: u.ID, Data: string(data), CreatedAt: now, ExpiresAt: exp})
	if err != nil {
		return fmt.Errorf("pending sign-in: %w", err)
	}
	value := handle + "." + strconv.FormatInt(exp.Unix(), 10) + "." + s.pendingMAC(handle, u.ID, exp.Unix())
	c.SetCookie(&http.Cookie{Name: s.pendingCookie(), Value: value, Path: "/", MaxAge: int(pendingTTL / time.Second),
		Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return nil
}

// errNoPending: no pending sign-in, or an expired, forged or used one.
var errNoPending = errors.New("server: no pending sign-in")

// currentPending verifies the pending sign-in of this browser.
func (s *Server) currentPending(c echo.Context) (*pending, error) {
	ck, err := c.Cookie(s.pendingCookie())
	if err != nil || len(ck.Value) > 256 {
		return nil, errNoPending
	}
	parts := strings.Split(ck.Value, ".")
	if len(parts) != 3 {
		return nil, errNoPending
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	now := s.now()
	if err != nil || now.Unix() >= exp {
		return nil, errNoPending
	}
	ctx := c.Request().Context()
	ch, err := s.store.GetChallenge(ctx, hashToken(parts[0]), now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errNoPending
	case err != nil:
		return nil, err
	case ch.Kind != store.ChallengeSecondFactor:
		return nil, errNoPending
	}
	want := s.pendingMAC(parts[0], ch.UserID, exp)
	if !hmac.Equal([]byte(parts[2]), []byte(want)) {
		return nil, errNoPending
	}
	p := &pending{id: ch.ID}
	if err := json.Unmarshal([]byte(ch.Data), &p.data); err != nil {
		return nil, errNoPending
	}
	p.user, err = s.store.UserByID(ctx, ch.UserID)
	if errors.Is(err, store.ErrNotFound) || err == nil && p.user.Disabled {
		return nil, errNoPending
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// finishPending uses up the pending sign-in, creates the session with amr,
// and sends the browser on. Of two concurrent finishes, one wins.
func (s *Server) finishPending(c echo.Context, p *pending, amr []string, how string) error {
	err := s.completePending(c, p, amr, how)
	if errors.Is(err, errNoPending) {
		return s.pendingGone(c)
	}
	if err != nil {
		return err
	}
	return s.redirectBack(c, p.data.ReturnTo)
}

// completePending is finishPending without the response: errNoPending when
// the pending sign-in was used or expired meanwhile.
func (s *Server) completePending(c echo.Context, p *pending, amr []string, how string) error {
	if _, err := s.store.TakeChallenge(c.Request().Context(), p.id, s.now()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errNoPending
		}
		return err
	}
	s.clearPending(c)
	d := p.data
	sess, err := s.beginSession(c, p.user, sessionSpec{amr: amr, idp: d.IDP, upstreamGroups: d.Groups, authTime: d.AuthTime, maxLife: d.MaxLife})
	if err != nil {
		return err
	}
	if d.IDP != "" {
		s.metrics.Upstream(d.IDP, metrics.UpstreamSuccess)
		how = "via " + d.IDP + " " + how
	}
	s.metrics.Login(metrics.LoginSuccess)
	s.event(c, "login", p.user, sess.ID, how)
	return nil
}

func (s *Server) clearPending(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: s.pendingCookie(), Value: "", Path: "/", MaxAge: -1,
		Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// pendingGone sends a browser whose pending sign-in is missing, expired or
// used back to the password form.
func (s *Server) pendingGone(c echo.Context) error {
	s.clearPending(c)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, "/login?prompt=login")
}
