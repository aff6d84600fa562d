package store

import "strings"

// A linked session is a session on another of the issuer's root domains,
// begun from a session on the primary (its root) by the hop between them.
// Its id is the root's id, LinkSep, the other domain's tag and LinkSep and
// a random part, so the family is written in the ids themselves: no
// record links them, a revocation finds the whole family by prefix, and a
// relying service can see which sessions belong together. Session ids are
// base64url, which never holds LinkSep.
const LinkSep = "~"

// LinkedSessionID makes a new id for a session linked to root on the
// domain tagged tag (base64url, no LinkSep).
func LinkedSessionID(root, tag string) string {
	return root + LinkSep + tag + LinkSep + RandomToken(12)
}

// RootSessionID is the root of sid's family: sid itself when it is not linked.
func RootSessionID(sid string) string {
	root, _, _ := strings.Cut(sid, LinkSep)
	return root
}

// SessionDomainTag is the domain tag of a linked session, "" for a root.
func SessionDomainTag(sid string) string {
	_, rest, ok := strings.Cut(sid, LinkSep)
	if !ok {
		return ""
	}
	tag, _, _ := strings.Cut(rest, LinkSep)
	return tag
}
