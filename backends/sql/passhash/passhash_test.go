package passhash

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestFormatsAreTheSpecTableInOrder(t *testing.T) {
	want := []Format{"bcrypt", "argon2id", "argon2i", "wordpress", "phpass", "drupal7",
		"sha512crypt", "sha256crypt", "md5crypt", "django", "md5_salt_after",
		"md5_salt_before", "md5", "sha1", "plain"}
	got := Formats()
	if !slices.Equal(got, want) {
		t.Fatalf("Formats() = %v, want %v", got, want)
	}
	got[0] = "changed"
	if Formats()[0] != Bcrypt {
		t.Fatal("Formats() shares its slice with the caller")
	}
	for _, f := range want {
		if g, err := ParseFormat(string(f)); g != f || err != nil {
			t.Errorf("ParseFormat(%q) = %q, %v", f, g, err)
		}
	}
}

func TestParseFormatNamesTheValidWords(t *testing.T) {
	for _, name := range []string{"", "BCRYPT", "sha256", "argon2", " md5"} {
		f, err := ParseFormat(name)
		if err == nil || f != "" {
			t.Fatalf("ParseFormat(%q) = %q, %v; want an error", name, f, err)
		}
		for _, valid := range Formats() {
			if !strings.Contains(err.Error(), string(valid)) {
				t.Errorf("ParseFormat(%q) error %q does not name %q", name, err, valid)
			}
		}
	}
}

// md5Hex is an independent statement of the md5 format.
func md5Hex(s string) string { d := md5.Sum([]byte(s)); return hex.EncodeToString(d[:]) }

func TestPrefixedFormatsWinAndPlainIsLast(t *testing.T) {
	const md5crypt = "$1$38652870$DUjsu4TTlTsOe/xxZ05uf/" // hashcat
	digest := md5Hex("secret")
	for _, c := range []struct {
		name     string
		stored   string
		accepted []Format
		want     Format
	}{
		{"md5crypt over md5 and plain", md5crypt, []Format{MD5, Plain, MD5Crypt}, MD5Crypt},
		{"md5 over plain", digest, []Format{Plain, MD5}, MD5},
		{"sha1 over plain", strings.Repeat("a", 40), []Format{Plain, SHA1}, SHA1},
		{"bcrypt over plain", publishedVectors["hashcat"][8].stored, []Format{Plain, MD5, Bcrypt}, Bcrypt},
		{"salted md5, before listed first", digest + ":salt", []Format{MD5SaltBefore, MD5SaltAfter}, MD5SaltBefore},
		{"salted md5, after listed first", digest + ":salt", []Format{MD5SaltAfter, MD5SaltBefore}, MD5SaltAfter},
		{"plain when nothing else reads it", md5crypt, []Format{MD5, Plain}, Plain},
		{"django's unusable mark over plain", "!QWERTYUIOPASDFGHJKLZXCVBNMqwertyuiopasdf", []Format{Plain, Django}, Django},
		{"unknown names are ignored", digest, []Format{"nonsense", MD5}, MD5},
	} {
		f, ok := Identify(c.stored, c.accepted)
		if !ok || f != c.want {
			t.Errorf("%s: Identify = %q, %v; want %q", c.name, f, ok, c.want)
		}
	}
	// Read as md5, the stored digest is not also tried as a plain-text
	// password: knowing the hash is not enough.
	if ok, f, err := Verify(digest, digest, []Format{Plain, MD5}); ok || f != MD5 || err != nil {
		t.Errorf("the md5 digest as password: %v, %q, %v; want false, md5, nil", ok, f, err)
	}
	if ok, _, err := Verify(digest, "secret", []Format{Plain, MD5}); !ok || err != nil {
		t.Errorf("md5 with plain also accepted: %v, %v; want true", ok, err)
	}
	// Only one salted reading is tried: md5(salt.pw) does not verify when
	// md5_salt_after is listed first.
	before := md5Hex("salt"+"secret") + ":salt"
	if ok, _, _ := Verify(before, "secret", []Format{MD5SaltAfter, MD5SaltBefore}); ok {
		t.Error("md5_salt_before value verified as md5_salt_after")
	}
	if ok, _, _ := Verify(before, "secret", []Format{MD5SaltBefore, MD5SaltAfter}); !ok {
		t.Error("md5_salt_before value does not verify as md5_salt_before")
	}
}

func TestUnusableDjangoPasswordMatchesNothing(t *testing.T) {
	const stored = "!QWERTYUIOPASDFGHJKLZXCVBNMqwertyuiopasdf"
	for _, pw := range []string{"", stored, stored[1:], "!"} {
		if ok, f, err := Verify(stored, pw, []Format{Django, Plain}); ok || f != Django || err != nil {
			t.Errorf("Verify(unusable, %q) = %v, %q, %v; want false, django, nil", pw, ok, f, err)
		}
	}
}

func TestValuesInNoAcceptedFormatAreUnknownNeverWrong(t *testing.T) {
	for _, c := range []struct {
		stored   string
		accepted []Format
		hint     string
	}{
		{"", Formats(), "empty"},
		{md5Hex("x") + "\n", []Format{Bcrypt, MD5}, "white space"},
		{"$2y$10$aaaaaaaaaaaaaaaaaaaaaOiRm5bvcW5l7F8d1gq3xsP2Uu6hq0Y2e", []Format{Phpass}, "looks like bcrypt, which is not accepted"},
		{md5Hex("x"), []Format{Bcrypt, Phpass}, "looks like md5, which is not accepted"},
		{"$2x$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e", Formats()[:14], "pre-2011 bcrypt"},
		{"$argon2d$v=19$m=256,t=2,p=1$c29tZXNhbHQ$x", []Format{Argon2id, Argon2i}, "argon2d"},
		{"{SSHA}abcdefgh", []Format{SHA1}, "LDAP-style"},
		{"hunter2", []Format{Bcrypt}, "no known format"},
		// The shape-only formats have no "malformed": a truncated or
		// mangled digest is in no format.
		{md5Hex("x")[:31], []Format{MD5, SHA1, MD5SaltAfter}, "no known format"},
		{md5Hex("x")[:31] + "g", []Format{MD5}, "no known format"},
		{strings.Repeat("a", 39), []Format{SHA1}, "no known format"},
		{md5Hex("x") + ":", []Format{MD5SaltAfter, MD5SaltBefore}, "no known format"},
		{md5Hex("x"), nil, "looks like md5"},
	} {
		ok, f, err := Verify(c.stored, "hunter2", c.accepted)
		if ok || f != "" || !errors.Is(err, ErrUnknownFormat) || errors.Is(err, ErrMalformed) {
			t.Errorf("Verify(%q, %v) = %v, %q, %v; want false, \"\", ErrUnknownFormat", c.stored, c.accepted, ok, f, err)
			continue
		}
		if !strings.Contains(err.Error(), c.hint) {
			t.Errorf("Verify(%q) error %q lacks %q", c.stored, err, c.hint)
		}
		if strings.Contains(err.Error(), "hunter2") || (len(c.stored) > 6 && strings.Contains(err.Error(), c.stored[4:])) {
			t.Errorf("error %q quotes the password or the stored value", err)
		}
	}
}

// malformed lists values that look like their format but cannot be used.
// Many are past a cost bound: were they computed, the test would run for
// minutes or need gigabytes.
var malformed = []struct {
	format Format
	stored string
}{
	{Bcrypt, "$2y$10$aaaaaaaaaaaaaaaaaaaaaOiRm5bvcW5l7F8d1gq3xsP2Uu6hq0Y2"},   // truncated
	{Bcrypt, "$2y$10$aaaaaaaaaaaaaaaaaaaaaOiRm5bvcW5l7F8d1gq3xsP2Uu6hq0Y2ee"}, // too long
	{Bcrypt, "$2y$03$aaaaaaaaaaaaaaaaaaaaaOiRm5bvcW5l7F8d1gq3xsP2Uu6hq0Y2e"},  // below bcrypt's minimum
	{Bcrypt, "$2y$17$aaaaaaaaaaaaaaaaaaaaaOiRm5bvcW5l7F8d1gq3xsP2Uu6hq0Y2e"},  // above the bound
	{Bcrypt, "$2y$31$aaaaaaaaaaaaaaaaaaaaaOiRm5bvcW5l7F8d1gq3xsP2Uu6hq0Y2e"},  // days of work
	{Bcrypt, "$2y$1a$aaaaaaaaaaaaaaaaaaaaaOiRm5bvcW5l7F8d1gq3xsP2Uu6hq0Y2e"},
	{Bcrypt, "$2y$10aaaaaaaaaaaaaaaaaaaaaaOiRm5bvcW5l7F8d1gq3xsP2Uu6hq0Y2e"},
	{Bcrypt, "$2y$10$aaaaaaaaaaaaaaaaaaaaabOiRm5bvcW5l7F8d1gq3xsP2Uu6hq0Y2e"}, // salt's last character not canonical
	{Bcrypt, "$2y$10$aaaaaaaaaaaaaaaaaaaaaOiRm5bvcW5l7F8d1gq3xsP2Uu6hq0Y2!"},  // not bcrypt base64
	{WordPress, "$wp$"},
	{WordPress, "$wp$2y$12$short"},
	{WordPress, "$wp$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{Argon2id, "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"}, // 4 GiB
	{Argon2id, "$argon2id$v=19$m=262145,t=1,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{Argon2id, "$argon2id$v=19$m=262144,t=5,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"}, // m·t
	{Argon2id, "$argon2id$v=19$m=256,t=17,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{Argon2id, "$argon2id$v=19$m=256,t=0,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{Argon2id, "$argon2id$v=19$m=256,t=2,p=0$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{Argon2id, "$argon2id$v=19$m=256,t=2,p=17$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{Argon2id, "$argon2id$v=19$m=15,t=2,p=2$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"}, // m < 8p
	{Argon2id, "$argon2id$v=19$t=2,m=256,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{Argon2id, "$argon2id$v=19$m=256,t=2,p=1,k=a2V5$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{Argon2id, "$argon2id$v=19$m=-1,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{Argon2id, "$argon2id$v=19$m=99999999999,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{Argon2id, "$argon2id$v=16$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{Argon2id, "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ=$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"}, // padded
	{Argon2id, "$argon2id$v=19$m=256,t=2,p=1$c2FsdA$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},       // 4-byte salt
	{Argon2id, "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf6"},
	{Argon2id, "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ"},
	{Argon2i, "$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8$"},
	{Phpass, "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L"},   // truncated
	{Phpass, "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L00"}, // too long
	{Phpass, "$P$4IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0"},  // 2^6, below phpass's minimum
	{Phpass, "$P$JIQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0"},  // 2^21, above the bound
	{Phpass, "$P$zIQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0"},  // 2^63
	{Phpass, "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L!"},
	{Drupal7, "$S$5TOxWPdvJRs0P/xZBdrrPlGgzViOS0drHu3jaIjitesfttrp18b"},  // truncated
	{Drupal7, "U$S$5vNHDQyLqCTvsYBLWBUWXJWhA0m3DTpBh04acFEOGB.bKBclhKg"}, // truncated
	{Drupal7, "$S$xTOxWPdvJRs0P/xZBdrrPlGgzViOS0drHu3jaIjitesfttrp18bk"}, // 2^49
	{SHA512Crypt, "$6$rounds=5000001$salt$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{SHA512Crypt, "$6$rounds=999999999$salt$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{SHA512Crypt, "$6$rounds=99999999999$salt$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{SHA512Crypt, "$6$rounds=-5$salt$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{SHA512Crypt, "$6$rounds=$salt$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{SHA512Crypt, "$6$saltstring"},
	{SHA512Crypt, "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz"},
	{SHA512Crypt, "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1$"},
	{SHA256Crypt, "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc"},
	{SHA256Crypt, "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWE:5"},
	{MD5Crypt, "$1$38652870$DUjsu4TTlTsOe/xxZ05uf"},
	{MD5Crypt, "$1$38652870"},
	{Django, "pbkdf2_sha256$0$salt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c="},
	{Django, "pbkdf2_sha256$10000001$salt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c="},
	{Django, "pbkdf2_sha256$999999999999$salt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c="},
	{Django, "pbkdf2_sha256$-24000$KQ8zeK6wKRuR$cmhbSt1XVKuO4FGd9+AX8qSBD4Z0395nZatXTJpEtTY="}, // djangohashers' test_errors
	{Django, "pbkdf2_sha256$NaN$KQ8zeK6wKRuR$cmhbSt1XVKuO4FGd9+AX8qSBD4Z0395nZatXTJpEtTY="},
	{Django, "pbkdf2_sha256$1e6$salt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c="},
	{Django, "pbkdf2_sha256$1000$$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c="},
	{Django, "pbkdf2_sha256$1000$salt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c"}, // unpadded
	{Django, "pbkdf2_sha256$1000$salt$aDapRanzW8aHTz97v2TcfHzWD+I="},                // a SHA-1 length
	{Django, "pbkdf2_sha1$1000$salt"},
	{Django, "argon2$argon2d$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{Django, "argon2$argon2id$v=19$m=1048576,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{Django, "bcrypt_sha256$$2b$12$short"},
	{Django, "bcrypt_sha256$$2b$31$aaaaaaaaaaaaaaaaaaaaaOiRm5bvcW5l7F8d1gq3xsP2Uu6hq0Y2e"},
	{Django, "bcrypt$$2b$31$aaaaaaaaaaaaaaaaaaaaaOiRm5bvcW5l7F8d1gq3xsP2Uu6hq0Y2e"},
	{Django, "scrypt$16383$seasalt$8$1$Qj3+9PPyRjSJIebHnG81TMjsqtaIGxNQG/aEB/NYafTJ7tibgfYz71m0ldQESkXFRkdVCBhhY8mx7rQwite/Pw=="},   // N not a power of two
	{Django, "scrypt$2097152$seasalt$8$1$Qj3+9PPyRjSJIebHnG81TMjsqtaIGxNQG/aEB/NYafTJ7tibgfYz71m0ldQESkXFRkdVCBhhY8mx7rQwite/Pw=="}, // N above the bound
	{Django, "scrypt$1048576$seasalt$8$1$Qj3+9PPyRjSJIebHnG81TMjsqtaIGxNQG/aEB/NYafTJ7tibgfYz71m0ldQESkXFRkdVCBhhY8mx7rQwite/Pw=="}, // 1 GiB
	{Django, "scrypt$262144$seasalt$8$5$Qj3+9PPyRjSJIebHnG81TMjsqtaIGxNQG/aEB/NYafTJ7tibgfYz71m0ldQESkXFRkdVCBhhY8mx7rQwite/Pw=="},  // 1.25 GiB of work
	{Django, "scrypt$16384$seasalt$33$1$Qj3+9PPyRjSJIebHnG81TMjsqtaIGxNQG/aEB/NYafTJ7tibgfYz71m0ldQESkXFRkdVCBhhY8mx7rQwite/Pw=="},
	{Django, "scrypt$16384$seasalt$8$17$Qj3+9PPyRjSJIebHnG81TMjsqtaIGxNQG/aEB/NYafTJ7tibgfYz71m0ldQESkXFRkdVCBhhY8mx7rQwite/Pw=="},
	{Django, "scrypt$16384$seasalt$8$1$Qj3+9PPyRjSJIebHnG81TMjsqtaIGxNQG/aEB/NYafTJ7tibgfYz71m0ldQESkXFRkdVCBhhY8mx7rQwite/P"},
	{Django, "scrypt$16384$seasalt$8$1"},
}

func TestMalformedValuesAreErrorsNotWrongPasswords(t *testing.T) {
	const password = "correct horse battery staple"
	for _, c := range malformed {
		if f, ok := Identify(c.stored, []Format{c.format}); !ok || f != c.format {
			t.Errorf("Identify(%q) = %q, %v; want %q (it looks like one)", c.stored, f, ok, c.format)
		}
		ok, f, err := Verify(c.stored, password, []Format{c.format})
		if ok || f != c.format || !errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnknownFormat) {
			t.Errorf("Verify(%q) = %v, %q, %v; want false, %q, ErrMalformed", c.stored, ok, f, err, c.format)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, string(c.format)) {
			t.Errorf("error %q does not name the format", msg)
		}
		if strings.Contains(msg, password) || strings.Contains(msg, c.stored) || strings.Contains(msg, c.stored[len(c.stored)-min(len(c.stored), 12):]) {
			t.Errorf("error %q quotes the password or the stored value %q", msg, c.stored)
		}
	}
}

func TestMalformedValueWithWhiteSpaceSaysSo(t *testing.T) {
	const stored = " $2y$10$aaaaaaaaaaaaaaaaaaaaaOiRm5bvcW5l7F8d1gq3xsP2Uu6hq0Y2e"
	_, _, err := Verify(stored[1:]+" ", "pw", []Format{Bcrypt})
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "white space") {
		t.Errorf("trailing space: err = %v; want ErrMalformed naming the white space", err)
	}
	_, _, err = Verify(stored, "pw", []Format{Bcrypt})
	if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), "white space") {
		t.Errorf("leading space: err = %v; want ErrUnknownFormat naming the white space", err)
	}
}

// TestCryptFormatsRefusePasswordsWithNUL: crypt(3) implementations stop at
// the NUL, so PHP would accept "abc\x00anything" for a hash of "abc"; this
// package does not. Binary-safe formats keep the NUL.
func TestCryptFormatsRefusePasswordsWithNUL(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("abc"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	sha512c := newSHACrypt("$6$", sha512.New, sha512CryptOrder, []byte("abc"))
	md5c := (&md5Crypt{salt: []byte("saltsalt")})
	md5crypt := "$1$saltsalt$" + cryptEncode(md5c.sum([]byte("abc")), md5CryptOrder)
	for _, c := range []struct {
		f      Format
		stored string
	}{{Bcrypt, string(h)}, {SHA512Crypt, sha512c}, {MD5Crypt, md5crypt}} {
		if ok, _, err := Verify(c.stored, "abc", []Format{c.f}); !ok || err != nil {
			t.Fatalf("%s: the right password = %v, %v", c.f, ok, err)
		}
		for _, pw := range []string{"abc\x00", "abc\x00def", "\x00abc"} {
			if ok, _, err := Verify(c.stored, pw, []Format{c.f}); ok || err != nil {
				t.Errorf("%s: Verify(%q) = %v, %v; want false, nil", c.f, pw, ok, err)
			}
		}
	}
	// Not even against a value that a binary-safe implementation made of
	// the password with its NUL.
	withNUL, err := bcrypt.GenerateFromPassword([]byte("abc\x00def"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for f, stored := range map[Format]string{
		Bcrypt:      string(withNUL),
		SHA512Crypt: newSHACrypt("$6$", sha512.New, sha512CryptOrder, []byte("abc\x00def")),
		MD5Crypt:    "$1$saltsalt$" + cryptEncode(md5c.sum([]byte("abc\x00def")), md5CryptOrder),
	} {
		if ok, _, err := Verify(stored, "abc\x00def", []Format{f}); ok || err != nil {
			t.Errorf("%s made with the NUL: %v, %v; want false, nil", f, ok, err)
		}
	}
	if ok, _, _ := Verify(md5Hex("a\x00b"), "a\x00b", []Format{MD5}); !ok {
		t.Error("md5 of a password with a NUL does not verify")
	}
}

func TestPasswordsLongerThan4096BytesNeverMatch(t *testing.T) {
	for _, n := range []int{4096, 4097, 100000} {
		pw := strings.Repeat("p", n)
		for _, c := range []struct {
			f      Format
			stored string
		}{{Plain, pw}, {MD5, md5Hex(pw)}} {
			ok, _, err := Verify(c.stored, pw, []Format{c.f})
			if want := n <= 4096; ok != want || err != nil {
				t.Errorf("%s, %d-byte password: %v, %v; want %v", c.f, n, ok, err, want)
			}
		}
	}
}

// TestDrupalRefusesPasswordsOver512Bytes follows Drupal's own
// PasswordVerifyTest::providerLongPasswords: 512 bytes are hashed and
// checked, 513 never.
func TestDrupalRefusesPasswordsOver512Bytes(t *testing.T) {
	for _, c := range []struct {
		pw   string
		want bool
	}{
		{strings.Repeat("x", 512), true},
		{strings.Repeat("€", 170) + "xx", true},
		{strings.Repeat("x", 513), false},
		{strings.Repeat("€", 171), false},
	} {
		stored := newPortable("$S$", 7, sha512.New, 43, []byte(c.pw))
		if ok, _, err := Verify(stored, c.pw, []Format{Drupal7}); ok != c.want || err != nil {
			t.Errorf("%d-byte password: %v, %v; want %v", len(c.pw), ok, err, c.want)
		}
	}
	// The migrated U$S$ form checks the 32-byte MD5, whatever the length.
	long := strings.Repeat("x", 600)
	sum := md5.Sum([]byte(long))
	stored := "U" + newPortable("$S$", 7, sha512.New, 43, []byte(hex.EncodeToString(sum[:])))
	if ok, _, err := Verify(stored, long, []Format{Drupal7}); !ok || err != nil {
		t.Errorf("U$S$ with a 600-byte password: %v, %v; want true", ok, err)
	}
}

func TestPasswordIsUsedByteForByte(t *testing.T) {
	for _, c := range []struct {
		stored, pw string
		want       bool
	}{
		{" pw ", " pw ", true},
		{" pw ", "pw", false},
		{"pw", "pw ", false},
		{"Pw", "pw", false},
		{md5Hex(" pw\n"), " pw\n", true},
		{md5Hex(" pw\n"), "pw", false},
		{md5Hex("é"), "e\u0301", false}, // no Unicode normalisation
	} {
		if ok, _, err := Verify(c.stored, c.pw, []Format{MD5, Plain}); ok != c.want || err != nil {
			t.Errorf("Verify(%q, %q) = %v, %v; want %v", c.stored, c.pw, ok, err, c.want)
		}
	}
}

// TestBcryptAgreesWithXCrypto compares this package's bcrypt with an
// independent implementation on random passwords: x/crypto/bcrypt
// computes the correct algorithm (what $2b$ and $2y$ name) over the first
// 72 bytes.
func TestBcryptAgreesWithXCrypto(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	for i := 0; i < 40; i++ {
		pw := make([]byte, rng.IntN(100))
		for j := range pw {
			pw[j] = byte(1 + rng.IntN(255)) // no NUL
		}
		h, err := bcrypt.GenerateFromPassword(pw[:min(len(pw), 72)], bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		for _, minor := range []string{"$2b$", "$2y$"} {
			stored := minor + string(h[4:])
			if ok, _, err := Verify(stored, string(pw), []Format{Bcrypt}); !ok || err != nil {
				t.Fatalf("Verify(%q, %q) = %v, %v; x/crypto/bcrypt made it", stored, pw, ok, err)
			}
			if ok, _, _ := Verify(stored, string(pw)+"\x01", []Format{Bcrypt}); ok && len(pw) < 72 {
				t.Fatalf("Verify(%q) accepts a longer password", stored)
			}
		}
	}
}

func TestDummyIsAValidValueAtTheUsualCost(t *testing.T) {
	usual := map[Format]string{
		Bcrypt:      "$2y$10$",
		WordPress:   "$wp$2y$10$",
		Argon2id:    "$argon2id$v=19$m=65536,t=4,p=1$",
		Argon2i:     "$argon2i$v=19$m=65536,t=4,p=1$",
		Phpass:      "$P$B",
		Drupal7:     "$S$D",
		SHA512Crypt: "$6$",
		SHA256Crypt: "$5$",
		MD5Crypt:    "$1$",
		Django:      "pbkdf2_sha256$1000000$",
	}
	for _, f := range Formats() {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			var wg sync.WaitGroup
			got := make([]string, 4)
			for i := range got {
				wg.Go(func() { got[i] = Dummy(f) })
			}
			wg.Wait()
			d := got[0]
			for _, g := range got {
				if g != d || g == "" {
					t.Fatalf("Dummy(%s) gave %q and %q", f, d, g)
				}
			}
			if p := usual[f]; !strings.HasPrefix(d, p) {
				t.Errorf("Dummy(%s) = %q, want the prefix %q", f, d, p)
			}
			if strings.Contains(d, "rounds=") {
				t.Errorf("Dummy(%s) = %q sets rounds", f, d)
			}
			if g, ok := Identify(d, []Format{f}); !ok || g != f {
				t.Errorf("Identify(Dummy(%s)) = %q, %v", f, g, ok)
			}
			if ok, g, err := Verify(d, "password", []Format{f}); ok || g != f || err != nil {
				t.Errorf("Verify(Dummy(%s)) = %v, %q, %v; want false, %q, nil", f, ok, g, err, f)
			}
		})
	}
	if d := Dummy("nonsense"); d != "" {
		t.Errorf("Dummy(unknown) = %q", d)
	}
}

// TestDummyMakersHashTheirPassword checks, for the formats whose dummy maker
// can be given a password, that the value really is of that password.
func TestDummyMakersHashTheirPassword(t *testing.T) {
	pw := []byte(rand.Text())
	for f, stored := range map[Format]string{
		Bcrypt:      newBcrypt(pw, 'y', bcryptMinCost),
		WordPress:   "$wp" + newBcrypt(wordpressPrehash(pw), 'y', bcryptMinCost),
		Argon2id:    newArgon2(pw, true, 64, 1, 1),
		Argon2i:     newArgon2(pw, false, 64, 1, 1),
		Phpass:      newPortable("$P$", 7, md5.New, 22, pw),
		Drupal7:     newPortable("$S$", 7, sha512.New, 43, pw),
		SHA512Crypt: newSHACrypt("$6$", sha512.New, sha512CryptOrder, pw),
	} {
		if ok, _, err := Verify(stored, string(pw), []Format{f}); !ok || err != nil {
			t.Errorf("%s: %q does not verify its password: %v", f, stored, err)
		}
	}
}
