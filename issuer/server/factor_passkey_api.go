package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/metrics"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// The JSON endpoints of passkey ceremonies, driven by /static/passkeys.js.
// Each begin answers the options for navigator.credentials; each finish
// takes the credential as JSON. Errors are {"error", "message"}; the cause
// goes to the log only.

const maxPasskeyName = 64

// refuse answers a failed ceremony step; cause is logged.
func (s *Server) refuseCeremony(c echo.Context, status int, code, msg string, cause error) error {
	if cause != nil {
		s.log.Info("passkey ceremony refused", "path", c.Request().URL.Path, "error", code, "cause", cause)
	}
	return jsonError(c, status, code, msg)
}

func (s *Server) forbiddenJSON(c echo.Context) error {
	return jsonError(c, http.StatusForbidden, "forbidden", "This page had expired. Reload it and try again.")
}

// passkeyRegisterBegin starts adding a passkey to the signed-in account: an
// account session (the session cookie), a recent sign-in and the password.
func (s *Server) passkeyRegisterBegin(c echo.Context) error {
	if !s.checkJSONCSRF(c) {
		return s.forbiddenJSON(c)
	}
	cur, ok := s.accountSession(c)
	if !ok {
		return c.JSON(http.StatusUnauthorized, map[string]string{"error": "unauthenticated", "message": "Please sign in.",
			"login_url": s.signInURL(c, "/account/passkeys")})
	}
	if s.now().Sub(cur.Session.AuthTime) > recentAuth {
		return c.JSON(http.StatusUnauthorized, map[string]string{"error": "reauthenticate",
			"message":   "Adding a passkey needs a sign-in from the last 10 minutes.",
			"login_url": "/login?prompt=login&return_to=" + url.QueryEscape(s.cfg.URL+"/account/passkeys")})
	}
	var body struct {
		Name     string `json:"name"`
		Password string `json:"password"` // typed into the ceremony: adding a factor needs it now
	}
	if err := json.NewDecoder(c.Request().Body).Decode(&body); err != nil {
		return s.refuseCeremony(c, http.StatusBadRequest, "bad_request", "The request was not understood.", err)
	}
	if refused, err := s.confirmPassword(c, cur, body.Password, "factor_change_failed"); refused != nil || err != nil {
		if err != nil {
			return err
		}
		return jsonError(c, refused.status, "password", refused.msg)
	}
	name := strings.TrimSpace(body.Name)
	if name == "" {
		name = "Passkey"
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxPasskeyName || strings.ContainsFunc(name, isControl) {
		return jsonError(c, http.StatusBadRequest, "bad_name", "Give the passkey a name of at most 64 characters.")
	}
	pu, err := s.loadPasskeyUser(c.Request().Context(), cur.User)
	if err != nil {
		return err
	}
	var exclude []protocol.CredentialDescriptor
	for _, cred := range pu.creds {
		exclude = append(exclude, cred.Descriptor())
	}
	creation, session, err := s.webauthn.BeginRegistration(pu,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationRequired,
		}),
		webauthn.WithExclusions(exclude))
	if err != nil {
		return err
	}
	if err := s.beginCeremony(c, store.ChallengePasskeyRegister, cur.User.ID,
		ceremony{Session: *session, SID: cur.Session.ID, Name: name}); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, creation)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// passkeyRegisterFinish verifies the new credential and stores it. Only the
// session that began the ceremony may finish it.
func (s *Server) passkeyRegisterFinish(c echo.Context) error {
	if !s.checkJSONCSRF(c) {
		return s.forbiddenJSON(c)
	}
	cur, ok := s.accountSession(c)
	if !ok {
		return jsonError(c, http.StatusUnauthorized, "unauthenticated", "Please sign in.")
	}
	ch, cer, err := s.takeCeremony(c, store.ChallengePasskeyRegister)
	if errors.Is(err, errNoCeremony) {
		return s.refuseCeremony(c, http.StatusBadRequest, "expired", "That took too long. Please try again.", err)
	}
	if err != nil {
		return err
	}
	if ch.UserID != cur.User.ID || cer.SID != cur.Session.ID {
		return s.refuseCeremony(c, http.StatusForbidden, "forbidden", "Please try again.", errors.New("ceremony of another session"))
	}
	parsed, err := protocol.ParseCredentialCreationResponseBody(c.Request().Body)
	if err != nil {
		return s.refuseCeremony(c, http.StatusBadRequest, "bad_credential", "The passkey could not be read. Please try again.", err)
	}
	ctx := c.Request().Context()
	pu, err := s.loadPasskeyUser(ctx, cur.User)
	if err != nil {
		return err
	}
	cred, err := s.webauthn.CreateCredential(pu, cer.Session, parsed)
	if err != nil {
		return s.refuseCeremony(c, http.StatusBadRequest, "verification_failed", "The passkey could not be verified. Please try again.", err)
	}
	data, err := json.Marshal(cred)
	if err != nil {
		return err
	}
	err = s.store.AddPasskey(ctx, store.Passkey{ID: credentialID(cred.ID), UserID: cur.User.ID, Name: cer.Name,
		Credential: string(data), SignCount: cred.Authenticator.SignCount, CreatedAt: s.now()})
	if errors.Is(err, store.ErrConflict) {
		return jsonError(c, http.StatusConflict, "exists", "That passkey is registered already.")
	}
	if err != nil {
		return err
	}
	s.event(c, "passkey_added", cur.User, cur.Session.ID, cer.Name)
	return c.JSON(http.StatusOK, map[string]bool{"ok": true})
}

// passkeyLoginBegin starts a sign-in with a passkey alone: a discoverable
// credential, with user verification, so that it is two factors in one.
func (s *Server) passkeyLoginBegin(c echo.Context) error {
	if !s.checkJSONCSRF(c) {
		return s.forbiddenJSON(c)
	}
	var body struct {
		ReturnTo string `json:"return_to"`
	}
	if err := json.NewDecoder(c.Request().Body).Decode(&body); err != nil {
		return s.refuseCeremony(c, http.StatusBadRequest, "bad_request", "The request was not understood.", err)
	}
	assertion, session, err := s.webauthn.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return err
	}
	if err := s.beginCeremony(c, store.ChallengePasskeyLogin, "", ceremony{Session: *session, ReturnTo: s.returnTo(body.ReturnTo)}); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, assertion)
}

// passkeyLoginFinish verifies a passkey sign-in and starts a session with
// amr ["hwk"].
func (s *Server) passkeyLoginFinish(c echo.Context) error {
	if !s.checkJSONCSRF(c) {
		return s.forbiddenJSON(c)
	}
	_, cer, err := s.takeCeremony(c, store.ChallengePasskeyLogin)
	if err == nil && cer.Pending != "" {
		err = errNoCeremony // a second-factor ceremony finishes at /webauthn/2fa/finish
	}
	if errors.Is(err, errNoCeremony) {
		return s.refuseCeremony(c, http.StatusBadRequest, "expired", "That took too long. Please try again.", err)
	}
	if err != nil {
		return err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBody(c.Request().Body)
	if err != nil {
		return s.refuseCeremony(c, http.StatusBadRequest, "bad_credential", "The passkey answer could not be read.", err)
	}
	ctx := c.Request().Context()
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		pk, err := s.store.PasskeyByID(ctx, credentialID(rawID))
		if err != nil {
			return nil, err
		}
		if pk.UserID != string(userHandle) {
			return nil, errors.New("user handle of another user")
		}
		u, err := s.store.UserByID(ctx, pk.UserID)
		if err != nil {
			return nil, err
		}
		if u.Disabled {
			return nil, errors.New("user disabled")
		}
		return s.loadPasskeyUser(ctx, u)
	}
	user, cred, err := s.webauthn.ValidatePasskeyLogin(handler, cer.Session, parsed)
	if err == nil {
		err = s.usePasskey(ctx, cred)
	}
	if err != nil {
		s.metrics.Login(metrics.LoginFailure)
		if errors.Is(err, store.ErrUnavailable) {
			return err
		}
		return s.refuseCeremony(c, http.StatusUnauthorized, "passkey_failed", "That passkey did not work here.", err)
	}
	u := user.(*passkeyUser).user
	sess, err := s.startSession(c, u, []string{wire.AMRHardware})
	if err != nil {
		return err
	}
	s.metrics.Login(metrics.LoginSuccess)
	s.event(c, "login", u, sess.ID, "with a passkey")
	return c.JSON(http.StatusOK, map[string]string{"redirect": redirectTarget(cer.ReturnTo)})
}

func redirectTarget(returnTo string) string {
	if returnTo == "" {
		return "/"
	}
	return returnTo
}

// passkeySecondBegin starts a passkey as the second factor of a pending
// sign-in: any of the user's passkeys.
func (s *Server) passkeySecondBegin(c echo.Context) error {
	if !s.checkJSONCSRF(c) {
		return s.forbiddenJSON(c)
	}
	p, err := s.currentPending(c)
	if errors.Is(err, errNoPending) {
		return jsonError(c, http.StatusUnauthorized, "expired", "That took too long. Please sign in again.")
	}
	if err != nil {
		return err
	}
	pu, err := s.loadPasskeyUser(c.Request().Context(), p.user)
	if err != nil {
		return err
	}
	if len(pu.creds) == 0 {
		return jsonError(c, http.StatusBadRequest, "no_passkey", "This account has no passkey.")
	}
	assertion, session, err := s.webauthn.BeginLogin(pu, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return err
	}
	if err := s.beginCeremony(c, store.ChallengePasskeyLogin, p.user.ID, ceremony{Session: *session, Pending: p.id}); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, assertion)
}

// passkeySecondFinish completes a pending sign-in with a passkey: amr gains "hwk".
func (s *Server) passkeySecondFinish(c echo.Context) error {
	if !s.checkJSONCSRF(c) {
		return s.forbiddenJSON(c)
	}
	p, err := s.currentPending(c)
	if errors.Is(err, errNoPending) {
		return jsonError(c, http.StatusUnauthorized, "expired", "That took too long. Please sign in again.")
	}
	if err != nil {
		return err
	}
	ch, cer, err := s.takeCeremony(c, store.ChallengePasskeyLogin)
	if err == nil && (cer.Pending != p.id || ch.UserID != p.user.ID) {
		err = errNoCeremony
	}
	if errors.Is(err, errNoCeremony) {
		return s.refuseCeremony(c, http.StatusBadRequest, "expired", "That took too long. Please try again.", err)
	}
	if err != nil {
		return err
	}
	account, addr := factorAccount(p.user.ID), clientAddr(c)
	attempt, _ := s.factorThrottle.Begin(account, addr)
	if attempt == nil {
		return jsonError(c, http.StatusTooManyRequests, "throttled", "Too many failed attempts. Wait a while and try again.")
	}
	defer attempt.Release() // on the paths without an outcome
	ctx := c.Request().Context()
	parsed, err := protocol.ParseCredentialRequestResponseBody(c.Request().Body)
	var cred *webauthn.Credential
	if err == nil {
		var pu *passkeyUser
		if pu, err = s.loadPasskeyUser(ctx, p.user); err != nil {
			return err
		}
		if cred, err = s.webauthn.ValidateLogin(pu, cer.Session, parsed); err == nil {
			err = s.usePasskey(ctx, cred)
		}
	}
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			return err
		}
		attempt.Failure()
		s.event(c, "second_factor_failed", p.user, "", "passkey")
		return s.refuseCeremony(c, http.StatusUnauthorized, "passkey_failed", "That passkey did not work here.", err)
	}
	attempt.Success()
	amr := append(p.data.AMR[:len(p.data.AMR):len(p.data.AMR)], wire.AMRHardware)
	how := "with a password and a passkey"
	if p.data.IDP != "" {
		how = "and a passkey" // completePending prefixes "via IDP"
	}
	if err := s.completePending(c, p, amr, how); err != nil {
		if errors.Is(err, errNoPending) {
			return jsonError(c, http.StatusUnauthorized, "expired", "That took too long. Please sign in again.")
		}
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"redirect": redirectTarget(p.data.ReturnTo)})
}
