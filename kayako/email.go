package kayako

import "strings"

// ValidEmail reports whether Kayako 4.98.8 keeps s as one of a user's
// e-mail addresses: its IsEmailValid() refuses any string containing a space
// and then asks the bundled is_email() validator (Dominic Sayers, 3.04.1)
// with its defaults, which accepts an address whose worst diagnosis is below
// "CFWS" (RFC 5321-valid, unusual forms included). That comes down to:
//
//   - only ASCII, no space, no comment, no folding white space;
//   - local part: a dot-atom of RFC 5322 atext, or one quoted string making
//     up the whole local part (printable ASCII, quoted pairs allowed), at
//     most 64 bytes;
//   - domain: dot-separated labels of letters, digits and inner hyphens (a
//     single label such as "localhost" is accepted, so is an all-digit last
//     label), or an address literal: [IPv4] or [IPv6:…] (a literal may even
//     be followed by ".label" — a quirk of the validator, kept here);
//     labels of at most 63 bytes, the domain at most 255;
//   - the whole address at most 254 bytes.
//
// Kayako does not trim the value first: surrounding white space makes the
// address invalid.
func ValidEmail(s string) bool {
	if strings.IndexByte(s, ' ') >= 0 {
		return false
	}
	local, rest, ok := splitLocal(s)
	if !ok || len(local) > 64 {
		return false
	}
	if rest == "" || len(rest) > 255 || len(local)+1+len(rest) > 254 {
		return false
	}
	return validDomain(rest)
}

// splitLocal reads the local part and the '@' after it; rest is the domain.
func splitLocal(s string) (local, rest string, ok bool) {
	if strings.HasPrefix(s, `"`) {
		for i := 1; i < len(s); i++ {
			switch c := s[i]; {
			case c == '\\':
				i++
				if i == len(s) {
					return "", "", false
				}
				if q := s[i]; q > 127 || q == 127 || (q < 31 && q != '\t') {
					return "", "", false
				}
			case c == '"':
				if i+1 < len(s) && s[i+1] == '@' {
					return s[:i+1], s[i+2:], true
				}
				return "", "", false
			case c < 32 || c >= 127:
				return "", "", false
			}
		}
		return "", "", false
	}
	at := strings.IndexByte(s, '@')
	if at < 0 {
		return "", "", false
	}
	local = s[:at]
	for rest := local; ; { // the dot-separated atoms, without strings.Split's slice
		atom, more, found := strings.Cut(rest, ".")
		if atom == "" {
			return "", "", false
		}
		for i := 0; i < len(atom); i++ {
			if !atext(atom[i]) {
				return "", "", false
			}
		}
		if !found {
			break
		}
		rest = more
	}
	return local, s[at+1:], true
}

// atext is RFC 5322 atext: printable ASCII but the specials and '"'.
func atext(c byte) bool {
	return c > ' ' && c < 127 && strings.IndexByte(`()<>[]:;@\,."`, c) < 0
}

// validDomain checks the part after '@'.
func validDomain(d string) bool {
	if strings.HasPrefix(d, "[") {
		end := strings.IndexByte(d, ']')
		if end < 0 || !validLiteral(d[1:end]) {
			return false
		}
		d = d[end+1:]
		if d == "" {
			return true
		}
		if d[0] != '.' || end+1 > 63 {
			return false
		}
		d = d[1:]
	}
	for rest := d; ; {
		label, more, found := strings.Cut(rest, ".")
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
		if !found {
			return true
		}
		rest = more
	}
}

// validLiteral checks an address literal without its brackets: a dotted
// IPv4 address, or "IPv6:" and an IPv6 address (whose last 32 bits may be
// written as IPv4), with the validator's own group counting.
func validLiteral(l string) bool {
	for i := 0; i < len(l); i++ {
		if c := l[i]; c < 33 || c > 126 || c == '[' || c == '\\' {
			return false
		}
	}
	if ipv4Suffix(l) == 0 {
		return true
	}
	if p := ipv4Suffix(l); p > 0 {
		l = l[:p] + "0:0"
	}
	if len(l) < 5 || !strings.EqualFold(l[:5], "IPv6:") {
		return false
	}
	v6 := l[5:]
	groups := strings.Split(v6, ":")
	if first := strings.Index(v6, "::"); first < 0 {
		if len(groups) != 8 {
			return false
		}
	} else {
		if first != strings.LastIndex(v6, "::") {
			return false
		}
		max := 8
		if first == 0 || first == len(v6)-2 {
			max++
		}
		if len(groups) > max {
			return false
		}
	}
	if strings.HasPrefix(v6, ":") && !strings.HasPrefix(v6, "::") ||
		strings.HasSuffix(v6, ":") && !strings.HasSuffix(v6, "::") {
		return false
	}
	for _, g := range groups {
		if len(g) > 4 {
			return false
		}
		for i := 0; i < len(g); i++ {
			c := g[i]
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// ipv4Suffix returns where a dotted IPv4 address ending l starts (0 when it
// is all of l), or -1. The address starts at a word boundary, and octets may
// carry leading zeros ("001") as the validator's pattern allows.
func ipv4Suffix(l string) int {
	for p := 0; p < len(l); p++ {
		if p > 0 && wordChar(l[p-1]) {
			continue
		}
		if dottedQuad(l[p:]) {
			return p
		}
	}
	return -1
}

func wordChar(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func dottedQuad(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, o := range parts {
		if !octet(o) {
			return false
		}
	}
	return true
}

// octet matches 25[0-5] | 2[0-4][0-9] | [01]?[0-9][0-9]?
func octet(o string) bool {
	for i := 0; i < len(o); i++ {
		if o[i] < '0' || o[i] > '9' {
			return false
		}
	}
	switch len(o) {
	case 1, 2:
		return true
	case 3:
		return o[0] <= '1' || o[0] == '2' && (o[1] <= '4' || o[1] == '5' && o[2] <= '5')
	}
	return false
}
