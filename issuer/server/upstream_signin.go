package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/metrics"
	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// upstreamSignedIn decides what a verified person of provider u gets: the
// linked user's session, a link made for the signed-in user (account
// page), a link by verified email, the username choice, or a refusal.
func (s *Server) upstreamSignedIn(c echo.Context, u *upstream, f upstreamFlow, id *upstreamID) error {
	ctx := c.Request().Context()
	if why := admit(u.cfg, id); why != "" {
		return s.upstreamRefused(c, u, metrics.UpstreamRefused, http.StatusForbidden, "You cannot sign in here with "+u.cfg.Label(),
			why, f.ReturnTo, "not admitted: email domain or groups")
	}
	if f.LinkSID != "" {
		return s.finishLink(c, u, f, id)
	}
	link, err := s.store.Identity(ctx, id.Issuer, id.Subject)
	switch {
	case err == nil:
	case !errors.Is(err, store.ErrNotFound):
		return err
	case u.cfg.LinkVerifiedEmail && id.EmailVerified && id.Email != "":
		// Linked by an address another provider verified for that user.
		byEmail, err := s.store.IdentityByEmail(ctx, id.Email)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil {
			link = store.Identity{Issuer: id.Issuer, Subject: id.Subject, UserID: byEmail.UserID, Provider: u.cfg.Name,
				Email: id.Email, CreatedAt: s.now()}
			if err := s.store.LinkIdentity(ctx, link); err != nil && !errors.Is(err, store.ErrConflict) {
				return err
			} else if err != nil {
				// The user has another account of this provider linked already.
				return s.notLinked(c, u, f, id)
			}
			break
		}
		fallthrough
	default:
		if u.cfg.Signup == "open" {
			return s.startSignup(c, u, f, id)
		}
		return s.notLinked(c, u, f, id)
	}
	user, err := s.store.UserByID(ctx, link.UserID)
	if errors.Is(err, store.ErrNotFound) || err == nil && user.Disabled {
		return s.upstreamRefused(c, u, metrics.UpstreamRefused, http.StatusForbidden, "This account cannot sign in",
			"The account linked to your "+u.cfg.Label()+" account is disabled or deleted.", f.ReturnTo, "linked user disabled or deleted")
	}
	if err != nil {
		return err
	}
	return s.federatedSession(c, u, user, id, f.ReturnTo, "")
}

// notLinked refuses a subject nobody linked, naming it for an administrator.
func (s *Server) notLinked(c echo.Context, u *upstream, f upstreamFlow, id *upstreamID) error {
	return s.upstreamRefused(c, u, metrics.UpstreamRefused, http.StatusForbidden, "No account here is linked to your "+u.cfg.Label()+" account",
		fmt.Sprintf("Sign-up through %s is closed on this site. An administrator can link your account: issuer user link NAME --idp %s --subject %s",
			u.cfg.Label(), u.cfg.Name, id.Subject), f.ReturnTo, "unknown subject, sign-up closed")
}

// federatedSession signs user in with a session of provider u.
func (s *Server) federatedSession(c echo.Context, u *upstream, user store.User, id *upstreamID, returnTo, how string) error {
	groups, dropped := carriedGroups(u.cfg, id.Groups)
	if dropped > 0 {
		s.log.Info("provider groups left out of the token (invalid names or over the size budget)", "idp", u.cfg.Name,
			"user", user.Username, "dropped", dropped, "carried", len(groups))
	}
	spec := sessionSpec{amr: sessionAMR(u.cfg, id), idp: u.cfg.Name, upstreamGroups: groups,
		authTime: authTime(id, s.now()), maxLife: u.cfg.MaxSession}
	if !hasSecondMethod(spec.amr) {
		need, err := s.hasSecondFactor(c, user)
		if err != nil {
			return err
		}
		if need {
			return s.federatedSecondFactor(c, user, spec, returnTo)
		}
	}
	sess, err := s.beginSession(c, user, spec)
	if err != nil {
		return err
	}
	s.metrics.Upstream(u.cfg.Name, metrics.UpstreamSuccess)
	s.metrics.Login(metrics.LoginSuccess)
	if how == "" {
		how = "via " + u.cfg.Name
	}
	s.event(c, "login", user, sess.ID, how)
	s.clearFlowCookie(c)
	return s.redirectBack(c, returnTo)
}

func (s *Server) clearFlowCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: s.flowCookie(), Value: "", Path: "/", MaxAge: -1,
		Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// upstreamFacts adds what a federated session brought from its provider
// (recorded at sign-in) to the facts of a refreshed token.
func (s *Server) upstreamFacts(ctx context.Context, sid string, f *facts) error {
	idp, groups, err := s.store.SessionUpstream(ctx, sid)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("session provider: %w", err)
	}
	f.idp, f.groups = idp, mergeGroups(f.groups, groups)
	return nil
}

// hasSecondMethod reports whether a provider's trusted amr already holds a
// second factor (mfa, otp or hwk), which then stands for the local one.
func hasSecondMethod(amr []string) bool {
	return slices.ContainsFunc(amr, func(m string) bool {
		return m == wire.AMRMultiFactor || m == wire.AMROTP || m == wire.AMRHardware
	})
}

// federatedSecondFactor makes a provider sign-in of a user with a local
// second factor pending, as a right password does, and answers the
// callback with the second-factor page itself. The callback arrives on the
// provider's cross-site redirect, which withholds SameSite=Strict cookies,
// and so would a 303 onwards (still the same redirect chain): the page is
// rendered here with a fresh CSRF secret, and its posts (/login/otp,
// /webauthn/2fa/*) come from the issuer's own page, which sends the Strict
// pending and CSRF cookies set on this response. Nothing needs a Lax
// cookie, and no bearer handle travels in the form.
func (s *Server) federatedSecondFactor(c echo.Context, user store.User, spec sessionSpec, returnTo string) error {
	s.clearFlowCookie(c)
	d := pendingData{ReturnTo: returnTo, AMR: spec.amr, IDP: spec.idp, Groups: spec.upstreamGroups,
		AuthTime: spec.authTime, MaxLife: spec.maxLife}
	if err := s.startPending(c, user, d); err != nil {
		return err
	}
	view, err := s.secondFactorData(c, &pending{user: user, data: d})
	if err != nil {
		return err
	}
	view.CSRF = s.rotateCSRF(c)
	return s.page(c, http.StatusOK, view)
}
