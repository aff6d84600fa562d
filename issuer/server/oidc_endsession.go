package server

import (
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// endSession handles GET /end-session (OpenID RP-Initiated Logout 1.0), in
// its first form: the post_logout_redirect_uri must be registered for the
// client named by client_id (id_token_hint is not read yet, so a client
// that wants to be returned to must send client_id); then the browser gets
// the issuer's sign-out confirmation, which returns there afterwards when
// the URI is under the cookie domain (others land on the account page).
func (s *Server) endSession(c echo.Context) error {
	q := c.Request().URL.Query()
	post := q.Get("post_logout_redirect_uri")
	logout := url.Values{}
	if post != "" {
		clientID := q.Get("client_id")
		if clientID == "" {
			return s.endSessionErrorPage(c, "The application asked to send you back after signing out but did not say who it is (client_id).")
		}
		client, err := s.store.ClientByID(c.Request().Context(), clientID)
		if errors.Is(err, store.ErrNotFound) {
			return s.endSessionErrorPage(c, "The application asking you to sign out is not registered here.")
		}
		if err != nil {
			return err
		}
		if !slices.Contains(client.PostLogoutRedirectURIs, post) {
			return s.endSessionErrorPage(c, "The application asked to send you back to an address it has not registered (post_logout_redirect_uri).")
		}
		back := post
		if st := q.Get("state"); st != "" {
			if u, err := url.Parse(post); err == nil {
				v := u.Query()
				v.Set("state", st)
				u.RawQuery = v.Encode()
				back = u.String()
			}
		}
		logout.Set("return_to", back)
	}
	target := wire.PathLogout
	if len(logout) > 0 {
		target += "?" + logout.Encode()
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, target)
}

func (s *Server) endSessionErrorPage(c echo.Context, msg string) error {
	return s.page(c, http.StatusBadRequest, &messageView{Title: "This sign-out request cannot be completed", Message: msg,
		Link: "/", LinkText: "Go to your account"})
}
