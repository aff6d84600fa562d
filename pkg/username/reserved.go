package username

import "slices"

// builtin is the reserved list of SPEC.md ("Users"), in its order. A name here
// names infrastructure a browser, mail client or certificate authority may
// look for under the cookie domain (autodiscover, mta-sts, wpad, postmaster,
// …) or a host Canopy itself uses, so no user may ever own it.
var builtin = []string{
	"www", "api", "app", "apps", "auth", "login", "logout", "signin", "signup", "register",
	"sso", "id", "account", "accounts", "admin", "administrator", "root", "sys", "system",
	"mail", "email", "smtp", "imap", "pop", "pop3", "mx", "ns", "ns1", "ns2", "dns", "ftp",
	"static", "assets", "cdn", "media", "img", "status", "help", "support", "docs", "blog",
	"dev", "test", "staging", "localhost", "mta-sts", "autodiscover", "autoconfig", "wpad",
	"isatap", "postmaster", "hostmaster", "webmaster", "abuse", "security", "noreply",
	"no-reply", "canopy", "issuer", "relying", "metrics", "health",
}

var builtinSet = func() map[string]struct{} {
	m := make(map[string]struct{}, len(builtin))
	for _, n := range builtin {
		m[n] = struct{}{}
	}
	return m
}()

// Reserved returns a copy of the built-in reserved names, in the order SPEC.md
// lists them, for pages that explain why a name was refused.
func Reserved() []string {
	return slices.Clone(builtin)
}

// IsReserved reports whether name is on the built-in list, ignoring ASCII
// case. It does not check syntax; a name that is not a valid label is simply
// not reserved.
func IsReserved(name string) bool {
	var buf [MaxLen]byte
	key, ok := foldKey(name, &buf)
	if !ok {
		return false
	}
	_, found := builtinSet[string(key)] // no allocation: the compiler looks up by the bytes
	return found
}

// foldKey copies name into buf with ASCII A-Z lowered, so a lookup needs no
// allocation. Names too long to be a label are never in any list.
func foldKey(name string, buf *[MaxLen]byte) ([]byte, bool) {
	if len(name) > MaxLen {
		return nil, false
	}
	b := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return b, true
}
