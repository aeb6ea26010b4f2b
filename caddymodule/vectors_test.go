package caddymodule

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kayako-loginshare/caddy-loginshare/kayako"
)

// These tests run the spec's test vectors that need no directory through a
// real in-process Caddy with the static backend (and, where a backend must
// misbehave or be counted, the test-only testfake backend in front of it).

const fastFail = `failure_delay 1ms
	failure_jitter 1ms
	throttle off`

func fixtureSite(t *testing.T, extra string) *site {
	t.Helper()
	return startCaddy(t, "", fmt.Sprintf(`loginshare {
	%s
	%s
	%s
	%s
}`, fastFail, fixtureMapping, extra, fixtureStatic(t)))
}

func TestT1UserLoginAnswersTheUserDocument(t *testing.T) {
	s := fixtureSite(t, "")
	r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret", "ipaddress", "203.0.113.7"))
	if r.Status != 200 || r.Doc.Result != "1" || r.Doc.User == nil {
		t.Fatalf("want success, got %d %s", r.Status, r.Body)
	}
	u := r.Doc.User
	if u.UserGroup != "Registered" || u.FullName != "Jane Doe" || u.Designation != "Engineer" || u.Phone != "+1 555 0100" {
		t.Errorf("user document: %+v", u)
	}
	if len(u.Emails) != 1 || !strings.EqualFold(u.Emails[0], "jane.doe@example.com") {
		t.Errorf("emails %v", u.Emails)
	}
	if !strings.HasPrefix(r.Body, `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("body does not start with the XML declaration: %q", r.Body[:min(40, len(r.Body))])
	}
	if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Content-Type") != "text/xml; charset=utf-8" {
		t.Errorf("headers %v", r.Header)
	}
	if r.Doc.Message != nil {
		t.Errorf("success carries a message: %s", r.Body)
	}
	want := &kayako.UserRecord{UserGroup: "Registered", FullName: "Jane Doe", Designation: "Engineer", Phone: "+1 555 0100",
		Emails: []string{"jane.doe@example.com"}}
	if v := mustLogin(t, kayako.User, r); !reflect.DeepEqual(v.User, want) || len(v.Notes) != 0 {
		t.Errorf("Kayako would store %+v (notes %q), want %+v", v.User, v.Notes, want)
	}
}

func TestT2StaffLoginAnswersAllSevenChildren(t *testing.T) {
	s := fixtureSite(t, "")
	r := s.post("/loginshare/staff", form("username", "jdoe", "password", "s3cret", "ipaddress", "203.0.113.7", "interface", "staff"))
	if r.Doc.Result != "1" || r.Doc.Staff == nil {
		t.Fatalf("want staff success, got %s", r.Body)
	}
	st := r.Doc.Staff
	for name, p := range map[string]*string{"team": st.Team, "firstname": st.FirstName, "lastname": st.LastName,
		"designation": st.Designation, "email": st.Email, "mobilenumber": st.MobileNumber, "signature": st.Signature} {
		if p == nil {
			t.Errorf("staff child <%s> missing: %s", name, r.Body)
		}
	}
	if t.Failed() {
		return
	}
	if *st.Team != "Support" || *st.FirstName != "Jane" || *st.LastName != "Doe" || *st.Designation != "Engineer" ||
		!strings.EqualFold(*st.Email, "jane.doe@example.com") {
		t.Errorf("staff document: %s", r.Body)
	}
	want := &kayako.StaffRecord{Team: "Support", FirstName: "Jane", LastName: "Doe", FullName: "Jane Doe",
		Designation: "Engineer", Email: "jane.doe@example.com"}
	if v := mustLogin(t, kayako.Staff, r); !reflect.DeepEqual(v.Staff, want) || len(v.Notes) != 0 {
		t.Errorf("Kayako would store %+v (notes %q), want %+v", v.Staff, v.Notes, want)
	}
}

func TestT3T4WrongPasswordAndUnknownUserLookAlike(t *testing.T) {
	s := fixtureSite(t, "")
	wrong := s.post("/loginshare/user", form("username", "jdoe", "password", "nope", "ipaddress", "203.0.113.7"))
	unknown := s.post("/loginshare/user", form("username", "nobody", "password", "nope", "ipaddress", "203.0.113.7"))
	mustFail(t, wrong, 200, DefaultMessageInvalid)
	mustFail(t, unknown, 200, DefaultMessageInvalid)
	if wrong.Body != unknown.Body {
		t.Errorf("bodies differ:\n%s\n%s", wrong.Body, unknown.Body)
	}
}

func TestT5T6EmptyOrMissingFieldsFailWithoutBackendCall(t *testing.T) {
	s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	%s
	backend testfake {
		name t5
		user jdoe s3cret
	}
}`, fastFail))
	cases := map[string][]string{
		"empty password":       {"username", "jdoe", "password", ""},
		"space password":       {"username", "jdoe", "password", "   "},
		"tab-newline password": {"username", "jdoe", "password", "\t\r\n"},
		"missing password":     {"username", "jdoe"},
		"missing username":     {"password", "s3cret"},
		"empty username":       {"username", "", "password", "s3cret"},
		"space username":       {"username", "  ", "password", "s3cret"},
		"nothing":              {},
	}
	for name, kv := range cases {
		t.Run(name, func(t *testing.T) {
			mustFail(t, s.post("/loginshare/user", form(kv...)), 200, DefaultMessageInvalid)
		})
	}
	if n := fakeCount("t5"); n != 0 {
		t.Errorf("backend was called %d times", n)
	}
	// The control: a complete request does reach the backend.
	if r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret")); r.Doc.Result != "1" {
		t.Fatalf("control login failed: %s", r.Body)
	}
	if fakeCount("t5") != 1 {
		t.Errorf("control login did not reach the backend")
	}
}

func TestT7MissingOrEmptyIPAddressIsTreatedNormally(t *testing.T) {
	s := fixtureSite(t, "")
	for _, f := range []map[string]string{{}, {"ipaddress": ""}, {"ipaddress": "2001:db8::1"}} {
		v := form("username", "jdoe", "password", "s3cret")
		for k, x := range f {
			v.Set(k, x)
		}
		if r := s.post("/loginshare/user", v); r.Doc.Result != "1" {
			t.Errorf("%v: %s", f, r.Body)
		}
	}
}

func TestT8InterfaceOnUserEndpointIsIgnored(t *testing.T) {
	s := fixtureSite(t, "")
	r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret", "interface", "admin"))
	if r.Doc.Result != "1" || r.Doc.User == nil || r.Doc.User.UserGroup != "Registered" {
		t.Fatalf("got %s", r.Body)
	}
}

func TestT9OtherMethodsGet405WithFailureDocument(t *testing.T) {
	s := fixtureSite(t, "")
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		r := s.do(m, "/loginshare/user", "", nil)
		mustFail(t, r, http.StatusMethodNotAllowed, DefaultMessageInvalid)
		if r.Header.Get("Allow") != "POST" {
			t.Errorf("%s: Allow %q", m, r.Header.Get("Allow"))
		}
	}
	r := s.do(http.MethodGet, "/loginshare/staff", "", nil)
	mustFail(t, r, http.StatusMethodNotAllowed, DefaultMessageInvalid)
}

func TestT10MultipartAndJSONBodiesFail(t *testing.T) {
	s := fixtureSite(t, "")
	mp := "--XX\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\njdoe\r\n--XX\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\ns3cret\r\n--XX--\r\n"
	mustFail(t, s.do("POST", "/loginshare/user", "multipart/form-data; boundary=XX", strings.NewReader(mp)), 200, DefaultMessageInvalid)
	mustFail(t, s.do("POST", "/loginshare/user", "application/json", strings.NewReader(`{"username":"jdoe","password":"s3cret"}`)), 200, DefaultMessageInvalid)
	mustFail(t, s.do("POST", "/loginshare/user", "", strings.NewReader("username=jdoe&password=s3cret")), 200, DefaultMessageInvalid)
	mustFail(t, s.do("POST", "/loginshare/user", "application/x-www-form-urlencoded", strings.NewReader("username=%zz&password=s3cret")), 200, DefaultMessageInvalid)
}

func TestCredentialsInTheQueryStringAreIgnored(t *testing.T) {
	s := fixtureSite(t, "")
	r := s.do("POST", "/loginshare/user?username=jdoe&password=s3cret", "application/x-www-form-urlencoded", strings.NewReader("ipaddress=1.2.3.4"))
	mustFail(t, r, 200, DefaultMessageInvalid)
}

func TestAStrayCharacterInTheURLQueryDoesNotBreakLogins(t *testing.T) {
	s := fixtureSite(t, "")
	for _, q := range []string{"?a=%zz", "?x;y", "?type=staff&%"} {
		if r := s.post("/loginshare/user"+q, form("username", "jdoe", "password", "s3cret")); r.Doc.Result != "1" {
			t.Errorf("%s: %s", q, r.Body)
		}
	}
	// Charset parameters on the content type are tolerated; other types are not forms.
	r := s.do("POST", "/loginshare/user", "application/x-www-form-urlencoded; charset=UTF-8", strings.NewReader("username=jdoe&password=s3cret"))
	if r.Doc.Result != "1" {
		t.Errorf("with charset: %s", r.Body)
	}
	mustFail(t, s.do("POST", "/loginshare/user", "text/plain", strings.NewReader("username=jdoe&password=s3cret")), 200, DefaultMessageInvalid)
}

func TestT11AdminInterfaceIsDeniedByDefault(t *testing.T) {
	s := fixtureSite(t, "")
	r := s.post("/loginshare/staff", form("username", "admin1", "password", "s3cret", "interface", "admin"))
	mustFail(t, r, 200, DefaultMessageDenied)
}

func TestT12AdminInterfaceWhenListed(t *testing.T) {
	s := fixtureSite(t, "staff_interfaces staff admin")
	r := s.post("/loginshare/staff", form("username", "admin1", "password", "s3cret", "interface", "admin"))
	if r.Doc.Result != "1" || r.Doc.Staff == nil || *r.Doc.Staff.Team != "Administrator" {
		t.Fatalf("got %s", r.Body)
	}
	// staff_interfaces replaces the default list: winapp is no longer accepted.
	mustFail(t, s.post("/loginshare/staff", form("username", "jdoe", "password", "s3cret", "interface", "winapp")), 200, DefaultMessageDenied)
}

func TestT13OtherStaffInterfacesAreAccepted(t *testing.T) {
	s := fixtureSite(t, "")
	for _, i := range []string{"staff", "winapp", "staffapi", "mobile", "intranet"} {
		r := s.post("/loginshare/staff", form("username", "jdoe", "password", "s3cret", "interface", i))
		if r.Doc.Result != "1" {
			t.Errorf("%s: %s", i, r.Body)
		}
	}
}

func TestT14T15MissingOrUnknownStaffInterfaceIsRefused(t *testing.T) {
	s := fixtureSite(t, "")
	for _, v := range []map[string]string{{}, {"interface": "Staff"}, {"interface": "bogus"}, {"interface": ""}, {"interface": "pda"}} {
		f := form("username", "jdoe", "password", "s3cret")
		for k, x := range v {
			f.Set(k, x)
		}
		mustFail(t, s.post("/loginshare/staff", f), 200, DefaultMessageDenied)
	}
}

func TestT16AuthenticatedButUnmappedIsRefused(t *testing.T) {
	s := fixtureSite(t, "")
	// lonely has no groups: no team, no default.
	mustFail(t, s.post("/loginshare/staff", form("username", "lonely", "password", "s3cret", "interface", "staff")), 200, DefaultMessageInvalid)
	mustFail(t, s.post("/loginshare/user", form("username", "lonely", "password", "s3cret")), 200, DefaultMessageInvalid)
}

func TestStaffEndpointRefusesEveryoneWithoutStaffTeams(t *testing.T) {
	s := startCaddy(t, "", fmt.Sprintf("loginshare {\n%s\n%s\n}", fastFail, fixtureStatic(t)))
	mustFail(t, s.post("/loginshare/staff", form("username", "jdoe", "password", "s3cret", "interface", "staff")), 200, DefaultMessageInvalid)
	// And user_groups omitted: everyone is Registered, even without groups.
	r := s.post("/loginshare/user", form("username", "lonely", "password", "s3cret"))
	if r.Doc.Result != "1" || r.Doc.User.UserGroup != "Registered" {
		t.Fatalf("got %s", r.Body)
	}
}

func TestEmptyUserGroupsRefusesEveryone(t *testing.T) {
	s := startCaddy(t, "", fmt.Sprintf("loginshare {\n%s\nuser_groups {\n}\n%s\n}", fastFail, fixtureStatic(t)))
	mustFail(t, s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret")), 200, DefaultMessageInvalid)
}

func TestT17DefaultUserGroupForUnmappedUser(t *testing.T) {
	s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	%s
	user_groups {
		default Guests
		helpdesk-users Registered
	}
	staff_teams {
		default "First Line"
	}
	%s
}`, fastFail, fixtureStatic(t)))
	r := s.post("/loginshare/user", form("username", "lonely", "password", "s3cret"))
	if r.Doc.Result != "1" || r.Doc.User.UserGroup != "Guests" {
		t.Fatalf("got %s", r.Body)
	}
	// default is used only when no line matches, wherever it stands.
	r = s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret"))
	if r.Doc.Result != "1" || r.Doc.User.UserGroup != "Registered" {
		t.Fatalf("got %s", r.Body)
	}
	r = s.post("/loginshare/staff", form("username", "lonely", "password", "s3cret", "interface", "staff"))
	if r.Doc.Result != "1" || *r.Doc.Staff.Team != "First Line" {
		t.Fatalf("got %s", r.Body)
	}
}

func TestT18FirstMappingLineWins(t *testing.T) {
	// "both" is in helpdesk-staff then helpdesk-users; the mapping's order decides.
	for _, tc := range []struct{ mapping, want string }{
		{"helpdesk-users Registered\n helpdesk-staff Staffers", "Registered"},
		{"HELPDESK-STAFF Staffers\n helpdesk-users Registered", "Staffers"},
	} {
		s := startCaddy(t, "", fmt.Sprintf("loginshare {\n%s\nuser_groups {\n%s\n}\n%s\n}", fastFail, tc.mapping, fixtureStatic(t)))
		r := s.post("/loginshare/user", form("username", "both", "password", "s3cret"))
		if r.Doc.Result != "1" || r.Doc.User.UserGroup != tc.want {
			t.Errorf("mapping %q: got %s", tc.mapping, r.Body)
		}
	}
}

func TestT19PercentEncodedPasswordIsDecodedOnce(t *testing.T) {
	s := fixtureSite(t, "")
	// Sent as p%40ss%2Bw%25rd%26x%3Dy, as PHP urlencode does.
	r := s.post("/loginshare/user", form("username", "symbols", "password", "p@ss+w%rd&x=y"))
	if r.Doc.Result != "1" {
		t.Fatalf("got %s", r.Body)
	}
	// Decoded twice it would be a different password.
	r = s.post("/loginshare/user", form("username", "symbols", "password", "p%40ss%2Bw%25rd%26x%3Dy"))
	mustFail(t, r, 200, DefaultMessageInvalid)
}

func TestT21T22T24TextSurvivesEscaping(t *testing.T) {
	s := fixtureSite(t, "")
	for user, want := range map[string]string{
		"amp":     `Tom & Jerry <Ltd> "Q" 'A'`,
		"unicode": "Zoë Ångström 山田太郎 🎉",
		"cdata":   "a]]>b",
	} {
		r := s.post("/loginshare/user", form("username", user, "password", "s3cret"))
		if r.Doc.Result != "1" || r.Doc.User.FullName != want {
			t.Errorf("%s: got %s", user, r.Body)
		}
	}
}

func TestT33OverlongFieldsFailWithoutBackendCall(t *testing.T) {
	s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	%s
	backend testfake {
		name t33
	}
}`, fastFail))
	long := strings.Repeat("x", 10000)
	mustFail(t, s.post("/loginshare/user", form("username", long, "password", "s3cret")), 200, DefaultMessageInvalid)
	mustFail(t, s.post("/loginshare/user", form("username", "jdoe", "password", long)), 200, DefaultMessageInvalid)
	mustFail(t, s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret", "ipaddress", long)), 200, DefaultMessageInvalid)
	if n := fakeCount("t33"); n != 0 {
		t.Errorf("backend called %d times", n)
	}
}

func TestT34OversizedBodyGets413WithFailureDocument(t *testing.T) {
	s := fixtureSite(t, "")
	// Over max_body (16KiB) but small enough that the client finishes writing.
	big := "username=jdoe&password=s3cret&pad=" + strings.Repeat("a", 64<<10)
	r := s.do("POST", "/loginshare/user", "application/x-www-form-urlencoded", strings.NewReader(big))
	mustFail(t, r, http.StatusRequestEntityTooLarge, DefaultMessageInvalid)
	// Without a Content-Length (chunked), MaxBytesReader stops it while reading.
	r = s.do("POST", "/loginshare/user", "application/x-www-form-urlencoded", struct{ io.Reader }{strings.NewReader(big)})
	mustFail(t, r, http.StatusRequestEntityTooLarge, DefaultMessageInvalid)

	// A 1 MiB body is answered from the headers alone: the answer arrives
	// while most of the body was never sent.
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /loginshare/user HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\nusername=jdoe&password=s3cret&pad=aaaa", 1<<20)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "<result>0</result>") {
		t.Errorf("1 MiB body: %d %s", resp.StatusCode, body)
	}
}

func TestT35DuplicateFieldsFail(t *testing.T) {
	s := fixtureSite(t, "")
	for _, body := range []string{
		"username=a&username=jdoe&password=s3cret",
		"username=jdoe&password=s3cret&password=s3cret",
		"username=jdoe&password=s3cret&interface=staff&interface=staff",
	} {
		mustFail(t, s.do("POST", "/loginshare/user", "application/x-www-form-urlencoded", strings.NewReader(body)), 200, DefaultMessageInvalid)
	}
}

func TestNULAndInvalidUTF8Fail(t *testing.T) {
	s := fixtureSite(t, "")
	for _, body := range []string{
		"username=jdoe%00&password=s3cret",
		"username=jdoe&password=s3%00cret",
		"username=jd%FFoe&password=s3cret",
		"username=jdoe&password=s3cret%C3",
	} {
		mustFail(t, s.do("POST", "/loginshare/user", "application/x-www-form-urlencoded", strings.NewReader(body)), 200, DefaultMessageInvalid)
	}
}

func TestT36SHA1RememberMeTokenIsAnOrdinaryFailure(t *testing.T) {
	s := fixtureSite(t, "")
	r := s.post("/loginshare/staff", form("username", "jdoe", "password", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12", "interface", "staff"))
	mustFail(t, r, 200, DefaultMessageInvalid)
}

// Kayako's staff remember-me sends sha1(password) from its cookie: it can
// never succeed, and sent to AD it would count against the lockout threshold.
func TestRememberMeSHA1NeverReachesTheDirectory(t *testing.T) {
	const sha1 = "2FD4E1C67A2D28FCED849EE1BB76E7391B93EB12"
	for _, tc := range []struct {
		setting, iface string
		calls          int64
	}{
		{"", "staff", 0},
		{"", "admin", 0},
		{"", "winapp", 1}, // the desktop app sends the real password
		{"remember_me_hashes try", "staff", 1},
	} {
		name := fmt.Sprintf("rm-%s-%s", strings.ReplaceAll(tc.setting, " ", "-"), tc.iface)
		s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	%s
	staff_interfaces staff admin winapp
	%s
	staff_teams {
		default Support
	}
	backend testfake {
		name %s
		user jdoe s3cret
	}
}`, fastFail, tc.setting, name))
		mustFail(t, s.post("/loginshare/staff", form("username", "jdoe", "password", sha1, "interface", tc.iface)), 200, DefaultMessageInvalid)
		if got := fakeCount(name); got != tc.calls {
			t.Errorf("%q %s: backend called %d times, want %d", tc.setting, tc.iface, got, tc.calls)
		}
		// The real password still goes through.
		if r := s.post("/loginshare/staff", form("username", "jdoe", "password", "s3cret", "interface", tc.iface)); r.Doc.Result != "1" {
			t.Errorf("%q %s: real password refused: %s", tc.setting, tc.iface, r.Body)
		}
		if err := stopCaddy(); err != nil {
			t.Fatal(err)
		}
		if tc.calls == 0 {
			lines := auditLines(t, s.logFile)
			if len(lines) == 0 || lines[0]["outcome"] != "bad_request" {
				t.Errorf("%q %s: audit %v", tc.setting, tc.iface, lines)
			}
		}
	}
	// The user endpoint is never affected: the support centre remembers real passwords.
	s := startCaddy(t, "", fmt.Sprintf("loginshare {\n%s\nbackend testfake {\nname rm-user\nuser jdoe s3cret\n}\n}", fastFail))
	s.post("/loginshare/user", form("username", "jdoe", "password", sha1))
	if fakeCount("rm-user") != 1 {
		t.Errorf("user endpoint: backend calls %d", fakeCount("rm-user"))
	}
}

func TestT41StaffFirstNameFallsBackToFullName(t *testing.T) {
	s := fixtureSite(t, "")
	r := s.post("/loginshare/staff", form("username", "nogiven", "password", "s3cret", "interface", "staff"))
	if r.Doc.Result != "1" || *r.Doc.Staff.FirstName != "Nog" {
		t.Fatalf("got %s", r.Body)
	}
}

func TestT42OverlongValuesAreTruncatedRuneSafely(t *testing.T) {
	s := fixtureSite(t, "")
	r := s.post("/loginshare/user", form("username", "long", "password", "s3cret"))
	if r.Doc.Result == "1" {
		t.Fatalf("long is not in a user group, want failure: %s", r.Body)
	}
	r = s.post("/loginshare/staff", form("username", "long", "password", "s3cret", "interface", "staff"))
	if r.Doc.Result != "1" {
		t.Fatalf("got %s", r.Body)
	}
	fn, mob := *r.Doc.Staff.FirstName, *r.Doc.Staff.MobileNumber
	if utf8.RuneCountInString(fn) != 100 || !utf8.ValidString(fn) || strings.Trim(fn, "é") != "" {
		t.Errorf("firstname %d runes: %q", utf8.RuneCountInString(fn), fn)
	}
	if mob != strings.Repeat("9", 20) {
		t.Errorf("mobilenumber %q", mob)
	}
	s2 := startCaddy(t, "", fmt.Sprintf("loginshare {\n%s\nuser_groups {\ndefault Registered\n}\n%s\n}", fastFail, fixtureStatic(t)))
	r = s2.post("/loginshare/user", form("username", "long", "password", "s3cret"))
	if r.Doc.Result != "1" {
		t.Fatalf("got %s", r.Body)
	}
	if n := utf8.RuneCountInString(r.Doc.User.FullName); n != 200 {
		t.Errorf("fullname has %d runes", n)
	}
	if r.Doc.User.Phone != strings.Repeat("1", 25) {
		t.Errorf("phone %q", r.Doc.User.Phone)
	}
}

func TestUserWithoutEmailIsRefused(t *testing.T) {
	s := fixtureSite(t, "")
	mustFail(t, s.post("/loginshare/user", form("username", "nomail", "password", "s3cret")), 200, DefaultMessageInvalid)
}

// An intranet address with a single-label domain is one Kayako keeps (its
// is_email takes it), so a person whose only address it is logs in; an
// address Kayako would drop is not sent at all.
func TestSingleLabelEmailDomainLogsIn(t *testing.T) {
	s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	%s
	backend static {
		user jane %s {
			full_name "Jane Intranet"
			email jane@corp
			email jane@exämple.org
		}
	}
}`, fastFail, hashOf(t, "s3cret")))
	v := mustLogin(t, kayako.User, s.post("/loginshare/user", form("username", "jane", "password", "s3cret")))
	if v.User == nil || !reflect.DeepEqual(v.User.Emails, []string{"jane@corp"}) || len(v.User.Dropped) != 0 {
		t.Errorf("Kayako would keep %+v", v.User)
	}
}

func TestT45PanicStillAnswersAFailureDocument(t *testing.T) {
	for _, module := range fakeModules {
		t.Run(module, func(t *testing.T) {
			name := uniqueName("t45")
			// max_concurrent 1: a panic that kept its slot would leave the
			// second login waiting for it, never reaching the backend.
			s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	%s
	timeout 1s
	max_concurrent 1
	backend %s {
		name %s
		panic
	}
}`, fastFail, module, name))
			r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret"))
			mustFail(t, r, 200, DefaultMessageUnavail)
			if strings.Contains(r.Body, "internal detail") || strings.Contains(r.Body, "goroutine") {
				t.Errorf("internal text leaked: %s", r.Body)
			}
			// The server survives and keeps answering.
			r = s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret"))
			mustFail(t, r, 200, DefaultMessageUnavail)
			if fakeCount(name) != 2 {
				t.Errorf("backend calls %d, want 2", fakeCount(name))
			}
		})
	}
}

func TestOtherPathsPassToTheNextHandler(t *testing.T) {
	s := fixtureSite(t, "")
	for _, p := range []string{"/", "/loginshare", "/loginshare/users", "/loginshare/user/x", "/index.php?/Base/User/Login"} {
		r := s.do("GET", p, "", nil)
		if r.Status != 200 || r.Body != "next handler" {
			t.Errorf("%s: %d %q", p, r.Status, r.Body)
		}
	}
	// A trailing slash variant of the path is the endpoint too.
	r := s.post("/loginshare/user/", form("username", "jdoe", "password", "s3cret"))
	if r.Doc.Result != "1" {
		t.Errorf("trailing slash: %s", r.Body)
	}
}

func TestCustomPathsAndMessages(t *testing.T) {
	s := fixtureSite(t, `user_path /ls/u
	staff_path /ls/s
	message_invalid "Wrong login"
	messages {
		denied "Not here"
	}`)
	mustFail(t, s.post("/ls/u", form("username", "jdoe", "password", "x")), 200, "Wrong login")
	mustFail(t, s.post("/ls/s", form("username", "jdoe", "password", "s3cret", "interface", "admin")), 200, "Not here")
	if r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret")); r.Body != "next handler" {
		t.Errorf("default path still intercepted: %s", r.Body)
	}
}

func TestUnavailableBackendAnswersUnavailableAndNextBackendIsAsked(t *testing.T) {
	s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	%s
	backend testfake {
		name down
		unavailable
	}
	%s
}`, fastFail, fixtureStatic(t)))
	// A later backend that knows the user decides.
	if r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret")); r.Doc.Result != "1" {
		t.Errorf("got %s", r.Body)
	}
	// Nobody knows the user and one backend was down: we cannot claim the password is wrong.
	mustFail(t, s.post("/loginshare/user", form("username", "nobody", "password", "x")), 200, DefaultMessageUnavail)
}

func TestT44BlockedBackendAnswersWithinTimeout(t *testing.T) {
	for _, module := range fakeModules {
		t.Run(module, func(t *testing.T) {
			s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	timeout 300ms
	failure_delay 1ms
	failure_jitter 1ms
	backend %s {
		name %s
		block
	}
}`, module, uniqueName("t44")))
			start := time.Now()
			r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret"))
			mustFail(t, r, 200, DefaultMessageUnavail)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("answered after %v; timeout is 300ms", d)
			}
		})
	}
}

// TestQuickStartCaddyfileServesTheDemoAccounts runs Caddyfile.example (on
// another port) and checks what the README promises of it.
func TestQuickStartCaddyfileServesTheDemoAccounts(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cfg := strings.ReplaceAll(string(raw), "http://127.0.0.1:8080 {", fmt.Sprintf("http://127.0.0.1:%d {", port))
	if cfg == string(raw) {
		t.Fatal("Caddyfile.example no longer serves http://127.0.0.1:8080")
	}
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	s := loadConfig(t, testGlobals(logFile, "")+cfg, port, logFile)

	r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret", "ipaddress", "203.0.113.7"))
	if r.Doc.Result != "1" || r.Doc.User.UserGroup != "Registered" || r.Doc.User.FullName != "Jane Doe" {
		t.Errorf("jdoe user login: %s", r.Body)
	}
	r = s.post("/loginshare/staff", form("username", "jdoe", "password", "s3cret", "interface", "staff"))
	if r.Doc.Result != "1" || *r.Doc.Staff.Team != "Support" {
		t.Errorf("jdoe staff login: %s", r.Body)
	}
	r = s.post("/loginshare/staff", form("username", "admin1", "password", "s3cret", "interface", "staff"))
	if r.Doc.Result != "1" || *r.Doc.Staff.Team != "Administrator" {
		t.Errorf("admin1 staff login: %s", r.Body)
	}
	mustFail(t, s.post("/loginshare/user", form("username", "admin1", "password", "s3cret")), 200, DefaultMessageInvalid)
	mustFail(t, s.post("/loginshare/user", form("username", "jdoe", "password", "wrong")), 200, DefaultMessageInvalid)
	mustFail(t, s.do("GET", "/loginshare/user", "", nil), http.StatusMethodNotAllowed, DefaultMessageInvalid)
}
