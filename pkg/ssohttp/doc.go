// Package ssohttp protects net/http handlers with Canopy access tokens
// verified by package sso: the middleware, its pages, the redirect-loop
// guard, step-up, authorization rules and the refresh script.
//
//	client, err := sso.New(ctx, sso.Options{Issuer: "https://domain.com"})
//	if err != nil { … }
//	defer client.Close()
//	protect, err := ssohttp.Middleware(client, ssohttp.MiddlewareConfig{
//		Authorize: ssohttp.RequireGroup("staff"), // optional: 403
//	})
//	mux.Handle("/", protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		claims, _ := ssohttp.ClaimsFrom(r.Context())
//		fmt.Fprintf(w, "hello %s", claims.Username)
//	})))
//	mux.Handle(ssohttp.RefreshScriptPath, ssohttp.RefreshScriptHandler(client))
//
// NewMiddleware does the same with a Verifier and a SiteConfig a program
// builds itself; package ssoecho runs this middleware in echo.
//
// # The middleware, top to bottom
//
// middleware.serve (middleware.go) takes the Verifier and SiteConfig
// (client.go builds them from a Client), works out the request (request.go:
// navigation, the URL as the browser sees it through trusted proxies) and
// reads it through Authenticate (request.go), the one function every entry
// point shares: the "Authorization: Bearer" token alone, any scheme case,
// else the access cookies of that exact name (cookies.go). Then:
//
//   - A valid token: the loop cookie is cleared, Authorize runs (rules.go;
//     a *StepUpError goes to stepup.go, any other error to a 403 in
//     responses.go), and the handler runs with the *sso.Claims in the
//     request context (ClaimsFrom, AuthenticationFrom).
//   - A browser navigation (Sec-Fetch-Mode: navigate, or no Sec-Fetch-Mode
//     and a GET/HEAD accepting text/html) gets 303 to
//     {refresh_uri}?return_to=<this URL>, unless the loop guard (loop.go)
//     has seen two rounds, or the issuer is down (then a page, pages.go).
//   - Anything else gets 401 with WWW-Authenticate: Bearer realm="canopy"
//     and SPEC.md's JSON body, whose reason is sso.Reason(err)
//     (responses.go). No key set yet: 503.
//
// Every response the middleware writes itself carries Cache-Control:
// no-store. refreshjs.go serves the script that refreshes a page's token.
//
// # Decisions SPEC.md leaves open
//
//   - Two access cookies with different valid sessions are ErrAmbiguous,
//     public reason "malformed" (SPEC.md's list has no better word). Any
//     request with two or more access cookies gets Set-Cookie headers
//     expiring the name on every prefix of its path, with the cookie domain
//     and host-only.
//   - A redirect loop (two rounds to /refresh within 60 s, counted in a
//     host-only "canopy-loop" cookie, still refused) ends in a 500 page that
//     names the cause: every cause is a deployment fault the user cannot fix.
//   - An expired session while the issuer's /healthz fails (probed with a
//     2 s timeout, cached 5 s) gets a 503 "sign-in service unavailable" page
//     instead of a redirect into the dead issuer.
//   - Authorize errors give 403; a *ForbiddenError's Message is shown on the
//     page, any other error a generic text. A *StepUpError (RequireAMR,
//     MaxAuthAge) sends a browser to {login_uri}?prompt=login&return_to=…,
//     noting the time in a host-only "canopy-step-up" cookie; a sign-in made
//     after that which still falls short gets a 403 page naming what is
//     needed, not another round. An API request gets 401 with RFC 9470's
//     error="insufficient_user_authentication" and a JSON body with
//     login_url, max_age and required_amr. AllOf lets a plain refusal win
//     over a step-up, and merges step-ups.
//   - Optional lets every request without a valid token through as anonymous
//     and never redirects, even when no key set is loaded.
package ssohttp
