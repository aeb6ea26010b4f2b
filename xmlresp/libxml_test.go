package xmlresp_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kayako-loginshare/caddy-loginshare/internal/phptest"
	"github.com/kayako-loginshare/caddy-loginshare/xmlresp"
)

// Kayako reads our documents with PHP SimpleXML (libxml2), after trim(). The
// rest of this package's tests read them with encoding/xml. The test below
// hands a few thousand documents built from hostile input to PHP in one run
// and requires that libxml2 accepts every one and reads every element Kayako
// looks at exactly as encoding/xml reads it from the same bytes.

// phpBinary is php with the extensions these tests use.
func phpBinary(t *testing.T) string {
	t.Helper()
	return phptest.Binary(t, "SimpleXML", "json")
}

var (
	userChildren  = []string{"usergroup", "fullname", "designation", "organization", "organizationtype", "phone"}
	staffChildren = []string{"team", "firstname", "lastname", "designation", "email", "mobilenumber", "signature"}
)

// reading is what a parser gives for every element Kayako reads; nil means
// absent (PHP: isset() is false).
type reading struct {
	Root    string
	Result  *string
	Message *string
	User    map[string]*string // nil without <user>
	Emails  *[]string          // nil without <user><emails>
	Staff   map[string]*string // nil without <staff>
}

// goReading decodes doc with encoding/xml (strict).
func goReading(doc []byte) (reading, error) {
	type text = *string
	var d struct {
		XMLName xml.Name
		Result  text `xml:"result"`
		Message text `xml:"message"`
		User    *struct {
			UserGroup        text `xml:"usergroup"`
			FullName         text `xml:"fullname"`
			Designation      text `xml:"designation"`
			Organization     text `xml:"organization"`
			OrganizationType text `xml:"organizationtype"`
			Phone            text `xml:"phone"`
			Emails           *struct {
				Email []string `xml:"email"`
			} `xml:"emails"`
		} `xml:"user"`
		Staff *struct {
			Team         text `xml:"team"`
			FirstName    text `xml:"firstname"`
			LastName     text `xml:"lastname"`
			Designation  text `xml:"designation"`
			Email        text `xml:"email"`
			MobileNumber text `xml:"mobilenumber"`
			Signature    text `xml:"signature"`
		} `xml:"staff"`
	}
	if err := xml.Unmarshal(doc, &d); err != nil {
		return reading{}, err
	}
	r := reading{Root: d.XMLName.Local, Result: d.Result, Message: d.Message}
	if u := d.User; u != nil {
		r.User = map[string]*string{"usergroup": u.UserGroup, "fullname": u.FullName, "designation": u.Designation,
			"organization": u.Organization, "organizationtype": u.OrganizationType, "phone": u.Phone}
		if u.Emails != nil {
			e := append([]string{}, u.Emails.Email...)
			r.Emails = &e
		}
	}
	if s := d.Staff; s != nil {
		r.Staff = map[string]*string{"team": s.Team, "firstname": s.FirstName, "lastname": s.LastName,
			"designation": s.Designation, "email": s.Email, "mobilenumber": s.MobileNumber, "signature": s.Signature}
	}
	return r, nil
}

// phpOutput is one line of parse_documents.php's output (strings base64).
type phpOutput struct {
	Parsed    bool               `json:"parsed"`
	Error     string             `json:"error"`
	Root      string             `json:"root"`
	Result    *string            `json:"result"`
	ResultInt int                `json:"result_int"`
	Message   *string            `json:"message"`
	User      map[string]*string `json:"user"`
	Emails    *[]string          `json:"emails"`
	Staff     map[string]*string `json:"staff"`
}

func unb64(p *string) (*string, error) {
	if p == nil {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(*p)
	s := string(b)
	return &s, err
}

// reading converts o into a reading, decoding every base64 value.
func (o phpOutput) reading() (reading, error) {
	var errs []error
	dec := func(p *string) *string {
		s, err := unb64(p)
		errs = append(errs, err)
		return s
	}
	decMap := func(m map[string]*string, names []string) map[string]*string {
		if m == nil {
			return nil
		}
		out := make(map[string]*string, len(names))
		for _, n := range names {
			if _, ok := m[n]; !ok {
				errs = append(errs, fmt.Errorf("PHP output lacks %s", n))
			}
			out[n] = dec(m[n])
		}
		return out
	}
	r := reading{Root: o.Root, Result: dec(o.Result), Message: dec(o.Message),
		User: decMap(o.User, userChildren), Staff: decMap(o.Staff, staffChildren)}
	if o.Emails != nil {
		e := make([]string, len(*o.Emails))
		for i := range *o.Emails {
			e[i] = *dec(&(*o.Emails)[i])
		}
		r.Emails = &e
	}
	return r, errors.Join(errs...)
}

func show(p *string) string {
	if p == nil {
		return "<absent>"
	}
	return fmt.Sprintf("%q", *p)
}

// diff lists the differences between what PHP and Go read.
func diff(php, goes reading) []string {
	var d []string
	if php.Root != goes.Root {
		d = append(d, fmt.Sprintf("root: PHP %q, Go %q", php.Root, goes.Root))
	}
	cmp := func(name string, p, g *string) {
		if (p == nil) != (g == nil) || (p != nil && *p != *g) {
			d = append(d, fmt.Sprintf("%s: PHP %s, Go %s", name, show(p), show(g)))
		}
	}
	cmp("result", php.Result, goes.Result)
	cmp("message", php.Message, goes.Message)
	cmpMap := func(kind string, p, g map[string]*string, names []string) {
		if (p == nil) != (g == nil) {
			d = append(d, fmt.Sprintf("<%s>: PHP present %v, Go present %v", kind, p != nil, g != nil))
			return
		}
		if p == nil {
			return
		}
		for _, n := range names {
			cmp(kind+"/"+n, p[n], g[n])
		}
	}
	cmpMap("user", php.User, goes.User, userChildren)
	cmpMap("staff", php.Staff, goes.Staff, staffChildren)
	switch {
	case (php.Emails == nil) != (goes.Emails == nil):
		d = append(d, fmt.Sprintf("<emails>: PHP present %v, Go present %v", php.Emails != nil, goes.Emails != nil))
	case php.Emails != nil && strings.Join(*php.Emails, "\x00") != strings.Join(*goes.Emails, "\x00"):
		d = append(d, fmt.Sprintf("emails: PHP %q, Go %q", *php.Emails, *goes.Emails))
	}
	return d
}

// adversary makes hostile strings from a fixed-seed generator.
type adversary struct{ r *rand.Rand }

// specials are fragments that break naive XML writers or parsers.
var specials = []string{
	"]]>", "]]", "&#", "&#x0;", "&#38;", "&amp;", "&", "<", ">", "<![CDATA[", "<!--", "-->", "<?xml", "?>",
	`"`, "'", "</fullname>", "<result>1</result>", "&lt;", "%", "%s", "&#xD;", "\\",
	"\uFFFD", "\uFFFE", "\uFFFF", "\uFEFF", "\uD7FF", "\uE000", "\uFDD0", "\U00010000", "\U0001FFFE", "\U0010FFFF",
	"\u0301", "e\u0301", "🎉", "👩‍👩‍👧", "山田", "é", "\x7F", "\u0080", "\u0085", "\u009F", "\u200B", "\u202E",
}

// invalidUTF8 are byte sequences that are not UTF-8 (Go and XML reject them).
var invalidUTF8 = []string{
	"\x80", "\xBF", "\xC0\xAF", "\xC1\xBF", "\xC3", "\xE2\x82", "\xF0\x9F\x8E", "\xED\xA0\x80", "\xED\xBF\xBF",
	"\xED\xB0\x80", "\xF4\x90\x80\x80", "\xF8\x88\x80\x80\x80", "\xFE", "\xFF", "\xE0\x80\xAF",
}

// spaces are white space of every kind Go or XML treats as such, and some
// that only look like it.
var spaces = []string{" ", "  ", "\t", "\n", "\r", "\r\n", "\n\r", "\v", "\f", "\u00A0", "\u0085", "\u1680",
	"\u2000", "\u2028", "\u2029", "\u3000"}

func (a adversary) pick(from []string) string { return from[a.r.Intn(len(from))] }

// piece is one hostile fragment.
func (a adversary) piece() string {
	switch a.r.Intn(12) {
	case 0:
		return string(rune(a.r.Intn(0x20))) // every C0 control, NUL included
	case 1, 2:
		return a.pick(specials)
	case 3:
		return a.pick(invalidUTF8)
	case 4:
		return a.pick(spaces)
	case 5: // next to the surrogates and to U+FFFE/U+FFFF
		return string(a.pickRune([]rune{0xD7F8, 0xE000, 0xFFF8, 0xFFF0}) + rune(a.r.Intn(8)))
	case 6: // anywhere in the BMP (a surrogate becomes U+FFFD)
		return string(rune(0x80 + a.r.Intn(0x10000-0x80)))
	case 7: // astral
		return string(rune(0x10000 + a.r.Intn(0x100000)))
	case 8: // C1 controls and DEL
		return string(rune(0x7F + a.r.Intn(0x21)))
	default: // printable ASCII
		b := make([]byte, 1+a.r.Intn(8))
		for i := range b {
			b[i] = byte(0x20 + a.r.Intn(0x5F))
		}
		return string(b)
	}
}

func (a adversary) pickRune(from []rune) rune { return from[a.r.Intn(len(from))] }

// text is a short hostile string, sometimes empty.
func (a adversary) text() string {
	var b strings.Builder
	for n := a.r.Intn(12); n > 0; n-- {
		b.WriteString(a.piece())
	}
	return b.String()
}

// around is a string of about limit runes (limit-3 to limit+3), so that
// truncation cuts at, just before or just after a multi-byte rune, a space,
// a markup character or a hostile fragment; sometimes padded with spaces.
func (a adversary) around(limit int) string {
	units := []string{"a", "é", "山", "🎉", " ", "&", "<", ">", "\t", "\r", "\U0010FFFF"}
	main := a.pick(units[:4])
	n := limit - 3 + a.r.Intn(7)
	rs := make([]string, n)
	for i := range rs {
		rs[i] = main
		if a.r.Intn(8) == 0 {
			rs[i] = a.pick(units)
		}
	}
	// Put something interesting right at the cut.
	if n > limit && a.r.Intn(2) == 0 {
		rs[limit-1+a.r.Intn(2)] = a.pick([]string{" ", "&", "\t", "\r", "🎉", "\xFF", "\x01", "\uFFFE"})
	}
	s := strings.Join(rs, "")
	switch a.r.Intn(4) {
	case 0:
		s = a.pick(spaces) + s
	case 1:
		s += a.pick(spaces)
	}
	return s
}

// field is a hostile value for a column of limit runes.
func (a adversary) field(limit int) string {
	switch x := a.r.Intn(100); {
	case x < 12:
		return a.around(limit)
	case x < 15:
		return a.pick(spaces) + a.pick(spaces)
	default:
		return a.text()
	}
}

const atext = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"

// email is an address: a random valid one, a tricky one, one at the length
// limit, or hostile text that CleanEmails drops.
func (a adversary) email() string {
	switch a.r.Intn(6) {
	case 0, 1, 2:
		b := make([]byte, 1+a.r.Intn(20))
		for i := range b {
			b[i] = atext[a.r.Intn(len(atext))]
		}
		return string(b) + "@" + a.pick([]string{"example.com", "Example.ORG", "sub.example.co.uk", "xn--bcher-kva.example", "b"})
	case 3:
		return a.pick([]string{
			"Jane.Doe@Example.com", "a&b@example.com", "o'neil@example.org", "x{y}|~@example.net", "<&>@example.com",
			"ü@exämple.com", "a@b", " padded@example.com ", "\tTab@example.com\r\n", "<angle@example.com>",
			"Name <n@example.com>", "a@b@c", "not an email", "", "a..b@example.com", `"quoted"@example.com`,
			"a@[127.0.0.1]", "x\x00@example.com", "é\xFF@example.com", "x@exa\x01mple.com", "x@example.com\uFFFE",
		})
	case 4: // 254 to 257 bytes: at the limit kept whole, past it dropped
		n := 254 + a.r.Intn(4)
		local := strings.Repeat("l", 64)
		return local + "@" + strings.Repeat("d", n-len(local)-len("@.com")) + ".com"
	default:
		return a.text()
	}
}

func (a adversary) emails() []string {
	e := make([]string, 1+a.r.Intn(4))
	for i := range e {
		e[i] = a.email()
	}
	return e
}

// libxmlCase is one document for PHP.
type libxmlCase struct {
	kind   string // user, staff, failure, or control
	doc    []byte
	input  string // the Go input, for failure messages
	parsed bool   // whether libxml2 must accept it
	want   string // for controls: the message libxml2 must read, when parsed
}

// generateDocuments builds n documents from hostile input with the fixed seed.
func generateDocuments(t *testing.T, seed int64, n int) []libxmlCase {
	t.Helper()
	a := adversary{rand.New(rand.NewSource(seed))}
	var cases []libxmlCase
	incomplete := 0
	for len(cases) < n {
		var (
			doc   []byte
			err   error
			kind  string
			input any
		)
		switch x := a.r.Intn(20); {
		case x < 9:
			kind = "user"
			u := xmlresp.User{
				UserGroup:    a.field(xmlresp.UserGroupMax),
				FullName:     a.field(xmlresp.FullNameMax),
				Designation:  a.field(xmlresp.UserDesignationMax),
				Phone:        a.field(xmlresp.PhoneMax),
				Organization: a.field(xmlresp.OrganizationMax),
				OrganizationType: a.pick([]string{"", "shared", "restricted", "Shared", " shared",
					"restricted\x00", a.text()}),
				Emails: a.emails(),
			}
			input = u
			doc, err = xmlresp.UserDocument(u)
		case x < 18:
			kind = "staff"
			s := xmlresp.Staff{
				Team:         a.field(xmlresp.TeamMax),
				FirstName:    a.field(xmlresp.FirstNameMax),
				LastName:     a.field(xmlresp.LastNameMax),
				Designation:  a.field(xmlresp.StaffDesignationMax),
				Email:        a.email(),
				MobileNumber: a.field(xmlresp.MobileMax),
				Signature:    a.text() + "\n-- \n" + a.text(),
			}
			if a.r.Intn(40) == 0 {
				s.Signature = a.around(xmlresp.SignatureMax)
			}
			input = s
			doc, err = xmlresp.StaffDocument(s)
		default:
			kind = "failure"
			m := a.field(xmlresp.MessageMax)
			input = m
			doc = xmlresp.FailureDocument(m)
		}
		if errors.Is(err, xmlresp.ErrIncomplete) {
			incomplete++
			continue
		}
		if err != nil {
			t.Fatalf("%s document for %q: %v", kind, input, err)
		}
		cases = append(cases, libxmlCase{kind: kind, doc: doc, input: fmt.Sprintf("%q", input), parsed: true})
	}
	t.Logf("%d documents generated (%d inputs refused as incomplete)", len(cases), incomplete)
	return cases
}

// controls are hand-written documents that show the harness can tell: ones
// libxml2 must refuse, and ones it must read in a particular way.
func controls() []libxmlCase {
	const head = `<?xml version="1.0" encoding="UTF-8"?>` + "\n<loginshare><result>0</result><message>"
	const tail = "</message></loginshare>\n"
	var cs []libxmlCase
	for _, bad := range []string{"a\x01b", "a\x0Bb", "a\x00b", "a\uFFFEb", "a\uFFFFb", "a\xFFb", "a\xED\xA0\x80b",
		"a & b", "a < b", "a]]>b", "&#x1;", "&#xFFFE;", "&#xD800;", "&bogus;", "<unclosed>"} {
		cs = append(cs, libxmlCase{kind: "control", doc: []byte(head + bad + tail), input: fmt.Sprintf("%q", bad)})
	}
	for raw, want := range map[string]string{
		"a&#xD;b":                "a\rb",
		"a\r\nb":                 "a\nb",
		"a\rb":                   "a\nb",
		"<![CDATA[x&<]]>":        "x&<",
		"&#x1F389;&amp;&gt;&lt;": "🎉&><",
		" \t x \t ":              " \t x \t ",
	} {
		cs = append(cs, libxmlCase{kind: "control", doc: []byte(head + raw + tail), input: fmt.Sprintf("%q", raw), parsed: true, want: want})
	}
	// Kayako trims the body: white space around the document is harmless.
	cs = append(cs, libxmlCase{kind: "control", doc: []byte("\n\r\n\t " + head + "ok" + tail + "\n\n"), input: `"ok" with white space around`, parsed: true, want: "ok"})
	return cs
}

func clip(b []byte) string {
	if len(b) > 1500 {
		return fmt.Sprintf("%q…(%d bytes)", b[:1500], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func TestLibxmlReadsEveryDocumentAsEncodingXMLDoes(t *testing.T) {
	php := phpBinary(t)
	const seed, n = 20261128, 3000
	cases := append(generateDocuments(t, seed, n), controls()...)

	// The generator must actually produce what the test is about.
	var all strings.Builder
	for _, c := range cases {
		if c.kind != "control" {
			all.WriteString(c.input)
		}
	}
	covered := all.String() // the inputs, %q-quoted
	needles := []string{"\uFFFE", "\uFFFF", "\uFFFD", "\uD7FF", "\uE000", "\U00010000", "\xFF", "\xED\xA0\x80",
		"]]>", "&#", "\r", "\n", "\t"}
	for i := 0; i < 0x20; i++ {
		needles = append(needles, string(rune(i)))
	}
	for _, x := range needles {
		if q := strconv.Quote(x); !strings.Contains(covered, q[1:len(q)-1]) {
			t.Errorf("no input has %s", q)
		}
	}

	columns := map[string]int{"fullname": xmlresp.FullNameMax, "phone": xmlresp.PhoneMax,
		"firstname": xmlresp.FirstNameMax, "mobilenumber": xmlresp.MobileMax, "signature": xmlresp.SignatureMax}

	var in bytes.Buffer
	for _, c := range cases {
		in.WriteString(base64.StdEncoding.EncodeToString(c.doc))
		in.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "documents.b64")
	if err := os.WriteFile(path, in.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(php, "testdata/parse_documents.php", path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("php parse_documents.php: %v\n%s", err, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("php wrote to stderr: %s", stderr.String())
	}

	dec := json.NewDecoder(&stdout)
	failures, truncated := 0, 0
	for i, c := range cases {
		var o phpOutput
		if err := dec.Decode(&o); err != nil {
			t.Fatalf("PHP output for document %d: %v", i, err)
		}
		fail := func(format string, args ...any) {
			failures++
			if failures <= 10 {
				t.Errorf("%s document %d (input %s):\n%s\n%s", c.kind, i, c.input, fmt.Sprintf(format, args...), clip(c.doc))
			}
		}
		if o.Parsed != c.parsed {
			fail("libxml2 parsed: %v, want %v (libxml2: %s)", o.Parsed, c.parsed, o.Error)
			continue
		}
		if !o.Parsed {
			continue
		}
		php, err := o.reading()
		if err != nil {
			t.Fatalf("PHP output for document %d: %v", i, err)
		}
		goes, err := goReading(c.doc)
		if err != nil {
			fail("encoding/xml: %v", err)
			continue
		}
		if d := diff(php, goes); len(d) != 0 {
			fail("PHP and Go read differently:\n\t%s", strings.Join(d, "\n\t"))
			continue
		}
		if c.want != "" && (php.Message == nil || *php.Message != c.want) {
			fail("message %s, want %q", show(php.Message), c.want)
		}
		if c.kind == "control" {
			continue
		}
		if php.Root != "loginshare" {
			fail("root <%s>", php.Root)
		}
		wantInt, wantPart := 1, map[string]bool{"user": php.User != nil, "staff": php.Staff != nil}[c.kind]
		if c.kind == "failure" {
			wantInt, wantPart = 0, php.User == nil && php.Staff == nil && php.Message != nil
		}
		if o.ResultInt != wantInt || !wantPart {
			fail("(int)result = %d, want %d; user %v, staff %v, message %s", o.ResultInt, wantInt, php.User != nil, php.Staff != nil, show(php.Message))
		}
		for _, m := range []map[string]*string{php.User, php.Staff} {
			for name, v := range m {
				if v != nil && !utf8.ValidString(*v) {
					fail("%s is not valid UTF-8: %q", name, *v)
				}
				if limit, ok := columns[name]; ok && v != nil && utf8.RuneCountInString(*v) == limit {
					truncated++
				}
			}
		}
	}
	if dec.More() {
		t.Errorf("PHP printed more results than there were documents")
	}
	if failures > 10 {
		t.Errorf("… %d documents failed in all", failures)
	}
	// Some values must have been cut exactly at their column.
	if truncated < 20 {
		t.Errorf("only %d values at their column limit: the generator no longer tests truncation", truncated)
	}
	t.Logf("%d documents read alike by libxml2 and encoding/xml; %d values at a column limit", len(cases), truncated)
}
