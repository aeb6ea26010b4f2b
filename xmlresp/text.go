package xmlresp

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sanitize returns s with everything XML 1.0 cannot carry taken out, so that
// libxml (Kayako's parser) never rejects the document:
//
//   - each byte that is not part of valid UTF-8 becomes U+FFFD (this also
//     covers UTF-8-encoded surrogates, which Go decodes as invalid bytes);
//   - C0 control characters other than TAB, LF and CR are removed;
//   - U+FFFE and U+FFFF are removed.
//
// Everything else XML 1.0 allows is kept, including U+FFFD, DEL and the C1
// controls. A string that needs no change is returned as is, without
// allocating.
func Sanitize(s string) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !xmlASCII(c) {
				return sanitizeFrom(s, i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == 0xFFFE || r == 0xFFFF {
			return sanitizeFrom(s, i)
		}
		i += size
	}
	return s
}

// xmlASCII reports whether the ASCII byte c is an XML 1.0 character.
func xmlASCII(c byte) bool {
	return c >= 0x20 || c == '\t' || c == '\n' || c == '\r'
}

// sanitizeFrom is the slow path of Sanitize: s[:i] is known to be clean.
func sanitizeFrom(s string, i int) string {
	var b strings.Builder
	// Replacing an invalid byte with U+FFFD can triple it; most strings lose
	// a character or two, so len(s) is the usual final size.
	b.Grow(len(s))
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if xmlASCII(c) {
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
		case r == 0xFFFE || r == 0xFFFF:
			// removed
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Truncate returns the longest prefix of s that has at most max runes
// (Unicode code points); max <= 0 gives "".
//
// Runes, not bytes, because Kayako's columns are MySQL VARCHAR(n), which
// counts characters: a byte limit would cut non-Latin names far too short,
// and a cut inside a multi-byte sequence would make the document invalid.
// Runes, not grapheme clusters, because that is what MySQL counts; a cut may
// separate a base letter from a following combining mark, which is still
// valid text. Each byte of invalid UTF-8 counts as one rune (as in a range
// loop), so the result never ends inside a valid multi-byte sequence.
func Truncate(s string, max int) string {
	if max <= 0 {
		return ""
	}
	if len(s) <= max { // a rune has at least one byte
		return s
	}
	n := 0
	for i := range s {
		if n == max {
			return s[:i]
		}
		n++
	}
	return s
}

// clean applies the field rule of every text child: sanitise, trim
// surrounding white space, truncate to max runes. A cut can expose white
// space that was inside the text, so the end is trimmed once more: a value
// never ends in white space.
func clean(s string, max int) string {
	s = strings.TrimSpace(Sanitize(s))
	if t := Truncate(s, max); len(t) != len(s) {
		s = strings.TrimRightFunc(t, unicode.IsSpace)
	}
	return s
}

// escapedLen is the length of s after appendEscaped.
func escapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '&', '\r':
			n += 4
		case '<', '>':
			n += 3
		}
	}
	return n
}

// appendEscaped appends s as XML character data. '&' and '<' must be escaped;
// '>' is escaped too so that "]]>" can never appear; CR is written as a
// character reference because a parser turns a literal CR into LF. Quotes need
// no escaping in text content. s must already be sanitised.
func appendEscaped(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\r':
			esc = "&#xD;"
		default:
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, esc...)
		last = i + 1
	}
	return append(dst, s[last:]...)
}
