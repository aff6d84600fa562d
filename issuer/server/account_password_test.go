package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestChangePassword: the account page changes the password only with the
// current one and a new one that meets the policy; a change keeps this
// session and ends every other, and only the new password signs in.
func TestChangePassword(t *testing.T) {
	h := newHarness(t, options{})
	alice := h.createUser("alice", "correct horse")
	b, other := h.browser(), h.browser()
	b.login("alice", "correct horse")
	other.login("alice", "correct horse")
	otherSID := other.sid()
	change := func(current, next string) *response {
		return b.post("/account/password", url.Values{"current_password": {current}, "new_password": {next}, "signout_others": {"on"}, "csrf_token": {b.token()}})
	}
	for _, tc := range []struct {
		name, current, next string
		status              int
		msg                 string
	}{
		{"wrong current password", "wrong horse", "battery staple", http.StatusUnauthorized, "current password is not right"},
		{"empty current password", "", "battery staple", http.StatusUnauthorized, "current password is not right"},
		{"new password too short", "correct horse", "short", http.StatusBadRequest, "at least"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := change(tc.current, tc.next)
			if r.StatusCode != tc.status || !strings.Contains(r.body, tc.msg) {
				t.Fatalf("status %d, want %d with %q\n%s", r.StatusCode, tc.status, tc.msg, r.body)
			}
			if !h.sessionActive(otherSID) {
				t.Fatal("a refused change ended the other session")
			}
		})
	}
	r := change("correct horse", "battery staple")
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Your password is changed") {
		t.Fatalf("change: %d\n%s", r.StatusCode, r.body)
	}
	if !h.sessionActive(b.sid()) || h.sessionActive(otherSID) {
		t.Fatalf("after the change: this session active %v, other %v; want true, false", h.sessionActive(b.sid()), h.sessionActive(otherSID))
	}
	if r := h.browser().post("/login", url.Values{"username": {"alice"}, "password": {"correct horse"}, "csrf_token": {h.browser().token()}}); r.StatusCode == http.StatusSeeOther {
		t.Fatal("the old password still signs in")
	}
	h.browser().login("alice", "battery staple")
	if n := h.sessionCount(alice.ID); n != 2 {
		t.Fatalf("%d sessions, want 2 (this one and the new sign-in)", n)
	}
}

// TestChangePasswordThrottled: wrong current passwords count as failed
// sign-ins of the account from this address.
func TestChangePasswordThrottled(t *testing.T) {
	h := newHarness(t, options{})
	h.createUser("alice", "correct horse")
	b := h.browser()
	b.login("alice", "correct horse")
	var last int
	for range 8 {
		last = b.post("/account/password", url.Values{"current_password": {"wrong"}, "new_password": {"battery staple"},
			"csrf_token": {b.token()}}).StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("after 8 wrong current passwords: %d, want 429", last)
	}
}
