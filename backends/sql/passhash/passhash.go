// Package passhash verifies the password hashes that web applications keep
// in their user tables: bcrypt, Argon2, WordPress 6.8, phpass, Drupal 7,
// glibc crypt, Django and a few legacy digests. It only verifies; it never
// writes or upgrades a hash.
//
// The stored value's format is recognised from the value itself, among the
// formats the caller accepts. Formats written with an unambiguous prefix
// ($2y$, $argon2id$, pbkdf2_sha256$ ...) win over the shape-only legacy
// formats (32 hex digits ...), and plain is considered last. A value is
// verified in exactly one format: when a value could be read two ways (an
// md5 digest is also a possible plain-text password), the other reading is
// never tried, so that knowing a stored hash is never enough to log in.
//
// # Bounds
//
// A row in a database is not trusted to be cheap: a value whose cost
// parameters exceed what the applications write by a wide margin is refused
// with ErrMalformed before any work is done. The bounds, what the
// applications write, and the worst case measured on a shared 2-core test
// machine:
//
//   - bcrypt (and wordpress, django bcrypt_sha256 and bcrypt): cost 4 to 16.
//     PHP writes 10 (12 since PHP 8.4), Laravel 12, Caddy's hash-password 14.
//     Cost 16: ≈ 8 s.
//   - argon2id, argon2i (and django argon2): m ≤ 262144 KiB (256 MiB),
//     t ≤ 16, m·t ≤ 1048576 KiB·passes, p ≤ 16, and the Argon2 minimums
//     (m ≥ 8·p, salt ≥ 8 bytes, tag ≥ 4 bytes). PHP writes m=65536,t=4,p=1,
//     Django m=102400,t=2,p=8, argon2-cffi m=65536,t=3,p=4. Worst: ≈ 4 s and
//     256 MiB. RFC 9106's 2 GiB profile is refused.
//   - phpass and drupal7: iteration count 2^7 (their minimum) to 2^20. WordPress
//     writes 2^13 ($P$B), phpBB 3.0 2^11 ($H$9), Drupal 7 2^15 ($S$D).
//     2^20 of SHA-512: ≈ 0.5 s.
//   - sha512crypt, sha256crypt: rounds ≤ 5,000,000 after the specification's
//     clamp to [1000, 999999999]. glibc writes 5000, passlib 656000 / 535000.
//     Worst: ≈ 2 s.
//   - django pbkdf2_sha256, pbkdf2_sha1: iterations ≤ 10,000,000. Django 5.2
//     writes 1,000,000, Django 6.0 1,200,000. Worst: ≈ 3.5 s.
//   - django scrypt: N a power of two ≤ 2^20, r ≤ 32, p ≤ 16, 128·N·r ≤ 256
//     MiB, 128·N·r·p ≤ 1 GiB. Django writes N=2^14, r=8, p=1 (16 MiB).
//
// Passwords longer than 4096 bytes never match (as the LDAP backend's input
// bound; iterated MD5 and SHA-crypt cost grows with the password's length).
// A password containing a NUL byte never matches a crypt(3)-style format
// (bcrypt, sha512crypt, sha256crypt, md5crypt): the C implementations that
// write them cannot have hashed it, and PHP's password_verify, which stops
// at the NUL, would accept anything that starts with the real password.
package passhash

import (
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Format names a stored-hash format. The words are those of the Caddyfile's
// "hashes" option.
type Format string

// The known formats, in the order of the specification's table.
const (
	// Bcrypt is $2a$, $2b$ or $2y$ (PHP password_hash, Laravel, Joomla 3.2+,
	// WHMCS 6.3+, Drupal 10.1+, phpBB 3.1+). Passwords are cut at 72 bytes,
	// as PHP does; $2a$ keeps crypt_blowfish's countermeasure for passwords
	// with 0xff bytes, as PHP does.
	Bcrypt Format = "bcrypt"
	// Argon2id is the PHC string $argon2id$v=19$m=…,t=…,p=…$salt$hash.
	Argon2id Format = "argon2id"
	// Argon2i is the PHC string $argon2i$v=19$….
	Argon2i Format = "argon2i"
	// WordPress is WordPress 6.8's $wp$2y$…: bcrypt of
	// base64(HMAC-SHA384(key "wp-sha384", password)).
	WordPress Format = "wordpress"
	// Phpass is phpass's portable hash, $P$ or $H$ (WordPress ≤ 6.7,
	// phpBB 3.0).
	Phpass Format = "phpass"
	// Drupal7 is Drupal 7's $S$ (iterated SHA-512) and U$S$ (the same over
	// the hex MD5 of the password, for accounts migrated from Drupal 6);
	// U$P$ and U$H$, which Drupal 7 also checks, are accepted too. As in
	// Drupal, a password longer than 512 bytes never matches $S$.
	Drupal7 Format = "drupal7"
	// SHA512Crypt is glibc's $6$[rounds=N$]salt$hash.
	SHA512Crypt Format = "sha512crypt"
	// SHA256Crypt is glibc's $5$[rounds=N$]salt$hash.
	SHA256Crypt Format = "sha256crypt"
	// MD5Crypt is the FreeBSD/glibc $1$salt$hash.
	MD5Crypt Format = "md5crypt"
	// Django is Django's "algorithm$…" encoding: pbkdf2_sha256, pbkdf2_sha1,
	// argon2, bcrypt_sha256, bcrypt and scrypt (its default hashers), and
	// "!…", Django's mark of an unusable password, which matches nothing.
	Django Format = "django"
	// MD5SaltAfter is hex(md5(password + salt)) + ":" + salt (Joomla 1.5–2.5).
	MD5SaltAfter Format = "md5_salt_after"
	// MD5SaltBefore is hex(md5(salt + password)) + ":" + salt (WHMCS < 6.3,
	// Magento 1).
	MD5SaltBefore Format = "md5_salt_before"
	// MD5 is an unsalted hex MD5 digest (32 digits, either case).
	MD5 Format = "md5"
	// SHA1 is an unsalted hex SHA-1 digest (40 digits, either case).
	SHA1 Format = "sha1"
	// Plain is the password itself. Only ever used when listed.
	Plain Format = "plain"
)

// maxPasswordBytes bounds the password: longer ones never match.
const maxPasswordBytes = 4096

var (
	// ErrUnknownFormat is wrapped when the stored value is in none of the
	// accepted formats. It is the operator's to fix (add the format, or fix
	// the query); it never means "wrong password".
	ErrUnknownFormat = errors.New("stored password hash is in no accepted format")
	// ErrMalformed is wrapped when the stored value looks like an accepted
	// format but cannot be used: bad length, bad base64, a cost out of
	// bounds, an unsupported version.
	ErrMalformed = errors.New("malformed stored password hash")
)

// checker checks one password against an already-parsed stored value.
type checker func(password []byte) bool

// scheme is one format: how to recognise it and how to parse it.
type scheme struct {
	// prefixed: recognised by an unambiguous prefix, so it wins over the
	// shape-only formats.
	prefixed bool
	// looksLike is the cheap recognition test that Identify uses.
	looksLike func(stored string) bool
	// parse validates the stored value; its error never depends on
	// anything but the stored value's shape and never quotes it.
	parse func(stored string) (checker, error)
	// dummy makes a stored value of a random password at the application's
	// usual cost.
	dummy func() string
}

var schemes = map[Format]*scheme{
	Bcrypt:        {prefixed: true, looksLike: looksBcrypt, parse: parseBcrypt, dummy: dummyBcrypt},
	Argon2id:      {prefixed: true, looksLike: prefix("$argon2id$"), parse: parseArgon2ID, dummy: dummyArgon2ID},
	Argon2i:       {prefixed: true, looksLike: prefix("$argon2i$"), parse: parseArgon2I, dummy: dummyArgon2I},
	WordPress:     {prefixed: true, looksLike: prefix("$wp$"), parse: parseWordPress, dummy: dummyWordPress},
	Phpass:        {prefixed: true, looksLike: prefix("$P$", "$H$"), parse: parsePhpass, dummy: dummyPhpass},
	Drupal7:       {prefixed: true, looksLike: prefix("$S$", "U$S$", "U$P$", "U$H$"), parse: parseDrupal7, dummy: dummyDrupal7},
	SHA512Crypt:   {prefixed: true, looksLike: prefix("$6$"), parse: parseSHA512Crypt, dummy: dummySHA512Crypt},
	SHA256Crypt:   {prefixed: true, looksLike: prefix("$5$"), parse: parseSHA256Crypt, dummy: dummySHA256Crypt},
	MD5Crypt:      {prefixed: true, looksLike: prefix("$1$"), parse: parseMD5Crypt, dummy: dummyMD5Crypt},
	Django:        {prefixed: true, looksLike: looksDjango, parse: parseDjango, dummy: dummyDjango},
	MD5SaltAfter:  {looksLike: looksSaltedMD5, parse: parseMD5SaltAfter, dummy: dummyMD5SaltAfter},
	MD5SaltBefore: {looksLike: looksSaltedMD5, parse: parseMD5SaltBefore, dummy: dummyMD5SaltBefore},
	MD5:           {looksLike: looksHex(32), parse: parseMD5, dummy: dummyMD5},
	SHA1:          {looksLike: looksHex(40), parse: parseSHA1, dummy: dummySHA1},
	Plain:         {looksLike: looksPlain, parse: parsePlain, dummy: dummyPlain},
}

var formats = []Format{
	Bcrypt, Argon2id, Argon2i, WordPress, Phpass, Drupal7, SHA512Crypt,
	SHA256Crypt, MD5Crypt, Django, MD5SaltAfter, MD5SaltBefore, MD5, SHA1, Plain,
}

// Formats returns every known format, in the specification's order.
func Formats() []Format { return append([]Format(nil), formats...) }

// ParseFormat returns the format named name (exactly as Formats spells it);
// the error lists the valid names.
func ParseFormat(name string) (Format, error) {
	if _, ok := schemes[Format(name)]; ok {
		return Format(name), nil
	}
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = string(f)
	}
	return "", fmt.Errorf("unknown password hash format %q (valid: %s)", name, strings.Join(names, ", "))
}

// Identify returns the first format in accepted that the stored value is
// written in. Formats with an unambiguous prefix are considered first, then
// the shape-only ones (md5, sha1, md5_salt_*), then plain; within each
// group, accepted's order decides (md5_salt_after and md5_salt_before look
// alike). It only looks at the value's shape: Verify may still find it
// malformed. Unknown names in accepted are ignored.
func Identify(stored string, accepted []Format) (Format, bool) {
	for _, pass := range [...]func(Format, *scheme) bool{
		func(_ Format, s *scheme) bool { return s.prefixed },
		func(f Format, s *scheme) bool { return !s.prefixed && f != Plain },
		func(f Format, _ *scheme) bool { return f == Plain },
	} {
		for _, f := range accepted {
			if s := schemes[f]; s != nil && pass(f, s) && s.looksLike(stored) {
				return f, true
			}
		}
	}
	return "", false
}

// Verify checks password against stored, in the format Identify finds among
// accepted. ok=false with a nil error is a wrong password. The error wraps
// ErrUnknownFormat when stored is in none of the accepted formats, and
// ErrMalformed when it looks like one but cannot be used. Errors depend on
// the stored value's shape only and never contain it or the password.
func Verify(stored, password string, accepted []Format) (ok bool, f Format, err error) {
	f, found := Identify(stored, accepted)
	if !found {
		return false, "", unknownFormat(stored, accepted)
	}
	check, err := schemes[f].parse(stored)
	if err != nil {
		if strings.TrimSpace(stored) != stored {
			err = fmt.Errorf("%w (and it has leading or trailing white space: a CHAR column?)", err)
		}
		return false, f, fmt.Errorf("%w: %s: %w", ErrMalformed, f, err)
	}
	if len(password) > maxPasswordBytes {
		return false, f, nil
	}
	return check([]byte(password)), f, nil
}

// unknownFormat explains, without quoting the value, why stored matched
// none of the accepted formats: the format it is in when that is known but
// not accepted, or a hint for the usual mistakes.
func unknownFormat(stored string, accepted []Format) error {
	names := make([]string, 0, len(accepted))
	for _, f := range accepted {
		names = append(names, string(f))
	}
	why := "it looks like no known format"
	if f, ok := Identify(stored, formats); ok && f != Plain {
		why = fmt.Sprintf("it looks like %s, which is not accepted", f)
	} else if hint := unsupportedHint(stored); hint != "" {
		why = hint
	}
	return fmt.Errorf("%w (accepted: %s): %s", ErrUnknownFormat, strings.Join(names, ", "), why)
}

// unsupportedHint names a recognisable reason a value is in no format.
func unsupportedHint(stored string) string {
	switch {
	case stored == "":
		return "the stored value is empty"
	case strings.TrimSpace(stored) != stored:
		return "the stored value has leading or trailing white space (a CHAR column?)"
	case strings.HasPrefix(stored, "$2x$"), strings.HasPrefix(stored, "$2$"):
		return "it looks like a pre-2011 bcrypt variant ($2x$ or $2$), which is not supported"
	case strings.HasPrefix(stored, "$argon2d$"):
		return "it looks like argon2d, which is not supported"
	case strings.HasPrefix(stored, "{"):
		return "it looks like an LDAP-style {SCHEME} value, which is not supported"
	}
	return ""
}

var dummies = func() map[Format]func() string {
	m := make(map[Format]func() string, len(schemes))
	for f, s := range schemes {
		m[f] = sync.OnceValue(s.dummy)
	}
	return m
}()

// Dummy returns a valid stored value of format f, of a random password, at
// the application's usual cost; verifying against it costs what verifying a
// real row does, for unknown users. It is made on first use and cached
// (safe for concurrent use); call it once at provision time to keep that
// first cost off a login. An unknown f gives "".
func Dummy(f Format) string {
	if d := dummies[f]; d != nil {
		return d()
	}
	return ""
}

func prefix(ps ...string) func(string) bool {
	return func(s string) bool {
		for _, p := range ps {
			if strings.HasPrefix(s, p) {
				return true
			}
		}
		return false
	}
}

// errf makes a parse error; callers never pass the stored value.
func errf(format string, args ...any) error { return fmt.Errorf(format, args...) }
