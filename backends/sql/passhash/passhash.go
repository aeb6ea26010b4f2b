// Package passhash verifies the password hashes that web applications store
// in their user tables: bcrypt, Argon2, WordPress, phpass, Drupal 7, glibc
// crypt, Django and a few legacy digests. It only verifies; it never writes
// a hash back.
package passhash

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Format names a stored-hash format. The words are the ones the Caddyfile's
// "hashes" option accepts.
type Format string

// The known formats, in the order of the specification's table.
const (
	Bcrypt        Format = "bcrypt"
	Argon2id      Format = "argon2id"
	Argon2i       Format = "argon2i"
	WordPress     Format = "wordpress"
	Phpass        Format = "phpass"
	Drupal7       Format = "drupal7"
	SHA512Crypt   Format = "sha512crypt"
	SHA256Crypt   Format = "sha256crypt"
	MD5Crypt      Format = "md5crypt"
	Django        Format = "django"
	MD5SaltAfter  Format = "md5_salt_after"
	MD5SaltBefore Format = "md5_salt_before"
	MD5           Format = "md5"
	SHA1          Format = "sha1"
	Plain         Format = "plain"
)

var formats = []Format{
	Bcrypt, Argon2id, Argon2i, WordPress, Phpass, Drupal7, SHA512Crypt,
	SHA256Crypt, MD5Crypt, Django, MD5SaltAfter, MD5SaltBefore, MD5, SHA1, Plain,
}

// Formats returns every known format, in the specification's order.
func Formats() []Format { return append([]Format(nil), formats...) }

// ParseFormat returns the format named name; the error lists the valid names.
func ParseFormat(name string) (Format, error) {
	for _, f := range formats {
		if string(f) == name {
			return f, nil
		}
	}
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = string(f)
	}
	return "", fmt.Errorf("unknown password hash format %q (valid: %s)", name, strings.Join(names, ", "))
}

var (
	// ErrUnknownFormat: the stored value is in none of the accepted formats.
	ErrUnknownFormat = errors.New("stored password hash is in no accepted format")
	// ErrMalformed: the stored value looks like a format but cannot be parsed.
	ErrMalformed = errors.New("malformed stored password hash")
)

// Identify returns the first format in accepted that the stored value is
// written in.
func Identify(stored string, accepted []Format) (Format, bool) {
	for _, f := range accepted {
		if f == Bcrypt && len(stored) == 60 && (strings.HasPrefix(stored, "$2a$") || strings.HasPrefix(stored, "$2b$") || strings.HasPrefix(stored, "$2y$")) {
			return f, true
		}
	}
	return "", false
}

// Verify checks password against stored.
func Verify(stored, password string, accepted []Format) (ok bool, f Format, err error) {
	f, found := Identify(stored, accepted)
	if !found {
		return false, "", ErrUnknownFormat
	}
	pw := []byte(password)
	if len(pw) > 72 {
		pw = pw[:72]
	}
	switch err := bcrypt.CompareHashAndPassword([]byte(stored), pw); {
	case err == nil:
		return true, f, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, f, nil
	default:
		return false, f, fmt.Errorf("%w: bcrypt", ErrMalformed)
	}
}

// Dummy returns a valid stored value of format f at the application's usual
// cost; it is made once per format and cached.
func Dummy(f Format) string {
	// Placeholder until every format is implemented: a fixed cost-10 bcrypt of
	// a random-looking password.
	return "$2y$10$aaaaaaaaaaaaaaaaaaaaaOiRm5bvcW5l7F8d1gq3xsP2Uu6hq0Y2e"
}
