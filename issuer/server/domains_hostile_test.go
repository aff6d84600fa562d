package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// hopCase is a row of testdata/domains/hop_hostile.json: an attack on the
// hop and the answer it must get.
type hopCase struct {
	Name   string `json:"name"`
	Attack string `json:"attack"`
	Status int    `json:"status"`
	Text   string `json:"text"`
}

// startHop runs a hop on domainURL for back up to the hand-over URL the
// primary sends the browser to, without opening it.
func (b *mbrowser) startHop(domainURL, back string) string {
	b.h.t.Helper()
	r := b.do(http.MethodGet, domainURL+"/refresh?return_to="+url.QueryEscape(back), nil)
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, b.h.cfg.URL+wire.PathAuthorize) {
		b.h.t.Fatalf("hop start on %s: %d to %q", domainURL, r.StatusCode, loc)
	}
	r = b.do(http.MethodGet, loc, nil)
	loc = r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, domainURL+pathHandover+"?") {
		b.h.t.Fatalf("authorize for %s: %d to %q: %s", domainURL, r.StatusCode, loc, r.body)
	}
	return loc
}

// withParam is rawURL with one query parameter replaced (or removed when v is "").
func withParam(t *testing.T, rawURL, k, v string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if v == "" {
		q.Del(k)
	} else {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// TestHopHostile runs every row of testdata/domains/hop_hostile.json: each
// is refused with a page (never a redirect into another hop), and no
// session starts on the other domain.
func TestHopHostile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "domains", "hop_hostile.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []hopCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 10 {
		t.Fatalf("only %d rows", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			h := newHarness(t, domainsOptions(options{}))
			h.createUser("alice", "correct horse battery")
			victim := h.mbrowser()
			victim.login("alice", "correct horse battery")
			attacker := h.mbrowser()
			back := h.appURL()
			// who is the browser whose other.localhost session must not start.
			who := victim
			var r *response
			switch tc.Attack {
			case "replay":
				u := victim.startHop(h.otherURL(), back)
				if first := victim.do(http.MethodGet, u, nil); first.StatusCode != http.StatusSeeOther {
					t.Fatalf("first redemption: %d %s", first.StatusCode, first.body)
				}
				// The same browser starts another hop (its cookie holds a
				// fresh random) and presents the used code again.
				delete(victim.jars["other.localhost"], h.cfg.Cookies().Access)
				delete(victim.jars["other.localhost"], h.cfg.Cookies().Refresh)
				victim.do(http.MethodGet, h.otherURL()+"/refresh?return_to="+url.QueryEscape(back), nil)
				r = victim.do(http.MethodGet, u, nil)
			case "expired":
				u := victim.startHop(h.otherURL(), back)
				h.clock.Advance(codeTTL + 1)
				r = victim.do(http.MethodGet, u, nil)
			case "other_domain":
				third := victim.startHop(h.thirdURL(), back)
				victim.startHop(h.otherURL(), back) // a hop cookie on other.localhost
				r = victim.do(http.MethodGet, strings.Replace(third, h.thirdURL(), h.otherURL(), 1), nil)
			case "other_return_to":
				u := victim.startHop(h.otherURL(), back)
				r = victim.do(http.MethodGet, withParam(t, u, "state", "http://app.other.localhost:8083/elsewhere"), nil)
			case "no_hop_cookie":
				u := victim.startHop(h.otherURL(), back)
				who = attacker
				r = attacker.do(http.MethodGet, u, nil)
			case "foreign_hop_cookie":
				u := victim.startHop(h.otherURL(), back)
				attacker.do(http.MethodGet, h.otherURL()+"/refresh?return_to="+url.QueryEscape(back), nil)
				who = attacker
				r = attacker.do(http.MethodGet, u, nil)
			case "at_primary":
				u := victim.startHop(h.otherURL(), back)
				r = victim.do(http.MethodGet, strings.Replace(u, h.otherURL(), h.cfg.URL, 1), nil)
			case "unknown_code":
				u := victim.startHop(h.otherURL(), back)
				r = victim.do(http.MethodGet, withParam(t, u, "code", randomID(32)), nil)
			case "no_iss":
				u := victim.startHop(h.otherURL(), back)
				r = victim.do(http.MethodGet, withParam(t, u, "iss", ""), nil)
			case "state_unconfigured":
				u := victim.startHop(h.otherURL(), back)
				r = victim.do(http.MethodGet, withParam(t, u, "state", "http://app.evil.localhost/"), nil)
			case "return_to_unconfigured":
				r = victim.do(http.MethodGet, h.otherURL()+"/refresh?return_to="+url.QueryEscape("http://app.evil.localhost/"), nil)
				loc, _ := url.Parse(r.Header.Get("Location"))
				if state := loc.Query().Get("state"); state != h.otherURL()+"/" || strings.Contains(loc.String(), "evil") {
					t.Errorf("hop for an unconfigured return_to carries state %q (%s)", state, loc)
				}
			case "client_unconfigured", "redirect_unconfigured":
				r0 := victim.do(http.MethodGet, h.otherURL()+"/refresh?return_to="+url.QueryEscape(back), nil)
				authz := r0.Header.Get("Location")
				authz = withParam(t, authz, "redirect_uri", "http://evil.localhost:"+h.port+pathHandover)
				if tc.Attack == "client_unconfigured" {
					authz = withParam(t, authz, "client_id", internalClientPrefix+"evil.localhost")
				}
				r = victim.do(http.MethodGet, authz, nil)
			case "token_endpoint":
				u := victim.startHop(h.otherURL(), back)
				pu, _ := url.Parse(u)
				r = attacker.do(http.MethodPost, h.cfg.URL+wire.PathToken, url.Values{"grant_type": {"authorization_code"},
					"code": {pu.Query().Get("code")}, "client_id": {internalClientPrefix + "other.localhost"},
					"redirect_uri": {h.otherURL() + pathHandover}})
			case "loop":
				for range hopLoopCount {
					victim.do(http.MethodGet, h.otherURL()+"/refresh?return_to="+url.QueryEscape(back), nil)
				}
				r = victim.do(http.MethodGet, h.otherURL()+"/refresh?return_to="+url.QueryEscape(back), nil)
			default:
				t.Fatalf("unknown attack %q", tc.Attack)
			}
			if r.StatusCode != tc.Status || !strings.Contains(r.body, tc.Text) {
				t.Fatalf("status %d, want %d with %q; body:\n%s", r.StatusCode, tc.Status, tc.Text, r.body)
			}
			if r.StatusCode >= 400 && r.Header.Get("Location") != "" {
				t.Errorf("a refusal redirects to %q", r.Header.Get("Location"))
			}
			if r.Request.URL.Path == pathHandover && r.Header.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("hand-over answer without Referrer-Policy: no-referrer")
			}
			if tc.Attack != "replay" && who.access("other.localhost") != "" {
				t.Error("a session started on other.localhost")
			}
		})
	}
}
