package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/store"
)

// Passkeys (WebAuthn). The relying party ID is the cookie domain, so a
// passkey made at the issuer is for the whole domain; the only origin
// accepted is the issuer's own. Each ceremony has a single-use challenge in
// the store under the SHA-256 of a random handle that only the browser which
// began it holds (a host-only, SameSite=Strict cookie), valid ceremonyTTL.
// The JSON endpoints under /webauthn/ take the CSRF token in a header and
// only the issuer's own Origin.
const ceremonyTTL = 5 * time.Minute

// newWebAuthn configures the library for the issuer.
func newWebAuthn(rpID, origin string) (*webauthn.WebAuthn, error) {
	w, err := webauthn.New(&webauthn.Config{
		RPID: rpID, RPDisplayName: rpID, RPOrigins: []string{origin},
		AttestationPreference: protocol.PreferNoAttestation,
		// Expiry is the stored challenge's (on the injected clock), not the library's.
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: ceremonyTTL, TimeoutUVD: ceremonyTTL},
			Registration: webauthn.TimeoutConfig{Timeout: ceremonyTTL, TimeoutUVD: ceremonyTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("server: webauthn: %w", err)
	}
	return w, nil
}

// ceremonyCookie names the cookie holding a ceremony's handle.
func (s *Server) ceremonyCookie() string {
	if s.cfg.Secure() {
		return "__Host-canopy-webauthn"
	}
	return "canopy-webauthn"
}

// ceremony is what a stored WebAuthn challenge remembers.
type ceremony struct {
	Session  webauthn.SessionData `json:"session"`
	SID      string               `json:"sid,omitempty"`       // registration: the session that began it
	Name     string               `json:"name,omitempty"`      // registration: the passkey's label
	ReturnTo string               `json:"return_to,omitempty"` // sign-in: where to go next
	Pending  string               `json:"pending,omitempty"`   // second factor: the pending sign-in's challenge
}

// beginCeremony stores a ceremony and gives the browser its handle.
func (s *Server) beginCeremony(c echo.Context, kind, userID string, cer ceremony) error {
	data, err := json.Marshal(cer)
	if err != nil {
		return err
	}
	now := s.now()
	handle := randomID(32)
	if err := s.store.PutChallenge(c.Request().Context(), store.Challenge{ID: hashToken(handle), Kind: kind, UserID: userID,
		Data: string(data), CreatedAt: now, ExpiresAt: now.Add(ceremonyTTL)}); err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{Name: s.ceremonyCookie(), Value: handle, Path: "/", MaxAge: int(ceremonyTTL / time.Second),
		Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return nil
}

// errNoCeremony: no ceremony began in this browser, or it expired, was used,
// or was of another kind.
var errNoCeremony = errors.New("server: no webauthn ceremony")

// takeCeremony uses up this browser's ceremony of kind: a second finish with
// the same challenge (a replay) finds nothing.
func (s *Server) takeCeremony(c echo.Context, kind string) (store.Challenge, ceremony, error) {
	ck, err := c.Cookie(s.ceremonyCookie())
	if err != nil || ck.Value == "" || len(ck.Value) > 64 {
		return store.Challenge{}, ceremony{}, errNoCeremony
	}
	c.SetCookie(&http.Cookie{Name: s.ceremonyCookie(), Value: "", Path: "/", MaxAge: -1,
		Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteStrictMode})
	ch, err := s.store.TakeChallenge(c.Request().Context(), hashToken(ck.Value), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return store.Challenge{}, ceremony{}, errNoCeremony
	}
	if err != nil {
		return store.Challenge{}, ceremony{}, err
	}
	var cer ceremony
	if ch.Kind != kind || json.Unmarshal([]byte(ch.Data), &cer) != nil {
		return store.Challenge{}, ceremony{}, errNoCeremony
	}
	return ch, cer, nil
}

// jsonError answers a /webauthn/ request with a short public error.
func jsonError(c echo.Context, status int, code, msg string) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(status, map[string]string{"error": code, "message": msg})
}

// passkeyUser is a user as the WebAuthn library sees one. The user handle
// is the user's opaque id: stable, never reused, not a name.
type passkeyUser struct {
	user  store.User
	creds []webauthn.Credential
}

func (p *passkeyUser) WebAuthnID() []byte                         { return []byte(p.user.ID) }
func (p *passkeyUser) WebAuthnName() string                       { return p.user.Username }
func (p *passkeyUser) WebAuthnDisplayName() string                { return p.user.Username }
func (p *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return p.creds }

// loadPasskeyUser reads u's passkeys into a library user.
func (s *Server) loadPasskeyUser(ctx context.Context, u store.User) (*passkeyUser, error) {
	keys, err := s.store.Passkeys(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	pu := &passkeyUser{user: u}
	for _, k := range keys {
		var cred webauthn.Credential
		if err := json.Unmarshal([]byte(k.Credential), &cred); err != nil {
			return nil, fmt.Errorf("passkey %s: %w", k.ID, err)
		}
		cred.Authenticator.SignCount = k.SignCount
		pu.creds = append(pu.creds, cred)
	}
	return pu, nil
}

// credentialID is how the store names a credential.
func credentialID(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }

// usePasskey records a verified assertion: a counter that did not move
// forward (a cloned authenticator, a replay) refuses the sign-in.
func (s *Server) usePasskey(ctx context.Context, cred *webauthn.Credential) error {
	if cred.Authenticator.CloneWarning {
		return errPasskeyRefused
	}
	err := s.store.UsePasskey(ctx, credentialID(cred.ID), cred.Authenticator.SignCount, s.now())
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return errPasskeyRefused
	}
	return err
}

// errPasskeyRefused: the assertion verified but its counter says it must not be trusted.
var errPasskeyRefused = errors.New("server: passkey refused")
