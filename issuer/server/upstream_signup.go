package server

import (
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/metrics"
	"github.com/canopy-sso/canopy/issuer/store"
)

// A person the provider vouched for, whom no user is linked to, chooses a
// username when sign-up through that provider is open. The page is the
// callback's own answer, so it arrives on the cross-site redirect, which
// withholds the SameSite=Strict CSRF cookie: it rests on nothing Strict.
// The verified identity waits in the store as a single-use challenge under
// the SHA-256 of a random handle that only the form holds; the post must
// also come from the issuer's origin and carry the SameSite=Lax flow cookie
// that started the sign-in, so neither another site nor a stolen form can
// make a browser create (and sign in to) an account.

// signupTTL is how long the username choice may take.
const signupTTL = 15 * time.Minute

// pendingSignup is what the username choice remembers.
type pendingSignup struct {
	Provider string     `json:"provider"`
	ID       upstreamID `json:"id"`
	ReturnTo string     `json:"return_to"`
	Binding  string     `json:"binding"`
}

// upstreamSignupView is the username choice.
type upstreamSignupView struct {
	frame
	Pending, Provider, Username, Error string
}

func (*upstreamSignupView) template() string { return "upstream_signup" }

func (s *Server) startSignup(c echo.Context, u *upstream, f upstreamFlow, id *upstreamID) error {
	handle, now := randomID(32), s.now()
	data, err := json.Marshal(pendingSignup{Provider: u.cfg.Name, ID: *id, ReturnTo: f.ReturnTo, Binding: f.Binding})
	if err != nil {
		return err
	}
	if err := s.store.PutChallenge(c.Request().Context(), store.Challenge{ID: hashToken(handle), Kind: challengeUpstreamSignup,
		Data: string(data), CreatedAt: now, ExpiresAt: now.Add(signupTTL)}); err != nil {
		return fmt.Errorf("pending sign-up: %w", err)
	}
	suggested, err := s.suggestName(c, id)
	if err != nil {
		return err
	}
	return s.page(c, http.StatusOK, &upstreamSignupView{Pending: handle, Provider: u.cfg.Label(), Username: suggested})
}

// suggestName derives a valid, free username from preferred_username or
// the email's local part: lowercased, other characters made '-', cut to a
// label, then numbered until free. "" when nothing usable comes of it.
func (s *Server) suggestName(c echo.Context, id *upstreamID) (string, error) {
	var bases []string
	for _, raw := range []string{id.PreferredUsername, id.Email} {
		local, _, _ := strings.Cut(raw, "@")
		if b := labelOf(local); b != "" {
			bases = append(bases, b)
		}
	}
	ctx := c.Request().Context()
	for _, base := range bases {
		for i := 0; i < 20; i++ {
			name := base
			if i > 0 {
				suffix := fmt.Sprintf("-%d", i+1)
				name = strings.TrimRight(base[:min(len(base), 63-len(suffix))], "-") + suffix
			}
			if _, err := s.names.Normalize(name); err != nil {
				continue
			}
			// Taken means by any user, a deleted one included: its name
			// stays its own (a subdomain's owner never changes).
			taken, err := s.store.UsernameTaken(ctx, name)
			if err != nil {
				return "", err
			}
			if !taken {
				return name, nil
			}
		}
	}
	return "", nil
}

// labelOf makes a DNS-label-like name of v: a-z, 0-9 and single '-'.
func labelOf(v string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(v) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 63 {
		out = strings.TrimRight(out[:63], "-")
	}
	return out
}

// upstreamSignup is POST /login/upstream/signup: the chosen username.
func (s *Server) upstreamSignup(c echo.Context) error {
	ctx := c.Request().Context()
	handle := c.FormValue("pending")
	typed := c.FormValue("username")
	view := &upstreamSignupView{Pending: handle, Username: truncate(typed, 63)}
	gone := func(cause string) error {
		s.metrics.Upstream("", metrics.UpstreamBadState)
		s.log.Warn("upstream sign-up refused", "cause", cause)
		return s.upstreamPage(c, http.StatusBadRequest, "This sign-up has expired or was already used", "Please sign in again.", "")
	}
	if !s.sameOrigin(c) || handle == "" || len(handle) > 64 {
		return gone("cross-origin post or no handle")
	}
	ch, err := s.store.GetChallenge(ctx, hashToken(handle), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return gone("unknown, expired or used handle")
	}
	if err != nil {
		return err
	}
	var p pendingSignup
	if ch.Kind != challengeUpstreamSignup || json.Unmarshal([]byte(ch.Data), &p) != nil || !s.boundHere(c, p.Binding) {
		return gone("handle of another kind or browser")
	}
	u, ok := s.upstreams[p.Provider]
	if !ok || u.cfg.Signup != "open" {
		return gone("provider gone or sign-up closed since")
	}
	view.Provider = u.cfg.Label()
	name, err := s.names.Normalize(typed)
	if err != nil {
		view.Error = err.Error()
		return s.page(c, http.StatusBadRequest, view)
	}
	now := s.now()
	user := store.User{ID: randomID(16), Username: name, CreatedAt: now}
	link := store.Identity{Issuer: p.ID.Issuer, Subject: p.ID.Subject, Provider: u.cfg.Name, CreatedAt: now}
	if p.ID.EmailVerified {
		link.Email = p.ID.Email
	}
	err = s.store.CreateLinkedUser(ctx, user, link)
	if errors.Is(err, store.ErrConflict) {
		if _, lerr := s.store.Identity(ctx, link.Issuer, link.Subject); lerr == nil {
			return gone("the identity was linked meanwhile") // a second post of the same form
		}
		view.Error = "That username is taken. Please choose another."
		return s.page(c, http.StatusConflict, view)
	}
	if err != nil {
		return err
	}
	if _, err := s.store.TakeChallenge(ctx, ch.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	s.metrics.Signup()
	s.event(c, "register", user, "", "via "+u.cfg.Name)
	return s.federatedSession(c, u, user, &p.ID, p.ReturnTo, "")
}

// sameOrigin accepts a form post only from the issuer's own pages, by the
// Origin and Sec-Fetch-Site a browser sends (the CSRF cookie's Origin and
// Sec-Fetch-Site half; its Strict cookie half cannot be had here).
func (s *Server) sameOrigin(c echo.Context) bool {
	req := c.Request()
	if site := req.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return false
	}
	o := req.Header.Get("Origin")
	return o == "" || hmac.Equal([]byte(o), []byte(s.origin))
}
