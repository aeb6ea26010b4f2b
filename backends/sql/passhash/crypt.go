package passhash

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"hash"
	"strconv"
	"strings"
)

// SHA-crypt, from Ulrich Drepper's specification "Unix crypt using SHA-256
// and SHA-512" (akkadia.org/drepper/SHA-crypt.txt), and md5crypt, from
// Poul-Henning Kamp's FreeBSD crypt-md5.c as glibc adopted it.

const (
	shaCryptDefaultRounds = 5000
	shaCryptMinRounds     = 1000      // the specification's clamp
	shaCryptClampRounds   = 999999999 // the specification's clamp
	shaCryptMaxRounds     = 5_000_000 // see the package comment
	shaCryptSaltMax       = 16
	md5CryptSaltMax       = 8
)

// shaCryptOrder lists, for each output group, the digest bytes that go into
// it, most significant first (the specification's b64_from_24bit calls);
// a group of fewer than three bytes takes zeros in front.
var (
	sha512CryptOrder = [][]int{
		{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4},
		{47, 5, 26}, {6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51},
		{31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35},
		{15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19},
		{62, 20, 41}, {63},
	}
	sha256CryptOrder = [][]int{
		{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14},
		{15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29},
		{31, 30},
	}
	md5CryptOrder = [][]int{
		{0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}, {11},
	}
)

// cryptEncode writes each group of up to three bytes as a little-endian
// 24-bit number, six bits a character: 4 characters for three bytes, 3 for
// two, 2 for one.
func cryptEncode(sum []byte, order [][]int) string {
	var b strings.Builder
	for _, g := range order {
		var w uint32
		for _, i := range g {
			w = w<<8 | uint32(sum[i])
		}
		for n := len(g) + 1; n > 0; n-- {
			b.WriteByte(itoa64[w&63])
			w >>= 6
		}
	}
	return b.String()
}

func encodedLen(order [][]int) int {
	n := 0
	for _, g := range order {
		n += len(g) + 1
	}
	return n
}

type shaCrypt struct {
	newHash func() hash.Hash
	order   [][]int
	rounds  int
	salt    []byte
	encoded string
}

// parseSHACrypt parses $5$ or $6$ ([rounds=N$]salt$hash). Rounds are
// clamped as the specification says; a salt longer than 16 bytes is cut
// to 16, as the specification's crypt does before hashing.
func parseSHACrypt(s, id string, newHash func() hash.Hash, order [][]int) (*shaCrypt, error) {
	rest, ok := strings.CutPrefix(s, id)
	if !ok {
		return nil, errf("not a %s value", id)
	}
	rounds := shaCryptDefaultRounds
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		num, after, found := strings.Cut(r, "$")
		if !found || num == "" || len(num) > 10 || strings.Trim(num, "0123456789") != "" {
			return nil, errf("rounds= is not a decimal number followed by $")
		}
		n, _ := strconv.ParseUint(num, 10, 64) // ≤ 10 digits: fits
		switch {
		case n < shaCryptMinRounds:
			n = shaCryptMinRounds
		case n > shaCryptClampRounds:
			n = shaCryptClampRounds
		}
		if n > shaCryptMaxRounds {
			return nil, errf("rounds=%d is above the bound %d", n, shaCryptMaxRounds)
		}
		rounds, rest = int(n), after
	}
	salt, encoded, found := strings.Cut(rest, "$")
	if !found {
		return nil, errf("no $ between salt and hash")
	}
	if len(encoded) != encodedLen(order) || !isCryptB64(encoded) {
		return nil, errf("hash is not %d characters of the crypt alphabet", encodedLen(order))
	}
	if len(salt) > shaCryptSaltMax {
		salt = salt[:shaCryptSaltMax]
	}
	return &shaCrypt{newHash: newHash, order: order, rounds: rounds, salt: []byte(salt), encoded: encoded}, nil
}

// repeatTo returns n bytes of src repeated.
func repeatTo(src []byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = src[i%len(src)]
	}
	return out
}

// sum is the specification's algorithm, steps 1 to 21.
func (c *shaCrypt) sum(pw []byte) []byte {
	h := c.newHash()
	size := h.Size()
	salt := c.salt

	// Digest B: password, salt, password.
	h.Write(pw)
	h.Write(salt)
	h.Write(pw)
	b := h.Sum(nil)

	// Digest A: password, salt, B for each byte of the password, then B or
	// the password for each bit of its length.
	h.Reset()
	h.Write(pw)
	h.Write(salt)
	n := len(pw)
	for ; n > size; n -= size {
		h.Write(b)
	}
	h.Write(b[:n])
	for n = len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(pw)
		}
	}
	a := h.Sum(nil)

	// Sequence P: the digest of the password repeated once per byte.
	h.Reset()
	for range len(pw) {
		h.Write(pw)
	}
	p := []byte{}
	if len(pw) > 0 {
		p = repeatTo(h.Sum(nil), len(pw))
	}

	// Sequence S: the digest of the salt repeated 16 + A[0] times.
	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(salt)
	}
	s := []byte{}
	if len(salt) > 0 {
		s = repeatTo(h.Sum(nil), len(salt))
	}

	sum := a
	for r := 0; r < c.rounds; r++ {
		h.Reset()
		if r&1 != 0 {
			h.Write(p)
		} else {
			h.Write(sum)
		}
		if r%3 != 0 {
			h.Write(s)
		}
		if r%7 != 0 {
			h.Write(p)
		}
		if r&1 != 0 {
			h.Write(sum)
		} else {
			h.Write(p)
		}
		sum = h.Sum(sum[:0])
	}
	return sum
}

func (c *shaCrypt) check(pw []byte) bool {
	if hasNUL(pw) {
		return false
	}
	got := cryptEncode(c.sum(pw), c.order)
	return subtle.ConstantTimeCompare([]byte(got), []byte(c.encoded)) == 1
}

func parseSHA512Crypt(s string) (checker, error) {
	c, err := parseSHACrypt(s, "$6$", sha512.New, sha512CryptOrder)
	if err != nil {
		return nil, err
	}
	return c.check, nil
}

func parseSHA256Crypt(s string) (checker, error) {
	c, err := parseSHACrypt(s, "$5$", sha256.New, sha256CryptOrder)
	if err != nil {
		return nil, err
	}
	return c.check, nil
}

func randomCryptSalt(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = itoa64[b[i]&63]
	}
	return string(b)
}

// newSHACrypt hashes at the default 5000 rounds, which glibc and Dovecot
// write without a rounds= field.
func newSHACrypt(id string, newHash func() hash.Hash, order [][]int, pw []byte) string {
	c := &shaCrypt{newHash: newHash, order: order, rounds: shaCryptDefaultRounds, salt: []byte(randomCryptSalt(shaCryptSaltMax))}
	return id + string(c.salt) + "$" + cryptEncode(c.sum(pw), order)
}

func dummySHA512Crypt() string {
	return newSHACrypt("$6$", sha512.New, sha512CryptOrder, []byte(rand.Text()))
}

func dummySHA256Crypt() string {
	return newSHACrypt("$5$", sha256.New, sha256CryptOrder, []byte(rand.Text()))
}

type md5Crypt struct {
	salt    []byte
	encoded string
}

func parseMD5Crypt(s string) (checker, error) {
	rest, ok := strings.CutPrefix(s, "$1$")
	if !ok {
		return nil, errf("not a $1$ value")
	}
	salt, encoded, found := strings.Cut(rest, "$")
	if !found {
		return nil, errf("no $ between salt and hash")
	}
	if len(encoded) != encodedLen(md5CryptOrder) || !isCryptB64(encoded) {
		return nil, errf("hash is not %d characters of the crypt alphabet", encodedLen(md5CryptOrder))
	}
	if len(salt) > md5CryptSaltMax {
		salt = salt[:md5CryptSaltMax]
	}
	c := &md5Crypt{salt: []byte(salt), encoded: encoded}
	return c.check, nil
}

func (c *md5Crypt) sum(pw []byte) []byte {
	alt := md5.New()
	alt.Write(pw)
	alt.Write(c.salt)
	alt.Write(pw)
	final := alt.Sum(nil)

	h := md5.New()
	h.Write(pw)
	h.Write([]byte("$1$"))
	h.Write(c.salt)
	for n := len(pw); n > 0; n -= 16 {
		h.Write(final[:min(n, 16)])
	}
	// The original writes a byte of the just-cleared buffer (a zero) for
	// each set bit of the length, and the first password byte otherwise.
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write([]byte{0})
		} else {
			h.Write(pw[:1])
		}
	}
	final = h.Sum(final[:0])

	for i := 0; i < 1000; i++ {
		h.Reset()
		if i&1 != 0 {
			h.Write(pw)
		} else {
			h.Write(final)
		}
		if i%3 != 0 {
			h.Write(c.salt)
		}
		if i%7 != 0 {
			h.Write(pw)
		}
		if i&1 != 0 {
			h.Write(final)
		} else {
			h.Write(pw)
		}
		final = h.Sum(final[:0])
	}
	return final
}

func (c *md5Crypt) check(pw []byte) bool {
	if hasNUL(pw) {
		return false
	}
	got := cryptEncode(c.sum(pw), md5CryptOrder)
	return subtle.ConstantTimeCompare([]byte(got), []byte(c.encoded)) == 1
}

func dummyMD5Crypt() string {
	c := &md5Crypt{salt: []byte(randomCryptSalt(md5CryptSaltMax))}
	return "$1$" + string(c.salt) + "$" + cryptEncode(c.sum([]byte(rand.Text())), md5CryptOrder)
}
