package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// The forms of second factors and the password change, in TestCSRF.
func init() {
	csrfTargets = append(csrfTargets,
		csrfTarget{name: "second factor", path: "/login/otp", rerender: true, prepare: func(t *testing.T, h *harness, a *browser, n int) (url.Values, func() bool) {
			name := fmt.Sprintf("otp%d", n)
			u := h.createUser(name, "correct horse")
			h.enableTOTP(u, "abcde-fghij")
			a.passwordStep(name, "correct horse", "")
			return url.Values{"code": {"abcde-fghij"}}, func() bool { return h.sessionCount(u.ID) > 0 }
		}},
		csrfTarget{name: "totp enrolment", path: "/account/totp", okStatus: http.StatusOK, prepare: func(t *testing.T, h *harness, a *browser, n int) (url.Values, func() bool) {
			name := fmt.Sprintf("enrol%d", n)
			u := h.createUser(name, "correct horse")
			a.login(name, "correct horse")
			secret, enrol := a.enrolForm(t)
			return url.Values{"code": {h.codeAt(secret, 0)}, "enrol": {enrol}, "password": {"correct horse"}}, func() bool {
				_, err := h.store.TOTP(context.Background(), u.ID)
				return err == nil
			}
		}},
		csrfTarget{name: "totp removal", path: "/account/totp/remove", prepare: func(t *testing.T, h *harness, a *browser, n int) (url.Values, func() bool) {
			name := fmt.Sprintf("rm%d", n)
			u := h.createUser(name, "correct horse")
			secret := h.enableTOTP(u)
			h.clock.Advance(30 * time.Second)
			a.loginTOTP(name, "correct horse", h.codeAt(secret, 0))
			return url.Values{"password": {"correct horse"}}, func() bool {
				_, err := h.store.TOTP(context.Background(), u.ID)
				return err != nil
			}
		}},
		csrfTarget{name: "new recovery codes", path: "/account/recovery-codes", okStatus: http.StatusOK, prepare: func(t *testing.T, h *harness, a *browser, n int) (url.Values, func() bool) {
			name := fmt.Sprintf("codes%d", n)
			u := h.createUser(name, "correct horse")
			h.enableTOTP(u, "abcde-fghij")
			a.passwordStep(name, "correct horse", "")
			if r := a.code("abcde-fghij"); r.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign-in: %d", r.StatusCode)
			}
			return url.Values{"password": {"correct horse"}}, func() bool {
				n, _ := h.store.RecoveryCodesLeft(context.Background(), u.ID)
				return n == 10
			}
		}},
		csrfTarget{name: "password change", path: "/account/password", okStatus: http.StatusOK, prepare: func(t *testing.T, h *harness, a *browser, n int) (url.Values, func() bool) {
			name := fmt.Sprintf("pw%d", n)
			u := h.createUser(name, "correct horse")
			a.login(name, "correct horse")
			return url.Values{"current_password": {"correct horse"}, "new_password": {"battery staple"}, "signout_others": {"on"}}, func() bool {
				got, _ := h.store.UserByID(context.Background(), u.ID)
				return got.PasswordHash != u.PasswordHash
			}
		}},
	)
}

// The passkey removal form, in TestCSRF.
func init() {
	csrfTargets = append(csrfTargets, csrfTarget{name: "passkey removal", path: "/account/passkeys/remove",
		prepare: func(t *testing.T, h *harness, a *browser, n int) (url.Values, func() bool) {
			name := fmt.Sprintf("pk%d", n)
			u := h.createUser(name, "correct horse")
			a.login(name, "correct horse")
			k := newSoftKey(t)
			a.addPasskey(k, "key")
			return url.Values{"id": {b64(k.id)}, "password": {"correct horse"}}, func() bool {
				keys, _ := h.store.Passkeys(context.Background(), u.ID)
				return len(keys) == 0
			}
		}})
}
