package xmlresp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/mail"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/kayako-loginshare/caddy-loginshare/kayako"
)

// The decoded shape of every document. Pointers tell an absent child from an
// empty one.
type docXML struct {
	XMLName xml.Name  `xml:"loginshare"`
	Result  string    `xml:"result"`
	Message *string   `xml:"message"`
	User    *userXML  `xml:"user"`
	Staff   *staffXML `xml:"staff"`
}

type userXML struct {
	UserGroup        *string `xml:"usergroup"`
	FullName         *string `xml:"fullname"`
	Designation      *string `xml:"designation"`
	Phone            *string `xml:"phone"`
	Organization     *string `xml:"organization"`
	OrganizationType *string `xml:"organizationtype"`
	Emails           *struct {
		Email []string `xml:"email"`
	} `xml:"emails"`
}

type staffXML struct {
	Team         *string `xml:"team"`
	FirstName    *string `xml:"firstname"`
	LastName     *string `xml:"lastname"`
	Designation  *string `xml:"designation"`
	Email        *string `xml:"email"`
	MobileNumber *string `xml:"mobilenumber"`
	Signature    *string `xml:"signature"`
}

const declaration = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// parse checks that doc is a well-formed document as Kayako needs it (exact
// declaration first, no BOM, valid UTF-8, no CDATA section, comment or
// directive, one root element and nothing but white space after it, every
// token accepted by the strict decoder) and decodes it.
func parse(t testing.TB, doc []byte) docXML {
	t.Helper()
	if !bytes.HasPrefix(doc, []byte(declaration)) {
		t.Fatalf("document does not start with the declaration and a newline: %q", doc)
	}
	if bytes.Contains(doc, []byte("<!")) {
		t.Fatalf("document has a CDATA section, comment or directive: %q", doc)
	}
	if !utf8.Valid(doc) {
		t.Fatalf("document is not valid UTF-8: %q", doc)
	}
	dec := xml.NewDecoder(bytes.NewReader(doc))
	dec.Strict = true
	var d docXML
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("document is not well-formed: %v\n%q", err, doc)
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("document is not well-formed after the root: %v\n%q", err, doc)
		}
		if cd, ok := tok.(xml.CharData); !ok || len(bytes.TrimSpace(cd)) != 0 {
			t.Fatalf("%T after the root element: %q", tok, doc)
		}
	}
	return d
}

func str(p *string) string {
	if p == nil {
		return "<absent>"
	}
	return *p
}

var jane = User{
	UserGroup:        "Registered",
	FullName:         "Jane Doe",
	Designation:      "Engineer",
	Phone:            "+1 555 0100",
	Organization:     "Acme Ltd",
	OrganizationType: "restricted",
	Emails:           []string{"Jane.Doe@Example.com", "j.doe@example.com"},
}

var janeStaff = Staff{
	Team:         "Support",
	FirstName:    "Jane",
	LastName:     "Doe",
	Designation:  "Engineer",
	Email:        "jane@example.com",
	MobileNumber: "+1 555 0199",
	Signature:    "Jane\n-- \nSupport",
}

func mustUser(t testing.TB, u User) docXML {
	t.Helper()
	doc, err := UserDocument(u)
	if err != nil {
		t.Fatalf("UserDocument: %v", err)
	}
	d := parse(t, doc)
	if d.Result != "1" || d.User == nil || d.Staff != nil || d.Message != nil {
		t.Fatalf("not a user success document: %q", doc)
	}
	return d
}

func mustStaff(t testing.TB, s Staff) docXML {
	t.Helper()
	doc, err := StaffDocument(s)
	if err != nil {
		t.Fatalf("StaffDocument: %v", err)
	}
	d := parse(t, doc)
	if d.Result != "1" || d.Staff == nil || d.User != nil || d.Message != nil {
		t.Fatalf("not a staff success document: %q", doc)
	}
	return d
}

func TestUserDocumentRoundTrips(t *testing.T) {
	u := mustUser(t, jane).User
	for _, c := range []struct{ name, got, want string }{
		{"usergroup", str(u.UserGroup), "Registered"},
		{"fullname", str(u.FullName), "Jane Doe"},
		{"designation", str(u.Designation), "Engineer"},
		{"phone", str(u.Phone), "+1 555 0100"},
		{"organization", str(u.Organization), "Acme Ltd"},
		{"organizationtype", str(u.OrganizationType), "restricted"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if u.Emails == nil || strings.Join(u.Emails.Email, ",") != "Jane.Doe@Example.com,j.doe@example.com" {
		t.Errorf("emails = %+v", u.Emails)
	}
}

func TestStaffDocumentRoundTrips(t *testing.T) {
	s := mustStaff(t, janeStaff).Staff
	for _, c := range []struct{ name, got, want string }{
		{"team", str(s.Team), "Support"},
		{"firstname", str(s.FirstName), "Jane"},
		{"lastname", str(s.LastName), "Doe"},
		{"designation", str(s.Designation), "Engineer"},
		{"email", str(s.Email), "jane@example.com"},
		{"mobilenumber", str(s.MobileNumber), "+1 555 0199"},
		{"signature", str(s.Signature), "Jane\n-- \nSupport"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestFailureDocumentCarriesOnlyResultZeroAndMessage(t *testing.T) {
	doc := FailureDocument("Invalid username or password")
	d := parse(t, doc)
	if d.Result != "0" || str(d.Message) != "Invalid username or password" || d.User != nil || d.Staff != nil {
		t.Fatalf("unexpected failure document %q", doc)
	}
	want := declaration + "<loginshare>\n  <result>0</result>\n  <message>Invalid username or password</message>\n</loginshare>\n"
	if string(doc) != want {
		t.Fatalf("failure document\n%s\nwant\n%s", doc, want)
	}
}

func TestFailureMessageIsCleaned(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"percent removed", "100% wrong %s", "100 wrong s"},
		{"only percent falls back", "%%", DefaultFailureMessage},
		{"empty falls back", "", DefaultFailureMessage},
		{"whitespace falls back", " \t\n ", DefaultFailureMessage},
		{"controls fall back", "\x00\x01\x1f", DefaultFailureMessage},
		{"escaped", "a < b & c > d", "a < b & c > d"},
		{"trimmed", "  Access denied \n", "Access denied"},
		{"truncated", strings.Repeat("ä", MessageMax+10), strings.Repeat("ä", MessageMax)},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := parse(t, FailureDocument(c.in))
			if d.Result != "0" || str(d.Message) != c.want {
				t.Fatalf("message = %q, want %q", str(d.Message), c.want)
			}
		})
	}
}

// T21: markup characters are escaped and parse back to the exact original.
func TestMarkupCharactersParseBackExactly(t *testing.T) {
	const tricky = `Tom & Jerry <Ltd> "Q" 'A'`
	doc, err := UserDocument(User{UserGroup: tricky, FullName: tricky, Designation: tricky, Organization: tricky, Phone: "&<>", Emails: []string{"o'neil&co@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte("<fullname>Tom &amp; Jerry &lt;Ltd&gt; \"Q\" 'A'</fullname>")) {
		t.Errorf("fullname not escaped as expected: %q", doc)
	}
	u := parse(t, doc).User
	for name, got := range map[string]string{"usergroup": str(u.UserGroup), "fullname": str(u.FullName), "designation": str(u.Designation), "organization": str(u.Organization)} {
		if got != tricky {
			t.Errorf("%s = %q, want %q", name, got, tricky)
		}
	}
	if str(u.Phone) != "&<>" || u.Emails.Email[0] != "o'neil&co@example.com" {
		t.Errorf("phone %q, emails %q", str(u.Phone), u.Emails.Email)
	}
	s := mustStaff(t, Staff{Team: tricky, FirstName: tricky, LastName: tricky, Email: "a@b.c", Signature: tricky}).Staff
	if str(s.Team) != tricky || str(s.FirstName) != tricky || str(s.LastName) != tricky || str(s.Signature) != tricky {
		t.Errorf("staff did not round-trip: %+v", s)
	}
	if m := str(parse(t, FailureDocument(tricky)).Message); m != tricky {
		t.Errorf("message = %q", m)
	}
}

// T22: non-ASCII text is written as UTF-8 and round-trips.
func TestUnicodeRoundTrips(t *testing.T) {
	const name = "Zoë Ångström 山田太郎 🎉"
	doc, err := UserDocument(User{UserGroup: "Registered", FullName: name, Emails: []string{"zoe@example.jp"}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte(name)) {
		t.Errorf("UTF-8 bytes not in output: %q", doc)
	}
	u := parse(t, doc).User
	if str(u.FullName) != name {
		t.Errorf("fullname = %q, want %q", str(u.FullName), name)
	}
	if u.Emails.Email[0] != "zoe@example.jp" {
		t.Errorf("email = %q", u.Emails.Email[0])
	}
}

// T23: characters XML 1.0 forbids are removed or replaced, and the output
// stays well-formed; the characters it allows survive, CR included.
func TestForbiddenCharactersAreRemovedOrReplaced(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"SOH removed", "Jane\x01Doe", "JaneDoe"},
		{"VT removed", "Jane\x0BDoe", "JaneDoe"},
		{"NUL and ESC removed", "J\x00ane\x1b", "Jane"},
		{"U+FFFE removed", "Jane\uFFFEDoe", "JaneDoe"},
		{"U+FFFF removed", "Jane\uFFFFDoe", "JaneDoe"},
		{"invalid byte replaced", "Jane\xffDoe", "Jane\uFFFDDoe"},
		{"truncated sequence replaced", "Zo\xc3", "Zo\uFFFD"},
		{"encoded surrogate replaced per byte", "a\xed\xa0\x80b", "a\uFFFD\uFFFD\uFFFDb"},
		{"U+FFFD kept", "a\uFFFDb", "a\uFFFDb"},
		{"TAB LF CR kept", "a\tb\nc\rd\r\ne", "a\tb\nc\rd\r\ne"},
		{"DEL and C1 kept", "a\x7fb\u0085c", "a\x7fb\u0085c"},
		{"noncharacter U+FDD0 kept", "a\uFDD0b", "a\uFDD0b"},
		{"supplementary kept", "a\U0010FFFDb", "a\U0010FFFDb"},
		{"controls at the edge removed before trimming", "\x01 Jane \x02", "Jane"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Sanitize(c.in); strings.TrimSpace(got) != c.want {
				t.Errorf("Sanitize(%q) = %q, want %q", c.in, got, c.want)
			}
			u := mustUser(t, User{UserGroup: c.in, FullName: c.in, Designation: c.in, Emails: []string{"a@b.c"}}).User
			if str(u.FullName) != c.want || str(u.UserGroup) != c.want || str(u.Designation) != c.want {
				t.Errorf("fullname = %q, want %q", str(u.FullName), c.want)
			}
			s := mustStaff(t, Staff{Team: c.in, FirstName: c.in, LastName: c.in, Email: "a@b.c", Signature: c.in}).Staff
			if str(s.FirstName) != c.want || str(s.Signature) != c.want {
				t.Errorf("firstname = %q, want %q", str(s.FirstName), c.want)
			}
		})
	}
}

func TestSanitizeDoesNotAllocateForCleanText(t *testing.T) {
	in := "Zoë Ångström 山田太郎 🎉\tok\r\n"
	if n := testing.AllocsPerRun(100, func() { _ = Sanitize(in) }); n != 0 {
		t.Errorf("Sanitize allocated %v times for clean text", n)
	}
}

// T24: "]]>" cannot break the document (no naive CDATA).
func TestCDATATerminatorIsHarmless(t *testing.T) {
	const name = "a]]>b<![CDATA[c]]>"
	doc, err := UserDocument(User{UserGroup: "Registered", FullName: name, Emails: []string{"a@b.c"}})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(doc, []byte("]]>")) {
		t.Errorf("raw ]]> in output: %q", doc)
	}
	if got := str(parse(t, doc).User.FullName); got != name {
		t.Errorf("fullname = %q, want %q", got, name)
	}
}

// T42: every text is cut to its column, counting runes, never inside a
// multi-byte character.
func TestTruncationIsRuneSafeAtColumnSizes(t *testing.T) {
	// long builds a text of n runes whose rune number max (1-based) is the
	// multi-byte rune r, so a byte-based cut would split it.
	long := func(max, extra int, r string) string {
		return strings.Repeat("a", max-1) + r + strings.Repeat(r, extra)
	}
	type field struct {
		name string
		max  int
		user func(v string) User
		get  func(d docXML) string
	}
	base := func(u User) User {
		if u.UserGroup == "" {
			u.UserGroup = "Registered"
		}
		if u.FullName == "" {
			u.FullName = "Jane"
		}
		u.Emails = []string{"a@b.c"}
		return u
	}
	userFields := []field{
		{"usergroup", UserGroupMax, func(v string) User { return base(User{UserGroup: v}) }, func(d docXML) string { return str(d.User.UserGroup) }},
		{"fullname", FullNameMax, func(v string) User { return base(User{FullName: v}) }, func(d docXML) string { return str(d.User.FullName) }},
		{"designation", UserDesignationMax, func(v string) User { return base(User{Designation: v}) }, func(d docXML) string { return str(d.User.Designation) }},
		{"phone", PhoneMax, func(v string) User { return base(User{Phone: v}) }, func(d docXML) string { return str(d.User.Phone) }},
		{"organization", OrganizationMax, func(v string) User { return base(User{Organization: v}) }, func(d docXML) string { return str(d.User.Organization) }},
	}
	type sfield struct {
		name  string
		max   int
		staff func(v string) Staff
		get   func(d docXML) string
	}
	sbase := func(s Staff) Staff {
		if s.Team == "" {
			s.Team = "Support"
		}
		if s.FirstName == "" {
			s.FirstName = "J"
		}
		s.Email = "a@b.c"
		return s
	}
	staffFields := []sfield{
		{"team", TeamMax, func(v string) Staff { return sbase(Staff{Team: v}) }, func(d docXML) string { return str(d.Staff.Team) }},
		{"firstname", FirstNameMax, func(v string) Staff { return sbase(Staff{FirstName: v}) }, func(d docXML) string { return str(d.Staff.FirstName) }},
		{"lastname", LastNameMax, func(v string) Staff { return sbase(Staff{LastName: v}) }, func(d docXML) string { return str(d.Staff.LastName) }},
		{"designation", StaffDesignationMax, func(v string) Staff { return sbase(Staff{Designation: v}) }, func(d docXML) string { return str(d.Staff.Designation) }},
		{"mobilenumber", MobileMax, func(v string) Staff { return sbase(Staff{MobileNumber: v}) }, func(d docXML) string { return str(d.Staff.MobileNumber) }},
		{"signature", SignatureMax, func(v string) Staff { return sbase(Staff{Signature: v}) }, func(d docXML) string { return str(d.Staff.Signature) }},
	}
	for _, r := range []string{"é", "山", "🎉"} {
		for _, f := range userFields {
			t.Run("user "+f.name+" "+r, func(t *testing.T) {
				got := f.get(mustUser(t, f.user(long(f.max, 50, r))))
				if want := strings.Repeat("a", f.max-1) + r; got != want {
					t.Errorf("got %d runes %q…, want %d runes", utf8.RuneCountInString(got), Truncate(got, 5), f.max)
				}
				exact := strings.Repeat(r, f.max)
				if got := f.get(mustUser(t, f.user(exact))); got != exact {
					t.Errorf("a text of exactly %d runes was changed", f.max)
				}
			})
		}
		for _, f := range staffFields {
			t.Run("staff "+f.name+" "+r, func(t *testing.T) {
				got := f.get(mustStaff(t, f.staff(long(f.max, 50, r))))
				if want := strings.Repeat("a", f.max-1) + r; got != want {
					t.Errorf("got %d runes %q…, want %d runes", utf8.RuneCountInString(got), Truncate(got, 5), f.max)
				}
			})
		}
	}
	// The vector's own sizes: cn of 300, phone of 40, mobile of 30 characters.
	u := mustUser(t, User{UserGroup: "Registered", FullName: strings.Repeat("山", 300), Phone: strings.Repeat("٣", 40), Emails: []string{"a@b.c"}}).User
	if n := utf8.RuneCountInString(str(u.FullName)); n != 200 {
		t.Errorf("fullname has %d runes", n)
	}
	if n := utf8.RuneCountInString(str(u.Phone)); n != 25 {
		t.Errorf("phone has %d runes", n)
	}
	s := mustStaff(t, Staff{Team: "Support", FirstName: "J", Email: "a@b.c", MobileNumber: strings.Repeat("９", 30)}).Staff
	if n := utf8.RuneCountInString(str(s.MobileNumber)); n != 20 {
		t.Errorf("mobilenumber has %d runes", n)
	}
}

func TestTruncate(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"abc", 5, "abc"},
		{"abc", 3, "abc"},
		{"abc", 2, "ab"},
		{"abc", 0, ""},
		{"abc", -1, ""},
		{"", 3, ""},
		{"héllo", 2, "hé"},
		{"山田太郎", 3, "山田太"},
		{"🎉🎉", 1, "🎉"},
		{"e\u0301e\u0301", 1, "e"}, // runes, not grapheme clusters
		{"a\xffb", 2, "a\xff"},     // an invalid byte counts as one rune
		{"a🎉", 1, "a"},
	} {
		if got := Truncate(c.in, c.max); got != c.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}

func TestTruncationDoesNotLeaveTrailingWhitespace(t *testing.T) {
	name := strings.Repeat("a", FullNameMax-2) + "  " + "surname"
	got := str(mustUser(t, User{UserGroup: "Registered", FullName: name, Emails: []string{"a@b.c"}}).User.FullName)
	if want := strings.Repeat("a", FullNameMax-2); got != want {
		t.Errorf("fullname = %q…, want the text without the exposed spaces", Truncate(got, 5))
	}
}

func TestStaffLastNameIsCutSoTheFullNameFitsItsColumn(t *testing.T) {
	for _, c := range []struct{ first, last, wantLast int }{
		{100, 100, 99},
		{99, 100, 100},
		{1, 150, 100},
		{100, 0, 0},
	} {
		s := mustStaff(t, Staff{Team: "T", FirstName: strings.Repeat("F", c.first), LastName: strings.Repeat("ł", c.last), Email: "a@b.c"}).Staff
		if n := utf8.RuneCountInString(str(s.LastName)); n != c.wantLast {
			t.Errorf("first %d, last %d: lastname has %d runes, want %d", c.first, c.last, n, c.wantLast)
		}
		if n := utf8.RuneCountInString(str(s.FirstName) + " " + str(s.LastName)); n > StaffFullNameMax {
			t.Errorf("staff fullname would have %d runes", n)
		}
	}
}

func TestIncompleteDocumentsReturnErrIncomplete(t *testing.T) {
	const secret = "Jane Secret-Person"
	user := func(f func(*User)) func() error {
		u := User{UserGroup: "Registered", FullName: secret, Emails: []string{"jane@example.com"}}
		f(&u)
		return func() error { _, err := UserDocument(u); return err }
	}
	staff := func(f func(*Staff)) func() error {
		s := Staff{Team: "Support", FirstName: secret, Email: "jane@example.com"}
		f(&s)
		return func() error { _, err := StaffDocument(s); return err }
	}
	for _, c := range []struct {
		name  string
		doc   func() error
		field string
	}{
		{"user without usergroup", user(func(u *User) { u.UserGroup = "" }), "usergroup"},
		{"user with whitespace usergroup", user(func(u *User) { u.UserGroup = " \t " }), "usergroup"},
		{"user with control-only usergroup", user(func(u *User) { u.UserGroup = "\x01\x02" }), "usergroup"},
		{"user without fullname", user(func(u *User) { u.FullName = "" }), "fullname"},
		{"user with U+FFFE-only fullname", user(func(u *User) { u.FullName = "\uFFFE \uFFFF" }), "fullname"},
		{"user without emails", user(func(u *User) { u.Emails = nil }), "e-mail"},
		{"user with only invalid emails", user(func(u *User) { u.Emails = []string{"Jane <jane@example.com>", "not an address", ""} }), "e-mail"},
		{"user with only an over-long email", user(func(u *User) { u.Emails = []string{strings.Repeat("a", 244) + "@example.com"} }), "e-mail"},
		{"staff without team", staff(func(s *Staff) { s.Team = "" }), "team"},
		{"staff with whitespace team", staff(func(s *Staff) { s.Team = "\u00a0\u3000" }), "team"},
		{"staff without firstname", staff(func(s *Staff) { s.FirstName = "" }), "firstname"},
		{"staff without email", staff(func(s *Staff) { s.Email = "" }), "email"},
		{"staff with invalid email", staff(func(s *Staff) { s.Email = "Jane <jane@example.com>" }), "email"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.doc()
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("err = %v, want ErrIncomplete", err)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Errorf("error %q does not name the field %q", err, c.field)
			}
			if strings.Contains(err.Error(), "Secret") || strings.Contains(err.Error(), "jane") {
				t.Errorf("error %q carries person data", err)
			}
		})
	}
}

func TestValidEmail(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"a@b.c", true},
		{"Jane.Doe@Example.com", true},
		{"first.last+tag@sub.example.org", true},
		{"o'neil&co@example.com", true},
		{"a@[192.0.2.1]", true},
		// Kayako's validator takes ASCII only; an address it drops would
		// turn our result 1 into "No Emails". It takes single-label
		// domains, which intranet directories have.
		{"zoë@例え.jp", false},
		{"ü@exämple.com", false},
		{"jane@localhost", true},
		{"a@b", true},
		{"jane@corp", true},
		{"a@-b-.com", false},
		{"a@b_c.com", false},
		{"a@b.c.", false},
		{"a@[2001:db8::1]", false},
		{"a@[192.0.2.1", false},
		// Kayako keeps at most 254 bytes, a local part of at most 64.
		{longestKept, true},
		{oneByteTooLong, false},                            // 255 bytes
		{"a" + longestKept[:64] + "@example.com", false},   // 65-byte local part
		{strings.Repeat("a", 243) + "@example.com", false}, // 255 bytes, local part 243
		{"Jane <a@b.c>", false},
		{"<a@b.c>", false},
		{"a b@c.d", false},
		{" a@b.c", false},
		{"a@b.c ", false},
		{"a@b.c\n", false},
		{"a\u00a0b@c.d", false},
		{`"a b"@c.d`, false},
		{`"ab"@c.d`, false},
		{"a@b.c(comment)", false},
		{"a@b.c, d@e.f", false},
		{"", false},
		{"@b.c", false},
		{"a@", false},
		{"ab.c", false},
		{"a..b@c.d", false},
		{".a@b.c", false},
		{"a.@b.c", false},
		{"a@b..c", false},
		{"a@@b.c", false},
		{"a\x01@b.c", false},
		{"a\uFFFE@b.c", false},
		{"a\xff@b.c", false},
		{"group: a@b.c;", false},
	} {
		if got := ValidEmail(c.in); got != c.want {
			t.Errorf("ValidEmail(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

// parseAddressAccepts is the spec's definition of a valid address, without
// the fast path.
func parseAddressAccepts(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

func TestSimpleAddressFastPathAgreesWithParseAddress(t *testing.T) {
	for _, s := range []string{
		"a@b.c", "a@b", "x!#$%&'*+-/=?^_`{|}~@example.com", "a.b.c@d.e.f", "A@B",
		"a..b@c", "a@b@c", ".a@b", "a@b.", "a@", "@b", "", "a", "a.@b", "a@.b",
	} {
		if simpleAddress(s) && !parseAddressAccepts(s) {
			t.Errorf("fast path accepts %q, ParseAddress does not", s)
		}
	}
}

// longestKept is the longest address Kayako keeps: 254 bytes, a 64-byte
// local part and labels of at most 63.
var longestKept = strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 57) + ".org"

// oneByteTooLong is longestKept with one more byte in its third label.
var oneByteTooLong = strings.Replace(longestKept, ".d", ".dd", 1)

func TestCleanEmails(t *testing.T) {
	long := oneByteTooLong
	for _, c := range []struct {
		name string
		in   []string
		want []string
	}{
		{"nil", nil, nil},
		{"order kept", []string{"b@x.y", "a@x.y", "c@x.y"}, []string{"b@x.y", "a@x.y", "c@x.y"}},
		{"invalid dropped", []string{"Jane <a@b.c>", "a@b.c", "a b@c.d", "x"}, []string{"a@b.c"}},
		{"duplicates differing in case, first spelling wins", []string{"Jane.Doe@Example.com", "jane.doe@example.com", "JANE.DOE@EXAMPLE.COM", "j@x.y"}, []string{"Jane.Doe@Example.com", "j@x.y"}},
		{"non-ASCII addresses are dropped", []string{"ÄRGER@x.de", "ärger@x.de", "arger@x.de"}, []string{"arger@x.de"}},
		{"Kelvin sign folds like k", []string{"k@x.y", "\u212a@x.y"}, []string{"k@x.y"}},
		{"255-byte address dropped, not cut", []string{long, "a@b.c"}, []string{"a@b.c"}},
		{"254-byte address kept", []string{longestKept}, []string{longestKept}},
		{"surrounding whitespace trimmed", []string{"  a@b.c\n", "A@B.C"}, []string{"a@b.c"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := append([]string(nil), c.in...)
			got := CleanEmails(c.in)
			if strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
				t.Errorf("CleanEmails(%q) = %q, want %q", c.in, got, c.want)
			}
			if strings.Join(in, "|") != strings.Join(c.in, "|") {
				t.Errorf("input modified")
			}
		})
	}
}

// refCleanEmails states de-duplication directly with strings.EqualFold.
func refCleanEmails(in []string) []string {
	var out []string
next:
	for _, e := range in {
		e = strings.TrimSpace(e)
		if !ValidEmail(e) {
			continue
		}
		for _, k := range out {
			if strings.EqualFold(k, e) {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

func TestCleanEmailsManyAddressesDeduplicateLikeFew(t *testing.T) {
	var in []string
	for i := 0; i < 3*mapThreshold; i++ {
		local := strings.Repeat("x", i%7) + string(rune('a'+i%5))
		switch i % 3 {
		case 0:
			in = append(in, local+"@Example.com")
		case 1:
			in = append(in, strings.ToUpper(local)+"@example.COM")
		default:
			in = append(in, "Q"+local+"@Example.jp", "q"+local+"@example.JP", "ǆ"+local+"@例え.jp", "bad address")
		}
	}
	got, want := CleanEmails(in), refCleanEmails(in)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("map path gives %q, want %q", got, want)
	}
}

func TestUserDocumentOmitsEmptyOptionalChildren(t *testing.T) {
	for _, c := range []struct {
		name    string
		u       User
		wantOrg string
	}{
		{"all empty", User{}, "<absent>"},
		{"whitespace only", User{Designation: "  ", Phone: "\t", Organization: "\n"}, "<absent>"},
		{"unknown organization type", User{OrganizationType: "bogus"}, "<absent>"},
		{"organization type is exact", User{OrganizationType: "Shared"}, "<absent>"},
		{"shared", User{OrganizationType: "shared"}, "shared"},
		{"restricted", User{OrganizationType: "restricted"}, "restricted"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.u.UserGroup, c.u.FullName, c.u.Emails = "Registered", "Jane", []string{"a@b.c"}
			u := mustUser(t, c.u).User
			if u.Designation != nil || u.Phone != nil || u.Organization != nil {
				t.Errorf("optional child present: %+v", u)
			}
			if got := str(u.OrganizationType); got != c.wantOrg {
				t.Errorf("organizationtype = %q, want %q", got, c.wantOrg)
			}
		})
	}
}

func TestStaffDocumentHasAllSevenChildrenWhenEmpty(t *testing.T) {
	doc, err := StaffDocument(Staff{Team: "Support", FirstName: "Jane", Email: "a@b.c", LastName: " ", Signature: "\x01"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"lastname", "designation", "mobilenumber", "signature"} {
		if !bytes.Contains(doc, []byte("<"+name+"></"+name+">")) {
			t.Errorf("no empty <%s> in %q", name, doc)
		}
	}
	s := parse(t, doc).Staff
	for name, p := range map[string]*string{"team": s.Team, "firstname": s.FirstName, "lastname": s.LastName, "designation": s.Designation, "email": s.Email, "mobilenumber": s.MobileNumber, "signature": s.Signature} {
		if p == nil {
			t.Errorf("<%s> missing", name)
		}
	}
}

func TestDocumentsStartWithTheDeclarationWithoutBOM(t *testing.T) {
	user, _ := UserDocument(jane)
	staff, _ := StaffDocument(janeStaff)
	for name, doc := range map[string][]byte{"user": user, "staff": staff, "failure": FailureDocument("x")} {
		if !bytes.HasPrefix(doc, []byte(declaration)) || bytes.HasPrefix(doc, []byte("\xef\xbb\xbf")) {
			t.Errorf("%s document starts with %q", name, doc[:min(len(doc), 45)])
		}
		if !bytes.Contains(doc, []byte("\n<loginshare>\n")) {
			t.Errorf("%s document has no <loginshare> root: %q", name, doc)
		}
	}
	if !bytes.Contains(user, []byte("<result>1</result>")) || !bytes.Contains(staff, []byte("<result>1</result>")) {
		t.Errorf("success documents must carry <result>1</result> exactly")
	}
}

func TestSetHeaders(t *testing.T) {
	h := http.Header{"Content-Type": {"text/html"}}
	SetHeaders(h)
	for k, want := range map[string]string{
		"Content-Type":           "text/xml; charset=utf-8",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := h.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// Adding to one header leaves the others as they were.
	h.Add("Content-Type", "x")
	h.Add("Cache-Control", "y")
	if got := h.Values("Cache-Control"); len(got) != 2 || got[0] != "no-store" || got[1] != "y" {
		t.Errorf("Cache-Control after Add = %q", got)
	}
	if got := h.Values("X-Content-Type-Options"); len(got) != 1 || got[0] != "nosniff" {
		t.Errorf("X-Content-Type-Options after adding to the others = %q", got)
	}
}

// isXMLChar is the XML 1.0 Char production, stated directly.
func isXMLChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD ||
		(0x20 <= r && r <= 0xD7FF) || (0xE000 <= r && r <= 0xFFFD) || (0x10000 <= r && r <= 0x10FFFF)
}

func trimRunes(rs []rune) []rune {
	for len(rs) > 0 && unicode.IsSpace(rs[0]) {
		rs = rs[1:]
	}
	for len(rs) > 0 && unicode.IsSpace(rs[len(rs)-1]) {
		rs = rs[:len(rs)-1]
	}
	return rs
}

// refField is the field rule written as plainly as possible: decode rune by
// rune (a range loop yields U+FFFD for each invalid byte), keep what XML 1.0
// allows (and drop extra runes the caller names), trim white space, keep at
// most max runes, trim again.
func refField(s string, max int, drop ...rune) string {
	var rs []rune
	for _, r := range s {
		if isXMLChar(r) && !strings.ContainsRune(string(drop), r) {
			rs = append(rs, r)
		}
	}
	rs = trimRunes(rs)
	if len(rs) > max {
		rs = trimRunes(rs[:max])
	}
	return string(rs)
}

// plain reports whether s needs no cleaning for a column of max runes.
func plain(s string, max int) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if !isXMLChar(r) {
			return false
		}
	}
	return true
}

func FuzzDocuments(f *testing.F) {
	f.Add("Registered", "Jane Doe", "Engineer", "+1 555 0100")
	f.Add("Tom & Jerry <Ltd> \"Q\" 'A'", "Zoë Ångström 山田太郎 🎉", "a]]>b", "100% %s")
	f.Add("\x01\x0b\uFFFE\uFFFF", "\xff\xfe", "a\rb\r\nc", " \t\n")
	// Long enough to cut firstname, lastname, phone and mobilenumber; the
	// long columns are covered by TestTruncationIsRuneSafeAtColumnSizes
	// (long seeds make the fuzzer's minimisation crawl).
	f.Add("Support", strings.Repeat("é", 101), strings.Repeat("a 🎉", 34), strings.Repeat("٣", 26))
	f.Add("", "", "", "")
	f.Add("Jane.Doe@Example.com", "jane.doe@example.com", " a@b.c ", "Jane <a@b.c>")
	f.Add("a\xed\xa0\x80b", "\u0085x\u0085", "\u00a0", "<![CDATA[x]]>")
	f.Fuzz(checkDocuments)
}

// checkDocuments is the property FuzzDocuments checks for any four strings.
func checkDocuments(t *testing.T, a, b, c, d string) {
	{
		for _, s := range []string{a, b, c, d} {
			if simpleAddress(s) && !parseAddressAccepts(s) {
				t.Fatalf("fast path accepts %q, ParseAddress does not", s)
			}
			if ValidEmail(s) && (!parseAddressAccepts(s) || !kayako.ValidEmail(s) || len(s) > EmailMax || strings.ContainsFunc(s, unicode.IsSpace) || !plain(s, len(s))) {
				t.Fatalf("ValidEmail accepts %q", s)
			}
		}
		if utf8.ValidString(a) && utf8.ValidString(b) && (foldKey(a) == foldKey(b)) != strings.EqualFold(a, b) {
			t.Fatalf("foldKey and EqualFold disagree on %q, %q", a, b)
		}

		// User document.
		u := User{UserGroup: a, FullName: b, Designation: c, Phone: d, Organization: a + d, OrganizationType: c,
			Emails: []string{c, d, b, "X@example.com", "x@EXAMPLE.com"}}
		want := map[string]string{
			"usergroup":    refField(a, UserGroupMax),
			"fullname":     refField(b, FullNameMax),
			"designation":  refField(c, UserDesignationMax),
			"phone":        refField(d, PhoneMax),
			"organization": refField(a+d, OrganizationMax),
		}
		for name, in := range map[string]string{"usergroup": a, "fullname": b, "designation": c, "phone": d} {
			max := map[string]int{"usergroup": UserGroupMax, "fullname": FullNameMax, "designation": UserDesignationMax, "phone": PhoneMax}[name]
			if plain(in, max) && want[name] != in {
				t.Fatalf("reference changes plain %s %q", name, in)
			}
		}
		doc, err := UserDocument(u)
		if want["usergroup"] == "" || want["fullname"] == "" {
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("UserDocument(%q) err = %v, want ErrIncomplete", u, err)
			}
		} else {
			if err != nil {
				t.Fatalf("UserDocument: %v", err)
			}
			x := parse(t, doc).User
			for name, p := range map[string]*string{"usergroup": x.UserGroup, "fullname": x.FullName, "designation": x.Designation, "phone": x.Phone, "organization": x.Organization} {
				w := want[name]
				if w == "" {
					w = "<absent>"
				}
				if got := str(p); got != w {
					t.Fatalf("%s = %q, want %q (input %q)", name, got, w, u)
				}
			}
			wantType := "<absent>"
			if c == "shared" || c == "restricted" {
				wantType = c
			}
			if got := str(x.OrganizationType); got != wantType {
				t.Fatalf("organizationtype = %q, want %q", got, wantType)
			}
			if got, want := strings.Join(x.Emails.Email, "\x00"), strings.Join(refCleanEmails(u.Emails), "\x00"); got != want {
				t.Fatalf("emails = %q, want %q", x.Emails.Email, refCleanEmails(u.Emails))
			}
		}

		// Staff document.
		wantFirst := refField(b, FirstNameMax)
		wantStaff := map[string]string{
			"team":         refField(a, TeamMax),
			"firstname":    wantFirst,
			"lastname":     refField(c, min(LastNameMax, StaffFullNameMax-1-utf8.RuneCountInString(wantFirst))),
			"designation":  refField(d, StaffDesignationMax),
			"email":        "jane@example.com",
			"mobilenumber": refField(d, MobileMax),
			"signature":    refField(a+"\n"+c, SignatureMax),
		}
		s := Staff{Team: a, FirstName: b, LastName: c, Designation: d, Email: " jane@example.com ", MobileNumber: d, Signature: a + "\n" + c}
		doc, err = StaffDocument(s)
		if wantStaff["team"] == "" || wantFirst == "" {
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("StaffDocument(%q) err = %v, want ErrIncomplete", s, err)
			}
		} else {
			if err != nil {
				t.Fatalf("StaffDocument: %v", err)
			}
			x := parse(t, doc).Staff
			for name, p := range map[string]*string{"team": x.Team, "firstname": x.FirstName, "lastname": x.LastName, "designation": x.Designation, "email": x.Email, "mobilenumber": x.MobileNumber, "signature": x.Signature} {
				if p == nil || *p != wantStaff[name] {
					t.Fatalf("%s = %q, want %q (input %q)", name, str(p), wantStaff[name], s)
				}
			}
			// The staff e-mail is taken as given when valid, refused otherwise.
			s.Email = c
			doc, err = StaffDocument(s)
			if e := strings.TrimSpace(c); ValidEmail(e) {
				if err != nil {
					t.Fatalf("StaffDocument with email %q: %v", c, err)
				}
				if got := str(parse(t, doc).Staff.Email); got != e {
					t.Fatalf("email = %q, want %q", got, e)
				}
			} else if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("StaffDocument with email %q: err = %v, want ErrIncomplete", c, err)
			}
		}

		// Failure document.
		x := parse(t, FailureDocument(b))
		wantMsg := refField(b, MessageMax, '%')
		if wantMsg == "" {
			wantMsg = DefaultFailureMessage
		}
		if x.Result != "0" || str(x.Message) != wantMsg || x.User != nil || x.Staff != nil {
			t.Fatalf("failure document for %q: result %q, message %q, want %q", b, x.Result, str(x.Message), wantMsg)
		}
	}
}

func BenchmarkUserDocument(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UserDocument(jane); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStaffDocument(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := StaffDocument(janeStaff); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFailureDocument(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = FailureDocument("Invalid username or password")
	}
}
