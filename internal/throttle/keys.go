package throttle

import (
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// maxTextIPKey bounds the key of an ipaddress that is not an address.
const maxTextIPKey = 64

// UserKey returns the throttle key of a typed username, so that every
// spelling a directory's matching rules treat as one name lands in one
// bucket:
//
//   - NFKC, then a case fold, then NFKC again, repeated until nothing
//     changes (at most a few rounds), so key(key(s)) == key(s) for every
//     string: ｊｄｏｅ, 𝐣𝐝𝐨𝐞, ⓙⓓⓞⓔ and JDOE all give jdoe. The fold maps
//     each rune to the lower case of the smallest rune of its simple case
//     folding orbit, so two names fold alike exactly when strings.EqualFold
//     says so (cases.Fold alone is not idempotent after NFKC, and precis
//     rejects the mathematical letters an attacker would use);
//   - as in LDAP's insignificant-space and "map to nothing" rules (RFC 4518),
//     leading and trailing spaces are dropped, inner runs of white space count
//     as one space, and invisible format and control characters (soft hyphen,
//     zero-width space, …) are ignored;
//   - a `DOMAIN\` prefix is removed (cut at the last '\'); on the staff
//     endpoint an `@realm` suffix is removed too (cut at the first '@'), so
//     JDOE, EXAMPLE\jdoe and jdoe@corp share a bucket there. On the user
//     endpoint the realm stays: customers log in with their e-mail address,
//     and john@a.com and john@b.com are different people. A cut that would
//     leave nothing is not made ("@x.org" and `a\` stay whole).
//
// The empty username gives "" (not counted); any other gives a non-empty key.
func UserKey(username string, staff bool) string {
	if username == "" {
		return ""
	}
	if plainASCII(username, staff) {
		return username
	}
	k := foldNormal(username)
	if k == "" {
		return username // only spaces or invisible characters
	}
	if staff {
		if i := strings.IndexByte(k, '@'); i >= 0 {
			if p := strings.TrimSuffix(k[:i], " "); p != "" {
				k = p
			}
		}
	}
	if i := strings.LastIndexByte(k, '\\'); i >= 0 {
		if p := strings.TrimPrefix(k[i+1:], " "); p != "" {
			k = p
		}
	}
	return k
}

// foldNormal iterates NFKC and canon to a fixed point. Real names settle in
// one round; the bound only guards against a pathological input that never
// settles (none is known), which then keeps its last value.
func foldNormal(s string) string {
	k := norm.NFKC.String(s)
	for range 4 {
		next := norm.NFKC.String(canon(k))
		if next == k {
			break
		}
		k = next
	}
	return k
}

// NormalStaffName reports whether a typed staff username is already in NFKC
// normal form. Kayako links staff by the typed name, so a name that NFKC would
// change (ｊｄｏｅ, 𝐣𝐝𝐨𝐞) must be refused before any backend call: accepted, it
// would log in as jdoe and create a second staff account.
func NormalStaffName(username string) bool {
	return norm.NFKC.IsNormalString(username)
}

// plainASCII reports whether s is already its own key: printable ASCII
// without upper case, space or '\', and without '@' on the staff endpoint.
func plainASCII(s string, staff bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '\\' || (staff && c == '@') || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// canon folds case, drops invisible characters, maps white space to ' ',
// collapses runs of spaces and trims them.
func canon(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case isSpace(r):
			space = b.Len() > 0
			continue
		case ignorable(r):
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldRune maps r to the lower case of the smallest rune in its simple case
// folding orbit: a function of the orbit, hence of EqualFold equivalence.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return unicode.ToLower(m)
}

func isSpace(r rune) bool {
	return unicode.IsSpace(r) || unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp)
}

// ignorable approximates RFC 4518 §2.2 "mapped to nothing".
func ignorable(r rune) bool {
	switch {
	case r == 0x034F, r == 0x1806, 0x180B <= r && r <= 0x180D,
		0xFE00 <= r && r <= 0xFE0F, r == 0xFFFC:
		return true
	}
	return unicode.In(r, unicode.Cc, unicode.Cf)
}

// IPKey returns the throttle key of an end-user address: an IPv4 address per
// address, an IPv6 address per /64 (an IPv4-mapped IPv6 address counts as the
// IPv4 address; a zone is ignored). A value that is not an address
// (203.000.113.8, "203.0.113.9, 10.0.0.1", ip:port, unknown) is counted by
// its trimmed, lower-cased text, cut to 64 bytes, so an attacker cannot leave
// the per_ip count by sending garbage. Only an empty value gives "", which is
// not counted.
func IPKey(ip string) string {
	t := strings.TrimSpace(ip)
	if t == "" {
		return ""
	}
	a, err := netip.ParseAddr(t)
	if err != nil {
		return textIPKey(t)
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return textIPKey(t)
	}
	return p.String()
}

func textIPKey(t string) string {
	t = strings.ToLower(t)
	if len(t) > maxTextIPKey {
		t = t[:maxTextIPKey]
		for len(t) > 0 && !utf8.ValidString(t) {
			t = t[:len(t)-1]
		}
	}
	return t
}
