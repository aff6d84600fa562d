package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// deviceTTL is how long a device cookie vouches for its browser: about a
// year, within the 400 days browsers allow a cookie.
const deviceTTL = 365 * 24 * time.Hour

// setDeviceCookie leaves, at a successful sign-in, a host-only cookie naming
// the account and signed with the server's device key (OWASP's "device
// cookie"): the browser's next sign-ins to that account are counted on their
// own by the throttle and never slowed by strangers' failures.
func (s *Server) setDeviceCookie(c echo.Context, username string, now time.Time) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return // without a device cookie, the browser is throttled as any other
	}
	payload := username + "." + base64.RawURLEncoding.EncodeToString(nonce) + "." + strconv.FormatInt(now.Unix(), 10)
	c.SetCookie(&http.Cookie{Name: s.cookies.Device, Value: payload + "." + s.deviceMAC(payload), Path: "/",
		MaxAge: int(deviceTTL / time.Second), Secure: s.cfg.Secure(), HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// deviceFor returns the id of the request's device cookie when it is valid
// and names account, else "". It reads no database: a throttled attempt is
// answered from memory.
func (s *Server) deviceFor(c echo.Context, account string) string {
	ck, err := c.Cookie(s.cookies.Device)
	if err != nil || len(ck.Value) > 256 {
		return ""
	}
	payload, mac, ok := cutLast(ck.Value, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(s.deviceMAC(payload))) {
		return ""
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 3 || parts[0] != account {
		return ""
	}
	issued, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return ""
	}
	at := time.Unix(issued, 0)
	if now := s.now(); at.After(now.Add(time.Minute)) || now.Sub(at) > deviceTTL {
		return ""
	}
	return parts[1]
}

func (s *Server) deviceMAC(payload string) string {
	m := hmac.New(sha256.New, s.deviceKey)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
