package passhash

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"strings"

	"golang.org/x/crypto/blowfish"
)

// bcrypt is implemented on x/crypto's Blowfish primitives rather than with
// x/crypto/bcrypt because PHP differs from it in two ways that a verifier
// of PHP-written hashes must follow:
//
//   - $2a$ keeps crypt_blowfish's 2011 countermeasure (PHP ≥ 5.3.7): when a
//     password's bytes with the high bit set are all preceded, within their
//     32-bit key word, by 0xff bytes, bit 16 of the first initial P-array
//     word is flipped, so that such passwords do not collide with hashes
//     made by the old sign-extension bug. x/crypto/bcrypt hashes $2a$ like
//     $2b$. (0xff never occurs in UTF-8, so real UTF-8 passwords are not
//     affected; the vectors in the tests are crypt_blowfish's own.)
//   - the key is the password cut at 72 bytes, with a NUL after shorter
//     ones, cycled; x/crypto/bcrypt does the same but refuses to hash longer
//     passwords, which PHP accepts.

const (
	bcryptMinCost = 4
	bcryptMaxCost = 16 // see the package comment
	// bcryptDummyCost is PHP's password_hash default before PHP 8.4, which
	// Joomla, WHMCS, Drupal 10 and WordPress 6.8 inherit.
	bcryptDummyCost = 10
	bcryptHashLen   = 60
)

var bcryptB64 = base64.NewEncoding("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789").WithPadding(base64.NoPadding)

func looksBcrypt(s string) bool {
	return strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

// bcryptParams is a parsed $2?$NN$<22 salt><31 hash> value.
type bcryptParams struct {
	minor  byte
	cost   int
	salt   []byte // 16 bytes
	digest []byte // 23 bytes
}

func parseBcryptParams(s string) (*bcryptParams, error) {
	if !looksBcrypt(s) {
		return nil, errf("not a $2a$, $2b$ or $2y$ bcrypt value")
	}
	if len(s) != bcryptHashLen {
		return nil, errf("bcrypt value is %d bytes long, not %d", len(s), bcryptHashLen)
	}
	if s[6] != '$' || !isDigit(s[4]) || !isDigit(s[5]) {
		return nil, errf("bcrypt cost is not two digits followed by $")
	}
	cost := int(s[4]-'0')*10 + int(s[5]-'0')
	if cost < bcryptMinCost || cost > bcryptMaxCost {
		return nil, errf("bcrypt cost %d is outside [%d, %d]", cost, bcryptMinCost, bcryptMaxCost)
	}
	saltText, digestText := s[7:29], s[29:]
	salt, err := bcryptB64.DecodeString(saltText)
	if err != nil || len(salt) != 16 {
		return nil, errf("bcrypt salt is not bcrypt base64")
	}
	// crypt_blowfish rewrites the salt's last character to its canonical
	// form in its output, so PHP can never match a non-canonical one.
	if bcryptB64.EncodeToString(salt) != saltText {
		return nil, errf("bcrypt salt is not in canonical form")
	}
	digest, err := bcryptB64.DecodeString(digestText)
	if err != nil || len(digest) != 23 || bcryptB64.EncodeToString(digest) != digestText {
		return nil, errf("bcrypt hash is not canonical bcrypt base64")
	}
	return &bcryptParams{minor: s[2], cost: cost, salt: salt, digest: digest}, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func (p *bcryptParams) check(password []byte) bool {
	got := bcryptDigest(password, p.cost, p.salt, p.minor == 'a')
	return subtle.ConstantTimeCompare(got, p.digest) == 1
}

func parseBcrypt(s string) (checker, error) {
	p, err := parseBcryptParams(s)
	if err != nil {
		return nil, err
	}
	return func(pw []byte) bool { return !hasNUL(pw) && p.check(pw) }, nil
}

func hasNUL(b []byte) bool {
	for _, c := range b {
		if c == 0 {
			return true
		}
	}
	return false
}

// bcryptDigest is EksBlowfish as crypt_blowfish runs it: the 23 bytes of
// "OrpheanBeholderScryDoubt" encrypted 64 times under the expensive key
// schedule. safety selects the $2a$ countermeasure.
func bcryptDigest(password []byte, cost int, salt []byte, safety bool) []byte {
	// The key stream: the password (at most 72 bytes) and a NUL, repeated,
	// of which the key schedule reads exactly 18 words.
	var key [72]byte
	for i := range key {
		if n := len(password) + 1; i%n < len(password) {
			key[i] = password[i%n]
		}
	}
	initial := key
	if safety && bcryptNeedsSafety(&key) {
		initial[1] ^= 0x01 // bit 16 of the first big-endian word
	}
	// key is 72 bytes, so the salted setup reads it without wrapping and
	// initial differs from key only where crypt_blowfish's does.
	c, err := blowfish.NewSaltedCipher(initial[:], salt)
	if err != nil {
		panic("passhash: blowfish refused a 72-byte key: " + err.Error())
	}
	for i := uint64(0); i < 1<<uint(cost); i++ {
		blowfish.ExpandKey(key[:], c)
		blowfish.ExpandKey(salt, c)
	}
	text := []byte("OrpheanBeholderScryDoubt")
	for i := 0; i < 24; i += 8 {
		for j := 0; j < 64; j++ {
			c.Encrypt(text[i:i+8], text[i:i+8])
		}
	}
	return text[:23]
}

// bcryptNeedsSafety reports whether crypt_blowfish flips the $2a$ bit for
// this key: some byte other than the first of its word has the high bit set
// (the old sign-extension bug would have touched the word), yet the buggy
// and the correct key words are all equal (every such byte follows 0xff
// bytes only), which is when the bug's hashes could collide with correct
// ones.
func bcryptNeedsSafety(key *[72]byte) bool {
	var sign, diff uint32
	for w := 0; w < 18; w++ {
		var correct, buggy uint32
		for j := 0; j < 4; j++ {
			b := key[4*w+j]
			correct = correct<<8 | uint32(b)
			buggy = buggy<<8 | uint32(int32(int8(b)))
			if j > 0 {
				sign |= buggy & 0x80
			}
		}
		diff |= correct ^ buggy
	}
	return sign != 0 && diff == 0
}

func newBcrypt(password []byte, minor byte, cost int) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	d := bcryptDigest(password, cost, salt, minor == 'a')
	return "$2" + string(minor) + "$" + string(rune('0'+cost/10)) + string(rune('0'+cost%10)) + "$" +
		bcryptB64.EncodeToString(salt) + bcryptB64.EncodeToString(d)
}

func dummyBcrypt() string { return newBcrypt([]byte(rand.Text()), 'y', bcryptDummyCost) }

// WordPress 6.8 (wp_hash_password / wp_check_password): "$wp" followed by
// password_hash(base64(HMAC-SHA384(key "wp-sha384", password))). The 64
// base64 characters fit bcrypt's 72 bytes, so long passwords keep their
// entropy.

func wordpressPrehash(password []byte) []byte {
	m := hmac.New(sha512.New384, []byte("wp-sha384"))
	m.Write(password)
	return []byte(base64.StdEncoding.EncodeToString(m.Sum(nil)))
}

func parseWordPress(s string) (checker, error) {
	p, err := parseBcryptParams(strings.TrimPrefix(s, "$wp"))
	if err != nil {
		return nil, errf("after $wp: %w", err)
	}
	return func(pw []byte) bool { return p.check(wordpressPrehash(pw)) }, nil
}

func dummyWordPress() string {
	return "$wp" + newBcrypt(wordpressPrehash([]byte(rand.Text())), 'y', bcryptDummyCost)
}
