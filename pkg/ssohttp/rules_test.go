package ssohttp

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
	"github.com/canopy-sso/canopy/pkg/sso"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// TestRules: each rule helper alone and combined, on claims as a token
// carries them. A group refusal is a 403 naming the group; an amr or age
// refusal is a step-up describing what would do.
func TestRules(t *testing.T) {
	now := ssotest.Epoch
	clock := func() time.Time { return now }
	at := func(ago time.Duration) int64 { return now.Add(-ago).Unix() }
	tests := []struct {
		name      string
		rule      Rule
		claims    sso.Claims
		forbidden string       // the ForbiddenError message, or ""
		stepUp    *StepUpError // the StepUpError, or nil
		other     error        // any other error
	}{
		{"group member", RequireGroup("admins"), sso.Claims{Groups: []string{"admins", "ops"}}, "", nil, nil},
		{"group non-member", RequireGroup("admins"), sso.Claims{Groups: []string{"ops"}}, "You need to be in group admins.", nil, nil},
		{"group none at all", RequireGroup("admins"), sso.Claims{}, "You need to be in group admins.", nil, nil},
		{"group case matters", RequireGroup("admins"), sso.Claims{Groups: []string{"Admins"}}, "You need to be in group admins.", nil, nil},
		{"group prefix is not membership", RequireGroup("admin"), sso.Claims{Groups: []string{"admins"}}, "You need to be in group admin.", nil, nil},
		{"any of two groups", RequireGroup("admins", "ops"), sso.Claims{Groups: []string{"ops"}}, "", nil, nil},
		{"neither of two groups", RequireGroup("admins", "ops"), sso.Claims{Groups: []string{"dev"}}, "You need to be in group admins or ops.", nil, nil},
		{"amr otp present", RequireAMR(wire.AMROTP), sso.Claims{AMR: []string{"pwd", "otp"}}, "", nil, nil},
		{"amr password only", RequireAMR(wire.AMROTP), sso.Claims{AMR: []string{"pwd"}}, "", &StepUpError{AMR: []string{"otp"}}, nil},
		{"amr missing", RequireAMR(wire.AMRHardware), sso.Claims{}, "", &StepUpError{AMR: []string{"hwk"}}, nil},
		{"amr any of", RequireAMR(wire.AMROTP, wire.AMRHardware), sso.Claims{AMR: []string{"hwk"}}, "", nil, nil},
		{"amr neither", RequireAMR(wire.AMROTP, wire.AMRHardware), sso.Claims{AMR: []string{"pwd"}}, "", &StepUpError{AMR: []string{"otp", "hwk"}}, nil},
		{"age fresh", maxAuthAge(10*time.Minute, clock), sso.Claims{AuthTime: at(time.Minute)}, "", nil, nil},
		{"age at the limit", maxAuthAge(10*time.Minute, clock), sso.Claims{AuthTime: at(10 * time.Minute)}, "", nil, nil},
		{"age one second over", maxAuthAge(10*time.Minute, clock), sso.Claims{AuthTime: at(10*time.Minute + time.Second)}, "", &StepUpError{MaxAge: 10 * time.Minute}, nil},
		{"age without auth_time", maxAuthAge(10*time.Minute, clock), sso.Claims{}, "", &StepUpError{MaxAge: 10 * time.Minute}, nil},
		{"age in the future is fresh", maxAuthAge(10*time.Minute, clock), sso.Claims{AuthTime: at(-time.Minute)}, "", nil, nil},
		{"all satisfied", AllOf(RequireGroup("admins"), RequireAMR(wire.AMROTP), maxAuthAge(time.Hour, clock)),
			sso.Claims{Groups: []string{"admins"}, AMR: []string{"pwd", "otp"}, AuthTime: at(time.Minute)}, "", nil, nil},
		{"all: group refusal wins over step-up", AllOf(RequireAMR(wire.AMROTP), RequireGroup("admins")),
			sso.Claims{AMR: []string{"pwd"}}, "You need to be in group admins.", nil, nil},
		{"all: step-ups merged", AllOf(RequireAMR(wire.AMROTP), maxAuthAge(time.Hour, clock), maxAuthAge(10*time.Minute, clock), RequireAMR(wire.AMRHardware)),
			sso.Claims{AMR: []string{"pwd"}, AuthTime: at(2 * time.Hour)}, "", &StepUpError{AMR: []string{"otp", "hwk"}, MaxAge: 10 * time.Minute}, nil},
		{"all: other errors pass through", AllOf(func(*http.Request, *sso.Claims) error { return errBoom }, RequireAMR(wire.AMROTP)),
			sso.Claims{}, "", nil, errBoom},
		{"all of nothing", AllOf(), sso.Claims{}, "", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.rule(req("GET", "/"), &tc.claims)
			var fe *ForbiddenError
			var su *StepUpError
			switch {
			case tc.forbidden != "":
				if !errors.As(err, &fe) || fe.Message != tc.forbidden || !errors.Is(err, ErrForbidden) {
					t.Fatalf("err = %v, want ForbiddenError %q", err, tc.forbidden)
				}
			case tc.stepUp != nil:
				if !errors.As(err, &su) || !slices.Equal(su.AMR, tc.stepUp.AMR) || su.MaxAge != tc.stepUp.MaxAge ||
					!errors.Is(err, ErrStepUp) || sso.Reason(err) != "step_up" {
					t.Fatalf("err = %#v, want StepUpError %+v", err, tc.stepUp)
				}
			case tc.other != nil:
				if !errors.Is(err, tc.other) {
					t.Fatalf("err = %v, want %v", err, tc.other)
				}
			case err != nil:
				t.Fatalf("err = %v, want none", err)
			}
		})
	}
}

var errBoom = errors.New("boom")

// TestStepUpMiddleware: what a browser and an API client get from the
// middleware when a rule refuses, through net/http and echo alike.
func TestStepUpMiddleware(t *testing.T) {
	authTime := ssotest.Epoch.Add(-time.Hour).Unix()
	sentBefore := "canopy-step-up=" + strconv.FormatInt(authTime-60, 10)
	sentAfter := "canopy-step-up=" + strconv.FormatInt(authTime+60, 10)
	stepUpLogin := loginURL + "?prompt=login&return_to=" + returnAliceAB
	tests := []struct {
		name      string
		rule      Rule
		amr       []any
		nav       bool
		cookie    string // besides the access cookie
		status    int
		location  string
		body      []string // in the body
		setCookie string   // a Set-Cookie header starts with this; "" for none of the step-up cookie
		challenge string   // in WWW-Authenticate
	}{
		{"navigation, amr short: sent to sign in again", RequireAMR(wire.AMROTP), []any{"pwd"}, true, "",
			http.StatusSeeOther, stepUpLogin, nil, "canopy-step-up=" + strconv.FormatInt(ssotest.Epoch.Unix(), 10) + "; Path=/; Max-Age=600; HttpOnly; SameSite=Lax", ""},
		{"navigation, sent before this sign-in: still short", RequireAMR(wire.AMROTP, wire.AMRHardware), []any{"pwd"}, true, sentBefore,
			http.StatusForbidden, "", []string{"A stronger sign-in is needed", "a one-time code or a passkey", "prompt=login"}, "canopy-step-up=; Path=/; Max-Age=0", ""},
		{"navigation, sent after this sign-in: sent again", RequireAMR(wire.AMROTP), []any{"pwd"}, true, sentAfter,
			http.StatusSeeOther, stepUpLogin, nil, "canopy-step-up=", ""},
		{"navigation, too old: sent to sign in again", maxAuthAge(10*time.Minute, ssotest.NewClock().Now), []any{"pwd"}, true, "",
			http.StatusSeeOther, stepUpLogin, nil, "canopy-step-up=", ""},
		{"navigation, satisfied after step-up: admitted, cookie cleared", RequireAMR(wire.AMROTP), []any{"pwd", "otp"}, true, sentBefore,
			http.StatusOK, "", []string{"hello alice"}, "canopy-step-up=; Path=/; Max-Age=0", ""},
		{"navigation, satisfied: admitted", RequireAMR(wire.AMROTP), []any{"pwd", "otp"}, true, "",
			http.StatusOK, "", []string{"hello alice"}, "", ""},
		{"navigation, not in the group: 403 page", RequireGroup("admins"), []any{"pwd"}, true, "",
			http.StatusForbidden, "", []string{"You need to be in group admins."}, "", ""},
		{"API, amr short: 401 insufficient_user_authentication", RequireAMR(wire.AMROTP), []any{"pwd"}, false, "",
			http.StatusUnauthorized, "", []string{`"error":"insufficient_user_authentication"`, `"reason":"step_up"`,
				`"login_url":"` + stepUpLogin + `"`, `"required_amr":["otp"]`}, "",
			`Bearer realm="canopy", error="insufficient_user_authentication", error_description="A sign-in with a one-time code is required"`},
		{"API, too old: 401 with max_age", maxAuthAge(10*time.Minute, ssotest.NewClock().Now), []any{"pwd"}, false, "",
			http.StatusUnauthorized, "", []string{`"error":"insufficient_user_authentication"`, `"max_age":600`}, "",
			`error_description="A more recent sign-in is required", max_age=600`},
		{"API, not in the group: 403 JSON", RequireGroup("admins"), []any{"pwd"}, false, "",
			http.StatusForbidden, "", []string{`{"error":"forbidden"}`}, "", ""},
	}
	for _, rn := range runners {
		for _, tc := range tests {
			t.Run(rn.name+"/"+tc.name, func(t *testing.T) {
				f := newMWFixture(t)
				f.cfg.Authorize = tc.rule
				line := "canopy=" + f.token(t, "alice", "amr", tc.amr, "auth_time", authTime)
				if tc.cookie != "" {
					line += "; " + tc.cookie
				}
				opts := []func(*http.Request){cookieLine(line)}
				if tc.nav {
					opts = append(opts, browser())
				} else {
					opts = append(opts, header("Accept", "application/json"))
				}
				rec := rn.serve(t, f, req("GET", "/a/b?x=1&y=2", opts...))
				if rec.Code != tc.status || rec.Header().Get("Location") != tc.location {
					t.Fatalf("status %d Location %q, want %d %q\n%s", rec.Code, rec.Header().Get("Location"), tc.status, tc.location, rec.Body)
				}
				for _, want := range tc.body {
					if !strings.Contains(rec.Body.String(), want) {
						t.Errorf("body lacks %q:\n%s", want, rec.Body)
					}
				}
				var stepUpCookies []string
				for _, sc := range rec.Result().Header.Values("Set-Cookie") {
					if strings.HasPrefix(sc, "canopy-step-up=") {
						stepUpCookies = append(stepUpCookies, sc)
					}
				}
				switch {
				case tc.setCookie == "" && len(stepUpCookies) > 0:
					t.Errorf("Set-Cookie %q, want none for the step-up cookie", stepUpCookies)
				case tc.setCookie != "" && (len(stepUpCookies) != 1 || !strings.HasPrefix(stepUpCookies[0], tc.setCookie)):
					t.Errorf("Set-Cookie %q, want one starting %q", stepUpCookies, tc.setCookie)
				}
				if got := rec.Header().Get("WWW-Authenticate"); !strings.Contains(got, tc.challenge) || (tc.challenge == "" && got != "") {
					t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
				}
				if rec.Code != http.StatusOK && rec.Header().Get("Cache-Control") != "no-store" {
					t.Errorf("Cache-Control %q, want no-store", rec.Header().Get("Cache-Control"))
				}
				if !tc.nav && rec.Code == http.StatusUnauthorized {
					var body map[string]any
					if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
						t.Errorf("401 body is not JSON: %v", err)
					}
				}
			})
		}
	}
}

// TestStepUpErrorHandler: an ErrorHandler renders the step-up refusals too,
// with the status the middleware would send and the *StepUpError.
func TestStepUpErrorHandler(t *testing.T) {
	f := newMWFixture(t)
	f.cfg.Authorize = RequireAMR(wire.AMRHardware)
	var gotStatus int
	var gotErr error
	f.cfg.ErrorHandler = func(w http.ResponseWriter, r *http.Request, status int, err error) {
		gotStatus, gotErr = status, err
		w.WriteHeader(status)
	}
	tok := f.token(t, "alice", "amr", []any{"pwd"}, "auth_time", ssotest.Epoch.Unix())
	rec := runners[0].serve(t, f, req("GET", "/", cookieLine("canopy="+tok), header("Accept", "application/json")))
	var su *StepUpError
	if rec.Code != http.StatusUnauthorized || gotStatus != http.StatusUnauthorized || !errors.As(gotErr, &su) || su.AMR[0] != "hwk" {
		t.Fatalf("status %d, handler got %d %v", rec.Code, gotStatus, gotErr)
	}
	if !strings.Contains(rec.Header().Get("WWW-Authenticate"), "insufficient_user_authentication") {
		t.Fatalf("WWW-Authenticate %q is set before the handler runs", rec.Header().Get("WWW-Authenticate"))
	}
}
