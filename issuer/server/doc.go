// Package server is the issuer's HTTP interface: sign-up, login, refresh,
// logout, the account page, and the published keys, discovery and revocation feed.
//
// server.go wires it: New builds the Server from Deps, Handler lists every
// route. The two paths that matter most read top to bottom like this.
//
// Login, from the form to Set-Cookie:
//
//  1. login.go: login checks the form's CSRF token (csrf.go: checkCSRF),
//     takes a throttle slot, looks the user up and verifies the password.
//  2. factor.go: hasSecondFactor. With a second factor, startPending
//     (factor_pending.go) answers 303 to /login/otp and the sign-in
//     continues in the factor_*.go files (see factor.go), which end in
//     completePending and so in step 3.
//  3. session.go: startSession stores the session and its refresh token
//     (refresh.go: hashToken), mint signs the access token, and
//     setSessionCookies sets the access cookie on the cookie domain and the
//     refresh cookie host-only.
//  4. login.go: redirectBack answers 303 to the cleaned return URL.
//
// Refresh, from the refresh cookie to new cookies (all in refresh.go, then
// session.go):
//
//  1. refreshRedirect (GET /refresh, the browser flow) or refreshAPI
//     (POST /refresh, fetch() from a relying site, behind corsOrigin).
//     loginForm also calls rotate when only the access token has expired.
//  2. rotate derives the successor token (successor) and lets the store
//     decide the rotation in one step (store.RotateRefresh: rotated,
//     converged within the grace period, reuse, or ended).
//  3. The rotation returns the session's amr and the user's groups, read in
//     its own transaction; session.go: mint signs the new access token,
//     setSessionCookies sets both cookies.
//  4. A refusal (refreshRefused) clears dead cookies (clearDeadCookies) and
//     sends the browser to /login, or answers 401 JSON to fetch().
//
// Elsewhere: current.go finds the signed-in user of a request (currentSession,
// signedIn, recent); render.go renders pages and errors, views.go holds each
// page's data; account*.go, logout.go and register.go are their pages;
// audit.go records events; wellknown.go serves the JWKS, discovery document
// and revocation feed.
package server
