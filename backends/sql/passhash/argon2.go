package passhash

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2 PHC strings as libargon2 (and so PHP, argon2-cffi, Django) write
// them: $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<tag>, salt and
// tag in unpadded standard base64.

const (
	argon2MaxMemory  = 256 << 10 // KiB; see the package comment
	argon2MaxTime    = 16
	argon2MaxWork    = 1 << 20 // m·t, in KiB·passes: 256 MiB × 4 or 64 MiB × 16
	argon2MaxThreads = 16
	argon2MinSalt    = 8 // the Argon2 specification's minimum
	argon2MaxSalt    = 1024
	argon2MinTag     = 4 // the Argon2 specification's minimum
	argon2MaxTag     = 1024

	// PHP's PASSWORD_ARGON2_DEFAULT_* (Joomla 4+, Nextcloud, password_hash).
	argon2DummyMemory  = 64 << 10
	argon2DummyTime    = 4
	argon2DummyThreads = 1
)

type argon2Params struct {
	id           bool // argon2id, else argon2i
	memory, time uint32
	threads      uint8
	salt, digest []byte
}

// parseArgon2PHC parses a PHC string whose variant must be want
// ("argon2id" or "argon2i").
func parseArgon2PHC(s, want string) (*argon2Params, error) {
	parts := strings.Split(s, "$")
	if len(parts) < 2 || parts[0] != "" || parts[1] != want {
		return nil, errf("not a $%s$ PHC string", want)
	}
	switch len(parts) {
	case 5:
		// libargon2 before 20161029 wrote no v= field: version 0x10, which
		// x/crypto/argon2 does not implement.
		return nil, errf("argon2 version 16 (no v= field) is not supported; only v=19")
	case 6:
	default:
		return nil, errf("argon2 value has %d $-separated fields, not 6", len(parts))
	}
	if parts[2] != "v=19" {
		return nil, errf("argon2 version field is not v=19")
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return nil, errf("argon2 parameters are not exactly m=,t=,p=")
	}
	var vals [3]uint64
	for i, name := range [...]string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(params[i], name)
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil {
			return nil, errf("argon2 parameter %d is not %s<decimal>", i+1, name)
		}
		vals[i] = n
	}
	m, t, p := vals[0], vals[1], vals[2]
	switch {
	case p < 1 || p > argon2MaxThreads:
		return nil, errf("argon2 p=%d is outside [1, %d]", p, argon2MaxThreads)
	case t < 1 || t > argon2MaxTime:
		return nil, errf("argon2 t=%d is outside [1, %d]", t, argon2MaxTime)
	case m < 8*p:
		return nil, errf("argon2 m=%d is below 8·p", m)
	case m > argon2MaxMemory:
		return nil, errf("argon2 m=%d KiB is above the bound %d KiB", m, argon2MaxMemory)
	case m*t > argon2MaxWork:
		return nil, errf("argon2 m·t = %d KiB·passes is above the bound %d", m*t, argon2MaxWork)
	}
	enc := base64.RawStdEncoding.Strict()
	salt, err := enc.DecodeString(parts[4])
	if err != nil || len(salt) < argon2MinSalt || len(salt) > argon2MaxSalt {
		return nil, errf("argon2 salt is not %d to %d bytes of unpadded base64", argon2MinSalt, argon2MaxSalt)
	}
	digest, err := enc.DecodeString(parts[5])
	if err != nil || len(digest) < argon2MinTag || len(digest) > argon2MaxTag {
		return nil, errf("argon2 hash is not %d to %d bytes of unpadded base64", argon2MinTag, argon2MaxTag)
	}
	return &argon2Params{
		id: want == "argon2id", memory: uint32(m), time: uint32(t), threads: uint8(p),
		salt: salt, digest: digest,
	}, nil
}

func (a *argon2Params) check(pw []byte) bool {
	derive := argon2.Key
	if a.id {
		derive = argon2.IDKey
	}
	got := derive(pw, a.salt, a.time, a.memory, a.threads, uint32(len(a.digest)))
	return subtle.ConstantTimeCompare(got, a.digest) == 1
}

func argon2Checker(s, want string) (checker, error) {
	a, err := parseArgon2PHC(s, want)
	if err != nil {
		return nil, err
	}
	return a.check, nil
}

func parseArgon2ID(s string) (checker, error) { return argon2Checker(s, "argon2id") }
func parseArgon2I(s string) (checker, error)  { return argon2Checker(s, "argon2i") }

func newArgon2(pw []byte, id bool, m, t uint32, p uint8) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	derive, name := argon2.Key, "argon2i"
	if id {
		derive, name = argon2.IDKey, "argon2id"
	}
	tag := derive(pw, salt, t, m, p, 32)
	enc := base64.RawStdEncoding
	return "$" + name + "$v=19$m=" + strconv.Itoa(int(m)) + ",t=" + strconv.Itoa(int(t)) +
		",p=" + strconv.Itoa(int(p)) + "$" + enc.EncodeToString(salt) + "$" + enc.EncodeToString(tag)
}

func dummyArgon2ID() string {
	return newArgon2([]byte(rand.Text()), true, argon2DummyMemory, argon2DummyTime, argon2DummyThreads)
}

func dummyArgon2I() string {
	return newArgon2([]byte(rand.Text()), false, argon2DummyMemory, argon2DummyTime, argon2DummyThreads)
}
