package xmlresp

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kayako-loginshare/caddy-loginshare/kayako"
)

// ValidEmail reports whether s can be sent to Kayako as an e-mail address: it
// is not empty, contains no white space, is at most EmailMax (255) bytes, is
// made only of characters XML 1.0 allows (so it is emitted unchanged), and
// net/mail.ParseAddress reads it as a bare address (no display name, no
// angle brackets, no comment) equal to s, as the design says. It must also be
// an address Kayako keeps (kayako.ValidEmail: its IsEmailValid and bundled
// is_email, which take ASCII only but also single-label domains such as
// localhost): an address Kayako drops silently would turn a person whose
// only address it is into "Invalid data provided: No Emails" instead of our
// clean failure.
func ValidEmail(s string) bool {
	if s == "" || len(s) > EmailMax || !kayako.ValidEmail(s) {
		return false
	}
	if simpleAddress(s) {
		return true
	}
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 || Sanitize(s) != s {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

// simpleAddress is the allocation-free fast path of ValidEmail. It accepts
// only ASCII dot-atom "@" dot-atom (RFC 5322 atext, no leading, trailing or
// doubled dot), which net/mail.ParseAddress always returns unchanged as a bare
// address; anything else is left to ParseAddress. The test suite checks that
// every address accepted here is accepted by ParseAddress too.
func simpleAddress(s string) bool {
	at := strings.IndexByte(s, '@')
	if at < 0 {
		return false
	}
	return dotAtom(s[:at]) && dotAtom(s[at+1:])
}

// dotAtom reports whether s is an ASCII RFC 5322 dot-atom.
func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if s[i-1] == '.' {
				return false
			}
			continue
		}
		if !asciiAtext(c) {
			return false
		}
	}
	return true
}

// asciiAtext reports whether c is an RFC 5322 atext character.
func asciiAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// CleanEmails returns the valid addresses of in (see ValidEmail), in their
// original order, without case-insensitive duplicates (the first spelling
// wins). Surrounding white space is trimmed before validation; an address
// longer than EmailMax bytes is dropped, never cut. The result is a new slice
// (nil when nothing is valid); in is not modified.
func CleanEmails(in []string) []string {
	return cleanEmails(nil, in)
}

// mapThreshold is the input size above which de-duplication uses a map
// instead of comparing with every address kept so far.
const mapThreshold = 16

// cleanEmails appends the clean addresses of in to dst[:0].
func cleanEmails(dst, in []string) []string {
	dst = dst[:0]
	var seen map[string]struct{}
	if len(in) > mapThreshold {
		seen = make(map[string]struct{}, len(in))
	}
next:
	for _, e := range in {
		e = strings.TrimSpace(e)
		if !ValidEmail(e) {
			continue
		}
		if seen != nil {
			k := foldKey(e)
			if _, dup := seen[k]; dup {
				continue
			}
			seen[k] = struct{}{}
		} else {
			for _, k := range dst {
				if strings.EqualFold(k, e) {
					continue next
				}
			}
		}
		dst = append(dst, e)
	}
	return dst
}

// foldKey maps s to a string that is equal for a and b exactly when
// strings.EqualFold(a, b): every rune is replaced by the smallest rune of its
// simple case-folding orbit. s must be valid UTF-8.
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < m {
				m = f
			}
		}
		if m < utf8.RuneSelf {
			b.WriteByte(byte(m))
		} else {
			b.WriteRune(m)
		}
	}
	return b.String()
}
