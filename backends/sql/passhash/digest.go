package passhash

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

// The legacy digests: unsalted hex MD5 and SHA-1, hex MD5 with the salt
// after or before the password (stored as digest:salt), and plain text.

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func looksHex(n int) func(string) bool {
	return func(s string) bool { return len(s) == n && isHex(s) }
}

// looksSaltedMD5: 32 hex digits, a colon, a non-empty salt.
func looksSaltedMD5(s string) bool {
	return len(s) > 33 && s[32] == ':' && isHex(s[:32])
}

// digestChecker compares sum(password) with the hex digest, in constant
// time; hex decoding makes either case acceptable.
func digestChecker(hexDigest string, sum func(pw []byte) []byte) (checker, error) {
	want, err := hex.DecodeString(hexDigest)
	if err != nil {
		return nil, errf("digest is not hexadecimal")
	}
	return func(pw []byte) bool { return subtle.ConstantTimeCompare(sum(pw), want) == 1 }, nil
}

func md5Of(parts ...[]byte) []byte {
	h := md5.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func parseMD5(s string) (checker, error) {
	return digestChecker(s, func(pw []byte) []byte { return md5Of(pw) })
}

func parseSHA1(s string) (checker, error) {
	return digestChecker(s, func(pw []byte) []byte { d := sha1.Sum(pw); return d[:] })
}

// Joomla 1.5–2.5 (JUserHelper::getCryptedPassword "md5-hex" with a salt):
// md5(password . salt) . ":" . salt.
func parseMD5SaltAfter(s string) (checker, error) {
	digest, salt, _ := strings.Cut(s, ":")
	return digestChecker(digest, func(pw []byte) []byte { return md5Of(pw, []byte(salt)) })
}

// WHMCS before 6.3 and Magento 1: md5(salt . password) . ":" . salt.
func parseMD5SaltBefore(s string) (checker, error) {
	digest, salt, _ := strings.Cut(s, ":")
	return digestChecker(digest, func(pw []byte) []byte { return md5Of([]byte(salt), pw) })
}

// looksPlain: anything but the empty string, which would let an empty
// password in wherever a NULL password column comes back empty.
func looksPlain(s string) bool { return s != "" }

// parsePlain compares SHA-256 digests so that the comparison's time does
// not depend on where, or whether by length, the password differs.
func parsePlain(s string) (checker, error) {
	want := sha256.Sum256([]byte(s))
	return func(pw []byte) bool {
		got := sha256.Sum256(pw)
		return subtle.ConstantTimeCompare(got[:], want[:]) == 1
	}, nil
}

func dummyMD5() string  { return hex.EncodeToString(md5Of([]byte(rand.Text()))) }
func dummySHA1() string { d := sha1.Sum([]byte(rand.Text())); return hex.EncodeToString(d[:]) }

// Joomla's salts are 32 characters, WHMCS's 5 (the length changes nothing
// measurable).
func dummyMD5SaltAfter() string {
	salt := randomCryptSalt(32)
	return hex.EncodeToString(md5Of([]byte(rand.Text()), []byte(salt))) + ":" + salt
}

func dummyMD5SaltBefore() string {
	salt := randomCryptSalt(5)
	return hex.EncodeToString(md5Of([]byte(salt), []byte(rand.Text()))) + ":" + salt
}

func dummyPlain() string { return rand.Text() }
