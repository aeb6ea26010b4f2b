package caddymodule

import (
	"errors"
	"io"
	"mime"
	"net/url"
	"strings"
	"sync"
)

// The form fields Kayako sends, in loginForm's order.
var formFields = [...]string{"username", "password", "ipaddress", "interface"}

// loginForm is the four fields of a LoginShare body; every other field is
// ignored (but must still be well formed).
type loginForm struct {
	values [len(formFields)]string
	count  [len(formFields)]int
}

func (f *loginForm) get(i int) string { return f.values[i] }

const (
	fieldUsername = iota
	fieldPassword
	fieldIPAddress
	fieldInterface
)

var errFormSyntax = errors.New("unparsable form body")

// parseLoginForm reads an application/x-www-form-urlencoded body as
// url.ParseQuery does (fields split at '&', empty ones skipped, a ';' or a
// bad %-escape anywhere is an error, '+' is a space), keeping only the
// fields Kayako sends and how often each came. An unescaped value is a
// substring of body, so the usual body costs no allocation beyond itself.
func parseLoginForm(body string) (loginForm, error) {
	var f loginForm
	var err error
	for rest := body; rest != ""; {
		var field string
		field, rest, _ = strings.Cut(rest, "&")
		if field == "" {
			continue
		}
		if strings.IndexByte(field, ';') >= 0 {
			err = errFormSyntax
			continue
		}
		k, v, _ := strings.Cut(field, "=")
		key, kerr := formUnescape(k)
		if kerr != nil {
			err = errFormSyntax
			continue
		}
		i := fieldIndex(key)
		if i < 0 {
			if !validEscapes(v) {
				err = errFormSyntax
			}
			continue
		}
		val, verr := formUnescape(v)
		if verr != nil {
			err = errFormSyntax
			continue
		}
		if f.count[i] == 0 {
			f.values[i] = val
		}
		f.count[i]++
	}
	return f, err
}

func fieldIndex(key string) int {
	for i, name := range formFields {
		if key == name {
			return i
		}
	}
	return -1
}

// formUnescape is url.QueryUnescape, without its copy when there is
// nothing to unescape.
func formUnescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	return url.QueryUnescape(s)
}

// validEscapes reports whether every '%' in s starts a two-digit hex escape.
func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// isFormContentType reports whether a Content-Type header names a form
// body, as mime.ParseMediaType reads it; the usual value (the type alone)
// is recognised without the map ParseMediaType makes.
func isFormContentType(v string) bool {
	const want = "application/x-www-form-urlencoded"
	if strings.EqualFold(strings.TrimSpace(v), want) {
		return true
	}
	ct, _, err := mime.ParseMediaType(v)
	return err == nil && ct == want
}

// Bodies are read into pooled buffers; a buffer that grew past
// maxPooledBody is left to the collector, so one large body cannot pin
// memory.
const maxPooledBody = 64 << 10

var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

var errBodyTooLarge = errors.New("body larger than max_body")

// readBody reads r to its end into buf[:0], or fails with errBodyTooLarge
// as soon as more than limit bytes arrived.
func readBody(r io.Reader, limit int64, buf []byte) ([]byte, error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, errBodyTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
