package passhash

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/scrypt"
)

// Django's encodings (django/contrib/auth/hashers.py): "<algorithm>$…",
// for the hashers in Django's default PASSWORD_HASHERS (PBKDF2, PBKDF2SHA1,
// Argon2, BCryptSHA256, Scrypt) and BCryptPasswordHasher; and "!…",
// UNUSABLE_PASSWORD_PREFIX, which set_unusable_password stores and which
// check_password never accepts.

const (
	pbkdf2MaxIterations = 10_000_000 // see the package comment
	// pbkdf2DummyIterations is Django 5.2's PBKDF2PasswordHasher.iterations.
	pbkdf2DummyIterations = 1_000_000

	scryptMaxN         = 1 << 20
	scryptMaxR         = 32
	scryptMaxP         = 16
	scryptMaxMemory    = 256 << 20 // bytes: 128·N·r
	scryptMaxWork      = 1 << 30   // bytes: 128·N·r·p
	djangoScryptKeyLen = 64
)

var djangoPrefixes = []string{"pbkdf2_sha256$", "pbkdf2_sha1$", "argon2$", "bcrypt_sha256$", "bcrypt$", "scrypt$", "!"}

func looksDjango(s string) bool { return prefix(djangoPrefixes...)(s) }

func parseDjango(s string) (checker, error) {
	algorithm, rest, _ := strings.Cut(s, "$")
	switch {
	case strings.HasPrefix(s, "!"):
		return func([]byte) bool { return false }, nil
	case algorithm == "pbkdf2_sha256":
		return parseDjangoPBKDF2(rest, sha256.New)
	case algorithm == "pbkdf2_sha1":
		return parseDjangoPBKDF2(rest, sha1.New)
	case algorithm == "argon2":
		// Django stores "argon2" + argon2-cffi's PHC string.
		variant, _, _ := strings.Cut(rest, "$")
		if variant != "argon2id" && variant != "argon2i" {
			return nil, errf("django argon2 variant is neither argon2id nor argon2i")
		}
		return argon2Checker("$"+rest, variant)
	case algorithm == "bcrypt_sha256":
		// BCryptSHA256PasswordHasher: bcrypt over the hex SHA-256, so that
		// passwords longer than 72 bytes keep their entropy.
		p, err := parseBcryptParams(rest)
		if err != nil {
			return nil, err
		}
		return func(pw []byte) bool {
			sum := sha256.Sum256(pw)
			return p.check([]byte(hex.EncodeToString(sum[:])))
		}, nil
	case algorithm == "bcrypt":
		return parseBcrypt(rest)
	case algorithm == "scrypt":
		return parseDjangoScrypt(rest)
	}
	return nil, errf("unknown django algorithm")
}

// parseDjangoPBKDF2 parses "<iterations>$<salt>$<base64 hash>".
func parseDjangoPBKDF2(rest string, newHash func() hash.Hash) (checker, error) {
	parts := strings.SplitN(rest, "$", 3)
	if len(parts) != 3 {
		return nil, errf("pbkdf2 value is not iterations$salt$hash")
	}
	iter, err := parseDecimal(parts[0], pbkdf2MaxIterations)
	if err != nil {
		return nil, errf("pbkdf2 iterations: %w", err)
	}
	salt := parts[1]
	if salt == "" {
		return nil, errf("pbkdf2 salt is empty")
	}
	want, err := base64.StdEncoding.Strict().DecodeString(parts[2])
	if err != nil || len(want) != newHash().Size() {
		return nil, errf("pbkdf2 hash is not %d bytes of padded base64", newHash().Size())
	}
	return func(pw []byte) bool {
		got, err := pbkdf2.Key(newHash, string(pw), []byte(salt), iter, len(want))
		return err == nil && subtle.ConstantTimeCompare(got, want) == 1
	}, nil
}

// parseDecimal parses a positive decimal number no greater than max.
func parseDecimal(s string, max int) (int, error) {
	if s == "" || len(s) > 10 || strings.Trim(s, "0123456789") != "" {
		return 0, errf("not a decimal number")
	}
	n, _ := strconv.Atoi(s)
	if n < 1 || n > max {
		return 0, errf("%d is outside [1, %d]", n, max)
	}
	return n, nil
}

// parseDjangoScrypt parses "<N>$<salt>$<r>$<p>$<base64 hash>"
// (ScryptPasswordHasher, 64-byte key).
func parseDjangoScrypt(rest string) (checker, error) {
	parts := strings.SplitN(rest, "$", 5)
	if len(parts) != 5 {
		return nil, errf("scrypt value is not N$salt$r$p$hash")
	}
	n, errN := parseDecimal(parts[0], scryptMaxN)
	r, errR := parseDecimal(parts[2], scryptMaxR)
	p, errP := parseDecimal(parts[3], scryptMaxP)
	switch {
	case errN != nil || n < 2 || n&(n-1) != 0:
		return nil, errf("scrypt N is not a power of two in [2, %d]", scryptMaxN)
	case errR != nil:
		return nil, errf("scrypt r: %w", errR)
	case errP != nil:
		return nil, errf("scrypt p: %w", errP)
	case 128*n*r > scryptMaxMemory:
		return nil, errf("scrypt needs 128·N·r = %d bytes, above the bound %d", 128*n*r, scryptMaxMemory)
	case 128*n*r*p > scryptMaxWork:
		return nil, errf("scrypt work 128·N·r·p = %d bytes is above the bound %d", 128*n*r*p, scryptMaxWork)
	}
	salt := parts[1]
	if salt == "" {
		return nil, errf("scrypt salt is empty")
	}
	want, err := base64.StdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(want) != djangoScryptKeyLen {
		return nil, errf("scrypt hash is not %d bytes of padded base64", djangoScryptKeyLen)
	}
	return func(pw []byte) bool {
		got, err := scrypt.Key(pw, []byte(salt), n, r, p, len(want))
		return err == nil && subtle.ConstantTimeCompare(got, want) == 1
	}, nil
}

// dummyDjango is Django's default hasher, PBKDF2-SHA256, at Django 5.2's
// iteration count.
func dummyDjango() string {
	salt := rand.Text()[:22]
	key, err := pbkdf2.Key(sha256.New, rand.Text(), []byte(salt), pbkdf2DummyIterations, sha256.Size)
	if err != nil {
		panic("passhash: pbkdf2: " + err.Error())
	}
	return "pbkdf2_sha256$" + strconv.Itoa(pbkdf2DummyIterations) + "$" + salt + "$" + base64.StdEncoding.EncodeToString(key)
}
