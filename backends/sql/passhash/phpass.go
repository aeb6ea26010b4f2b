package passhash

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"strings"
)

// itoa64 is the crypt(3) alphabet shared by phpass, Drupal and the glibc
// crypt formats.
const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// encode64 is phpass's encode64 (and Drupal's _password_base64_encode):
// little-endian groups of three bytes, six bits at a time.
func encode64(in []byte) string {
	var b strings.Builder
	for i := 0; i < len(in); i += 3 {
		v := uint32(in[i])
		n := 2
		if i+1 < len(in) {
			v |= uint32(in[i+1]) << 8
			n = 3
		}
		if i+2 < len(in) {
			v |= uint32(in[i+2]) << 16
			n = 4
		}
		for j := 0; j < n; j++ {
			b.WriteByte(itoa64[v&63])
			v >>= 6
		}
	}
	return b.String()
}

func isCryptB64(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(itoa64, s[i]) < 0 {
			return false
		}
	}
	return true
}

const (
	portableMinLog2 = 7  // phpass's and Drupal's minimum
	portableMaxLog2 = 20 // see the package comment; they allow 30
	// drupalMaxPassword is Drupal's DRUPAL_MAX_PASSWORD_LENGTH
	// (PasswordInterface::PASSWORD_MAX_LENGTH): it neither hashes nor checks
	// longer passwords.
	drupalMaxPassword = 512
)

// portable is a parsed phpass-style setting: a 3-byte id, a count character,
// 8 salt characters, then the encoded digest.
type portable struct {
	log2    int
	setting string // the first 12 characters, reproduced in the output
	encoded string // the digest part as stored
	newHash func() hash.Hash
}

// parsePortable parses a phpass ($P$/$H$, MD5) or Drupal ($S$, SHA-512)
// value; digestChars is the length of the encoded digest.
func parsePortable(s string, newHash func() hash.Hash, digestChars int) (*portable, error) {
	if len(s) != 12+digestChars {
		return nil, errf("value is %d bytes long, not %d", len(s), 12+digestChars)
	}
	log2 := strings.IndexByte(itoa64, s[3])
	if log2 < portableMinLog2 || log2 > portableMaxLog2 {
		return nil, errf("iteration count character is not 2^%d to 2^%d", portableMinLog2, portableMaxLog2)
	}
	if !isCryptB64(s[12:]) {
		return nil, errf("hash is not in the crypt alphabet")
	}
	return &portable{log2: log2, setting: s[:12], encoded: s[12:], newHash: newHash}, nil
}

// sum is phpass's crypt_private and Drupal's _password_crypt:
// h = H(salt . pw), then 2^log2 times h = H(h . pw).
func (p *portable) sum(pw []byte) []byte {
	h := p.newHash()
	h.Write([]byte(p.setting[4:12]))
	h.Write(pw)
	sum := h.Sum(nil)
	for n := 1 << p.log2; n > 0; n-- {
		h.Reset()
		h.Write(sum)
		h.Write(pw)
		sum = h.Sum(sum[:0])
	}
	return sum
}

func (p *portable) check(pw []byte) bool {
	enc := encode64(p.sum(pw))[:len(p.encoded)]
	return subtle.ConstantTimeCompare([]byte(enc), []byte(p.encoded)) == 1
}

func parsePhpass(s string) (checker, error) {
	p, err := parsePortable(s, md5.New, 22)
	if err != nil {
		return nil, err
	}
	return p.check, nil
}

// Drupal 7 (includes/password.inc user_check_password): $S$ is the
// portable scheme over SHA-512, cut to 55 characters; "U" before a hash
// marks an account that user_update_7000 converted from Drupal 6's plain
// MD5, whose password is first replaced by its hex MD5.
func parseDrupal7(s string) (checker, error) {
	layered := strings.HasPrefix(s, "U$")
	inner := strings.TrimPrefix(s, "U")
	var p *portable
	var err error
	if strings.HasPrefix(inner, "$S$") {
		p, err = parsePortable(inner, sha512.New, 43)
	} else {
		p, err = parsePortable(inner, md5.New, 22)
	}
	if err != nil {
		return nil, err
	}
	return func(pw []byte) bool {
		if layered {
			sum := md5.Sum(pw)
			pw = []byte(hex.EncodeToString(sum[:]))
		}
		return len(pw) <= drupalMaxPassword && p.check(pw)
	}, nil
}

func newPortable(id string, log2 int, newHash func() hash.Hash, digestChars int, pw []byte) string {
	salt := make([]byte, 6)
	_, _ = rand.Read(salt)
	p := &portable{log2: log2, setting: id + string(itoa64[log2]) + encode64(salt), newHash: newHash}
	return p.setting + encode64(p.sum(pw))[:digestChars]
}

// WordPress's PasswordHash(8, true) writes 2^13 ($P$B); Drupal 7's
// DRUPAL_HASH_COUNT is 2^15 ($S$D).
func dummyPhpass() string { return newPortable("$P$", 13, md5.New, 22, []byte(rand.Text())) }
func dummyDrupal7() string {
	return newPortable("$S$", 15, sha512.New, 43, []byte(rand.Text()))
}
