package server

import (
	"html/template"
	"time"
)

// What each page's template sees: one type per page in issuer/web/templates,
// each naming its template, so that a page is given exactly its own fields.

// view is the data of one page.
type view interface {
	template() string // the template's name: its file in issuer/web/templates without .html
	frameData() *frame
}

// frame is what the layout shows around every page.
type frame struct {
	Domain string // set by page
	User   string // the signed-in user's name, if the page shows it
}

func (f *frame) frameData() *frame { return f }

// loginView is the password form.
type loginView struct {
	frame
	CSRF, ReturnTo, Error string
	Username              string // as typed, to fill the form again
	RegistrationOpen      bool
	Reauth                bool // prompt=login: sign in again even with a session
	PasswordLogin         bool // the password form is shown (--password-login on)
	Upstreams             []upstreamButton
}

// upstreamButton is one provider's button on the sign-in page.
type upstreamButton struct {
	Label, Href string
}

func (*loginView) template() string { return "login" }

// secondFactorView is the second step of a sign-in (/login/otp).
type secondFactorView struct {
	frame
	CSRF, ReturnTo, Error string
	Username              string
	TOTPOn                bool // the user has an authenticator app
	HasPasskeys           bool // the user has passkeys
}

func (*secondFactorView) template() string { return "login_otp" }

// registerView is the sign-up form.
type registerView struct {
	frame
	CSRF, ReturnTo, Error        string
	Username                     string // as typed
	UsernameError, PasswordError string
	MinPassword                  int
}

func (*registerView) template() string { return "register" }

// logoutView is the sign-out confirmation.
type logoutView struct {
	frame
	CSRF, ReturnTo, Error string
}

func (*logoutView) template() string { return "logout" }

// messageView is a page of text with one link: errors and notices.
type messageView struct {
	frame
	Title, Message, Link, LinkText string
	// Retry, when > 0, reloads the page after this many seconds (a 503
	// with Retry-After).
	Retry int
}

func (*messageView) template() string { return "message" }

// accountView is the account page.
type accountView struct {
	frame
	CSRF          string
	Now           time.Time
	UserPage      string // the user's own site
	AccountURL    string // the account page's absolute URL, for return_to
	Recent        bool   // signed in recently enough for sensitive changes
	Sessions      []sessionView
	Events        []eventView
	TOTPOn        bool
	TOTPSince     time.Time
	RecoveryLeft  int
	PasskeyCount  int
	PasswordError string
	FactorError   string // a refused change of the second factors
	Notice        string
	HasPassword   bool           // the account has a password (one made through a provider may not)
	Upstreams     []upstreamView // configured providers, linked or not
	UpstreamError string         // a refused link or unlink
}

func (*accountView) template() string { return "account" }

// totpView is the authenticator app's enrolment form.
type totpView struct {
	frame
	CSRF, Error string
	QR          template.URL // a data: URI made by otpcode, never user input
	Secret      string
	Enrol       string // the signed enrolment token
}

func (*totpView) template() string { return "totp" }

// recoveryView shows new recovery codes, once.
type recoveryView struct {
	frame
	Codes  []string
	Notice string
}

func (*recoveryView) template() string { return "recovery" }

// passkeysView is the account's passkeys page.
type passkeysView struct {
	frame
	CSRF         string
	Now          time.Time
	AccountURL   string // the page's absolute URL, for return_to
	Recent       bool
	Passkeys     []passkeyView
	RecoveryLeft int
	Error        string
}

func (*passkeysView) template() string { return "passkeys" }

type sessionView struct {
	ID, Device, IP    string
	Created, LastUsed time.Time
	Current           bool
	// Domain is the other root domain of a linked session, "" for a
	// primary one. Current marks this browser's session and its linked ones.
	Domain string
}

type eventView struct {
	At   time.Time
	What string
	IP   string
}

// passkeyView is one passkey on the account's passkeys page.
type passkeyView struct {
	ID, Name string
	Created  time.Time
	LastUsed *time.Time
}
