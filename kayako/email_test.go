package kayako_test

import (
	"strings"
	"testing"

	"github.com/kayako-loginshare/caddy-loginshare/kayako"
)

// Kayako's IsEmailValid: no space, then is_email() 3.04.1 with its defaults
// (valid when the worst diagnosis is below "CFWS"). Each case names the
// diagnosis the validator gives it.
func TestValidEmail(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"jane@example.com", true},
		{"Jane.Doe@Example.COM", true},
		{"first.last+tag@sub.example.co.uk", true},
		{"o'neil&co@example.com", true},
		{"!#$%&'*+-/=?^_`{|}~@example.com", true},
		{"jane@localhost", true},            // RFC5321_TLD: accepted
		{"jane@example.123", true},          // RFC5321_TLDNUMERIC: accepted
		{"a@1.2.3.4", true},                 // a dotted host of digits
		{"a@b-c.example", true},             // inner hyphen
		{`"jane"@example.com`, true},        // RFC5321_QUOTEDSTRING
		{`"a@b"@example.com`, true},         // '@' inside quotes
		{`"a\"b"@example.com`, true},        // quoted pair
		{"\"a\\\tb\"@example.com", true},    // a quoted tab is allowed
		{`""@example.com`, true},            // an empty quoted string
		{"a@[192.0.2.1]", true},             // RFC5321_ADDRESSLITERAL
		{"a@[001.002.003.004]", true},       // leading zeros in the pattern
		{"a@[IPv6:2001:db8::1]", true},      // IPv6 literal
		{"a@[ipv6:1:2:3:4:5:6:7:8]", true},  // tag compared case-insensitively
		{"a@[IPv6:::ffff:192.0.2.1]", true}, // IPv4-mapped
		{"a@[IPv6:1::2:3:4:5:6:7]", true},   // RFC5321_IPV6DEPRECATED: accepted
		{"a@[192.0.2.1].example", true},     // the validator's literal-then-label quirk
		{strings.Repeat("a", 64) + "@example.com", true},
		{"a@" + strings.Repeat("b", 63) + ".com", true},

		{"", false},
		{"jane", false},                                   // ERR_NODOMAIN
		{"jane@", false},                                  // ERR_NODOMAIN
		{"@example.com", false},                           // ERR_NOLOCALPART
		{"jane doe@example.com", false},                   // Kayako's own space check
		{" jane@example.com", false},                      // not trimmed
		{"jane@example.com\n", false},                     // ERR_EXPECTING_ATEXT
		{"jane\t@example.com", false},                     // DEPREC_CFWS_NEAR_AT
		{"jane@example.com ", false},                      // space
		{"jane(comment)@example.com", false},              // CFWS_COMMENT
		{"Jane <jane@example.com>", false},                // display name
		{".jane@example.com", false},                      // ERR_DOT_START
		{"jane.@example.com", false},                      // ERR_DOT_END
		{"ja..ne@example.com", false},                     // ERR_CONSECUTIVEDOTS
		{"a@b@example.com", false},                        // ERR_EXPECTING_ATEXT
		{`a"b"@example.com`, false},                       // ERR_EXPECTING_ATEXT
		{`"a".b@example.com`, false},                      // DEPREC_LOCALPART
		{`"a`, false},                                     // ERR_UNCLOSEDQUOTEDSTR
		{"a\\b@example.com", false},                       // ERR_EXPECTING_ATEXT
		{"zoë@example.com", false},                        // non-ASCII
		{"jane@exämple.com", false},                       // non-ASCII
		{"jane@b_c.com", false},                           // RFC5322_DOMAIN
		{"jane@-example.com", false},                      // ERR_DOMAINHYPHENSTART
		{"jane@example-.com", false},                      // ERR_DOMAINHYPHENEND
		{"jane@example.com.", false},                      // ERR_DOT_END
		{"jane@.example.com", false},                      // ERR_DOT_START
		{"a@[300.1.1.1]", false},                          // RFC5322_DOMAINLITERAL
		{"a@[192.0.2.1", false},                           // ERR_UNCLOSEDDOMLIT
		{"a@[IPv6:1:2:3]", false},                         // RFC5322_IPV6_GRPCOUNT
		{"a@[IPv6:1::2::3]", false},                       // RFC5322_IPV6_2X2XCOLON
		{"a@[IPv6:1:2:3:4:5:6:7:8::]", false},             // RFC5322_IPV6_MAXGRPS
		{"a@[IPv6::1:2:3:4:5:6:7]", false},                // RFC5322_IPV6_COLONSTRT
		{"a@[IPv6:12345::1]", false},                      // RFC5322_IPV6_BADCHAR
		{"a@[2001:db8::1]", false},                        // no IPv6 tag
		{"a@[192.0.2.1]x", false},                         // ERR_ATEXT_AFTER_DOMLIT
		{"\"a\\\nb\"@example.com", false},                 // DEPREC_QP
		{strings.Repeat("a", 65) + "@example.com", false}, // RFC5322_LOCAL_TOOLONG
		{"a@" + strings.Repeat("b", 64) + ".com", false},  // RFC5322_LABEL_TOOLONG
		{strings.Repeat("a", 60) + "@" + strings.Repeat(strings.Repeat("b", 60)+".", 3) + "bcdefghijklmnopqrstuvwxyzabcdefghijk.com", false}, // RFC5322_TOOLONG (255 bytes)
	} {
		if got := kayako.ValidEmail(tc.addr); got != tc.want {
			t.Errorf("ValidEmail(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}
