package caddymodule

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
)

// checkFormAgainstParseQuery holds parseLoginForm to url.ParseQuery, the
// reading Kayako's bodies had before the handler parsed them itself: the
// same error verdict, and for each of the four fields the same count and
// first value.
func checkFormAgainstParseQuery(t *testing.T, body string) {
	t.Helper()
	want, werr := url.ParseQuery(body)
	got, gerr := parseLoginForm(body)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("body %q: url.ParseQuery error %v, parseLoginForm error %v", body, werr, gerr)
	}
	if werr != nil {
		return
	}
	for i, name := range formFields {
		vals := want[name]
		if got.count[i] != len(vals) {
			t.Fatalf("body %q: field %s came %d times, parseLoginForm counted %d", body, name, len(vals), got.count[i])
		}
		if len(vals) > 0 && got.values[i] != vals[0] {
			t.Fatalf("body %q: field %s is %q, parseLoginForm read %q", body, name, vals[0], got.values[i])
		}
	}
}

func TestParseLoginFormAgreesWithParseQuery(t *testing.T) {
	for _, body := range []string{
		"",
		"username=jdoe&password=s3cret&ipaddress=203.0.113.5",
		"username=j+doe&password=%41%62c&ipaddress=::1&interface=staff",
		"username=jdoe&username=other&password=x",
		"&&username=jdoe&&password=x&",
		"username&password=",
		"=&=x&username==a=b",
		"username=jdoe;password=x",
		"username=jdoe&pass;word=x",
		"username=%zz&password=x",
		"other=%4&username=jdoe&password=x",
		"oth%65r=1&username=jdoe",
		"us%65rname=jdoe&password=x",
		"us%zzername=jdoe",
		"username=%&password=x",
		"username=%e2%82%ac&password=%00",
		"username=jdoe&password=a%2Bb%26c%3Dd",
		"username=jdoe&password=x&other=%",
		"+username=jdoe",
		"user+name=jdoe",
	} {
		checkFormAgainstParseQuery(t, body)
	}
	// Bodies built from the characters that matter to the grammar.
	pieces := []string{"username", "password", "ipaddress", "interface", "user", "=", "&", ";", "%", "%4", "%41",
		"%zz", "%e2%82%ac", "+", "a", "Z", "0", "é", " ", "%00", "%2B", "%26", "%3D", "us%65rname"}
	r := rand.New(rand.NewPCG(12, 12))
	for n := 0; n < 20000; n++ {
		var b strings.Builder
		for k := r.IntN(12); k >= 0; k-- {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		checkFormAgainstParseQuery(t, b.String())
	}
}

func FuzzParseLoginForm(f *testing.F) {
	f.Add("username=jdoe&password=s3cret&ipaddress=203.0.113.5")
	f.Add("username=%e2%82%ac;x&password=%zz")
	f.Fuzz(func(t *testing.T, body string) { checkFormAgainstParseQuery(t, body) })
}

func TestIsFormContentTypeAgreesWithMime(t *testing.T) {
	for v, want := range map[string]bool{
		"application/x-www-form-urlencoded":                true,
		"Application/X-WWW-Form-URLEncoded":                true,
		"  application/x-www-form-urlencoded ":             true,
		"application/x-www-form-urlencoded; charset=UTF-8": true,
		"application/x-www-form-urlencoded; charset":       false, // mime refuses the parameter
		"application/x-www-form-urlencodedx":               false,
		"multipart/form-data; boundary=x":                  false,
		"text/plain":                                       false,
		"":                                                 false,
		"application/x-www-form-urlencoded, text/plain":    false,
	} {
		if got := isFormContentType(v); got != want {
			t.Errorf("isFormContentType(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestReadBodyLimitAndErrors(t *testing.T) {
	long := strings.Repeat("x", 5000)
	for _, tc := range []struct {
		name  string
		r     io.Reader
		limit int64
		want  string
		err   error
	}{
		{"empty", strings.NewReader(""), 10, "", nil},
		{"exactly the limit", strings.NewReader("0123456789"), 10, "0123456789", nil},
		{"one byte over", strings.NewReader("0123456789a"), 10, "", errBodyTooLarge},
		{"longer than the buffer", strings.NewReader(long), 5000, long, nil},
		{"one byte at a time", iotest.OneByteReader(strings.NewReader("username=jdoe")), 100, "username=jdoe", nil},
		{"data with EOF", iotest.DataErrReader(strings.NewReader("abc")), 100, "abc", nil},
		{"read error", iotest.ErrReader(errors.New("boom")), 100, "", errors.New("boom")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBody(tc.r, tc.limit, make([]byte, 0, 16))
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("error %v", err)
			case tc.err != nil && (err == nil || err.Error() != tc.err.Error()):
				t.Fatalf("error %v, want %v", err, tc.err)
			case tc.err == nil && !bytes.Equal(got, []byte(tc.want)):
				t.Fatalf("read %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}
