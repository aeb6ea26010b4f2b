package sql

import (
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strings"
	"testing"
)

// The applications' own algorithms, written here from their descriptions
// (phpass's portable hash, which WordPress ≤ 6.7, Joomla 3 and Drupal 7
// share the shape of; Drupal 7's _password_crypt; Django's PBKDF2 hasher;
// the salted md5 of Joomla 1.5 and WHMCS < 6.3), for the rows whose hashes
// PHP's own functions cannot make. password_hash, crypt and WordPress
// 6.8's wp_hash_password come from PHP itself (phpHash).

const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// encode64 is phpass's base-64 (little-endian groups of 3 bytes).
func encode64(in []byte, count int) string {
	var b strings.Builder
	for i := 0; i < count; {
		v := int(in[i])
		i++
		b.WriteByte(itoa64[v&0x3f])
		if i < count {
			v |= int(in[i]) << 8
		}
		b.WriteByte(itoa64[(v>>6)&0x3f])
		if i >= count {
			break
		}
		i++
		if i < count {
			v |= int(in[i]) << 16
		}
		b.WriteByte(itoa64[(v>>12)&0x3f])
		if i >= count {
			break
		}
		i++
		b.WriteByte(itoa64[(v>>18)&0x3f])
	}
	return b.String()
}

// phpassCrypt is the iterated hash of phpass and Drupal 7: h = H(salt +
// password), then count times h = H(h + password); setting is the id
// ($P$, $H$, $S$), the cost character and the 8-character salt.
func phpassCrypt(newHash func() hash.Hash, setting, password string) string {
	cost := strings.IndexByte(itoa64, setting[3])
	salt := setting[4:12]
	sum := func(parts ...[]byte) []byte {
		h := newHash()
		for _, p := range parts {
			h.Write(p)
		}
		return h.Sum(nil)
	}
	h := sum([]byte(salt), []byte(password))
	for n := 1 << cost; n > 0; n-- {
		h = sum(h, []byte(password))
	}
	out := setting[:12] + encode64(h, len(h))
	if len(out) > 55 && setting[1] == 'S' {
		out = out[:55] // Drupal 7's DRUPAL_HASH_LENGTH
	}
	return out
}

// phpassOf is a portable phpass hash ($P$ or $H$) at cost 8 ("6").
func phpassOf(id, salt, password string) string {
	return phpassCrypt(md5.New, id+"6"+salt, password)
}

// drupal7Of is Drupal 7's $S$ at its usual cost (2^15, "D").
func drupal7Of(salt, password string) string {
	return phpassCrypt(sha512.New, "$S$D"+salt, password)
}

// drupal7FromMD5 is Drupal 7's U$S$: $S$ over md5(password) in hex, for
// accounts updated from Drupal 6.
func drupal7FromMD5(salt, password string) string {
	return "U" + drupal7Of(salt, md5Of(password))
}

// saltedMD5 is hex(md5(a + b)) + ":" + salt.
func saltedMD5(a, b, salt string) string {
	s := md5.Sum([]byte(a + b))
	return hex.EncodeToString(s[:]) + ":" + salt
}

// djangoPBKDF2 is Django's PBKDF2PasswordHasher encoding (sha256, 32-byte
// key) or PBKDF2SHA1PasswordHasher's (sha1, 20 bytes).
func djangoPBKDF2(t testing.TB, algo string, iterations int, salt, password string) string {
	t.Helper()
	newHash, size := sha256.New, 32
	if algo == "pbkdf2_sha1" {
		newHash, size = sha1.New, 20
	}
	key, err := pbkdf2.Key(newHash, password, []byte(salt), iterations, size)
	if err != nil {
		t.Fatal(err)
	}
	return algo + "$" + itoaInt(iterations) + "$" + salt + "$" + base64.StdEncoding.EncodeToString(key)
}

func itoaInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// wordpress68Of is WordPress 6.8's wp_hash_password, run by PHP:
// '$wp' . password_hash(base64(HMAC-SHA384('wp-sha384', trim(password)))).
func wordpress68Of(t testing.TB, password string) string {
	return phpHash(t, `'$wp' . password_hash(base64_encode(hash_hmac('sha384', trim($p), 'wp-sha384', true)), PASSWORD_BCRYPT, ["cost" => 4])`, password)
}

func TestAppHashHelpersAgreeWithTheVerifier(t *testing.T) {
	// The helpers are checked against passhash, whose own tests use
	// published vectors: a helper that drifted would make the preset tests
	// prove nothing.
	for _, c := range []struct {
		stored string
		f      string
	}{
		{phpassOf("$P$", "abcdefgh", Password), "phpass"},
		{phpassOf("$H$", "ABCDEFGH", Password), "phpass"},
		{drupal7Of("saltsalt", Password), "drupal7"},
		{drupal7FromMD5("12345678", Password), "drupal7"},
		{saltedMD5(Password, "s4lt", "s4lt"), "md5_salt_after"},
		{saltedMD5("s4lt", Password, "s4lt"), "md5_salt_before"},
		{djangoPBKDF2(t, "pbkdf2_sha256", 1000, "SaltSalt", Password), "django"},
		{djangoPBKDF2(t, "pbkdf2_sha1", 1000, "SaltSalt", Password), "django"},
	} {
		fs, err := checkHashes([]string{c.f})
		if err != nil {
			t.Fatal(err)
		}
		ok, _, err := passhashVerify(c.stored, Password, fs)
		if err != nil || !ok {
			t.Errorf("%s %s: ok=%v err=%v", c.f, c.stored, ok, err)
		}
		if ok, _, _ := passhashVerify(c.stored, Password+"x", fs); ok {
			t.Errorf("%s: a wrong password matches", c.f)
		}
	}
}
