package ssohttp

import (
	"net/http"
	"strings"
	"time"
)

// maxCookieTokens bounds how many same-named cookies are verified; more than
// this is no accident, and each costs a signature check.
const maxCookieTokens = 8

// maxExpirePaths bounds the expiring Set-Cookie paths for one request.
const maxExpirePaths = 32

// cookieValues returns the values of the cookies named exactly name, in the
// order the request carries them, at most limit of them, and how many there
// were. Go's Request.Cookie trims spaces around names, so "canopy " would pass
// for "canopy"; here only the separator's own space after ';' is skipped.
func cookieValues(h http.Header, name string, limit int) (vals []string, n int) {
	for _, line := range h["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimLeft(part, " \t")
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			n++
			if len(vals) < limit {
				vals = append(vals, v)
			}
		}
	}
	return vals, n
}

// bearerToken returns the token of an "Authorization: Bearer" header, and
// whether there was one; any other scheme is not ours (a proxied app may use
// Basic) and is left alone.
func bearerToken(h http.Header) (string, bool) {
	v := h.Get("Authorization")
	const scheme = "bearer "
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	return strings.Trim(v[len(scheme):], " "), true
}

// cookiePaths returns every prefix of the request path that a cookie Path
// could have matched, with and without a trailing slash, "/" first. The
// request does not say which Path each cookie was set with, so a stray cookie
// is expired on all of them.
func cookiePaths(path string) []string {
	if path == "" || path[0] != '/' {
		path = "/"
	}
	out := []string{"/"}
	add := func(p string) {
		if p != out[len(out)-1] && len(out) < maxExpirePaths && validCookiePath(p) {
			out = append(out, p)
		}
	}
	for i := 1; i < len(path); i++ {
		if path[i] == '/' {
			add(path[:i])
			add(path[:i+1])
		}
	}
	add(path)
	if !strings.HasSuffix(path, "/") {
		add(path + "/")
	}
	return out
}

// validCookiePath reports whether p can be a Path attribute as it is
// (net/http would otherwise drop bytes and log about it).
func validCookiePath(p string) bool {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c >= 0x7f || c == ';' {
			return false
		}
	}
	return true
}

// expireCookies adds to w the Set-Cookie headers that delete name on every
// path prefix, once with Domain=domain and once host-only. A __Host- cookie
// can only exist host-only at "/", and a Domain attribute would make the
// browser drop the deletion.
func expireCookies(w http.ResponseWriter, name, domain, path string, secure bool) {
	paths := cookiePaths(path)
	host := strings.HasPrefix(name, "__Host-")
	if host {
		paths = paths[:1]
	}
	for _, p := range paths {
		if !host && domain != "" {
			http.SetCookie(w, expiredCookie(name, p, domain, secure))
		}
		http.SetCookie(w, expiredCookie(name, p, "", secure))
	}
}

func expiredCookie(name, path, domain string, secure bool) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    "",
		Path:     path,
		Domain:   domain,
		MaxAge:   -1, // "Max-Age=0"
		Expires:  time.Unix(0, 0),
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// secureName reports whether a cookie name can only exist with Secure.
func secureName(name string) bool {
	return strings.HasPrefix(name, "__Secure-") || strings.HasPrefix(name, "__Host-")
}
