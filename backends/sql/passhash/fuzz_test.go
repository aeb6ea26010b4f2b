package passhash

import (
	"errors"
	"strings"
	"testing"
)

// expensive reports whether a seed would take long enough to slow every
// run of the suite (the published vectors at their published costs).
func expensive(stored string) bool {
	for _, s := range []string{"m=65536", "m=102400", "$390000$", "rounds=77777", "rounds=123456", "rounds=10000$", "$2y$12$", "$2b$12$"} {
		if strings.Contains(stored, s) {
			return true
		}
	}
	return false
}

// FuzzVerify: Verify never panics; ok and err are consistent; an error is
// exactly one of the two kinds and depends on the stored value only, so it
// cannot carry the password.
func FuzzVerify(f *testing.F) {
	all := uint16(1)<<len(Formats()) - 1
	for _, vs := range publishedVectors {
		for _, v := range vs {
			if !expensive(v.stored) {
				f.Add(v.stored, v.password, all)
			}
		}
	}
	for _, m := range malformed {
		f.Add(m.stored, "password", all)
	}
	f.Add("", "", all)
	f.Add("secret", "secret", uint16(1)<<14)
	f.Add("!unusable", "x", all)
	f.Add(md5Hex("x")+":salt", "x", uint16(0b0001_1000_0000_0000))

	f.Fuzz(func(t *testing.T, stored, password string, mask uint16) {
		var accepted []Format
		for i, fm := range Formats() {
			if mask&(1<<i) != 0 {
				accepted = append(accepted, fm)
			}
		}
		ok, fm, err := Verify(stored, password, accepted)
		if ok && (err != nil || fm == "") {
			t.Fatalf("ok with format %q and error %v", fm, err)
		}
		if ok && len(password) > maxPasswordBytes {
			t.Fatalf("a %d-byte password matched", len(password))
		}
		if id, found := Identify(stored, accepted); found != (fm != "") || found && id != fm {
			t.Fatalf("Identify = %q, %v but Verify used %q", id, found, fm)
		}
		sentinel := "\x01sentinel:" + password + ":sentinel\x01"
		_, _, err2 := Verify(stored, sentinel, accepted)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("the error depends on the password: %v / %v", err, err2)
		}
		if err == nil {
			return
		}
		if errors.Is(err, ErrUnknownFormat) == errors.Is(err, ErrMalformed) {
			t.Fatalf("error is not exactly one of the two kinds: %v", err)
		}
		if err.Error() != err2.Error() {
			t.Fatalf("the error depends on the password: %q / %q", err, err2)
		}
		// With the error shown independent of the password, a password that
		// cannot occur in a message by chance stands for every password.
		if strings.Contains(err2.Error(), sentinel) {
			t.Fatalf("the error contains the password: %q", err)
		}
		if len(stored) >= 24 && strings.Contains(err.Error(), stored) {
			t.Fatalf("the error contains the stored value: %q", err)
		}
	})
}
