package caddymodule

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/kayako-loginshare/caddy-loginshare/internal/phptest"
)

// These tests put a PHP client in Kayako's place: testdata/kayako_client.php
// sends with PHP cURL and reads with SimpleXML (libxml2) the way Kayako's
// LoginShare classes do (see the comment at its top). The rest of the suite
// reads our answers with encoding/xml only.

// phpBinary is php with the extensions these tests use.
func phpBinary(t *testing.T) string {
	t.Helper()
	return phptest.Binary(t, "curl", "SimpleXML", "mbstring", "json", "filter")
}

// kayakoVerdict is what kayako_client.php prints.
type kayakoVerdict struct {
	Verdict          string         `json:"verdict"`
	Message          *string        `json:"message"`
	UserGroup        *string        `json:"usergroup"`
	FullName         *string        `json:"fullname"`
	Emails           []string       `json:"emails"`
	Designation      *string        `json:"designation"`
	Phone            *string        `json:"phone"`
	Organization     *string        `json:"organization"`
	OrganizationType *string        `json:"organizationtype"`
	Team             *string        `json:"team"`
	FirstName        *string        `json:"firstname"`
	LastName         *string        `json:"lastname"`
	Email            *string        `json:"email"`
	MobileNumber     *string        `json:"mobilenumber"`
	Signature        *string        `json:"signature"`
	MbStrlen         map[string]int `json:"mb_strlen"`
	HTTPStatus       int            `json:"http_status"`
	CurlError        *string        `json:"curl_error"`
	Body             []byte         `json:"body_base64"`
}

// kayakoLogin runs the PHP client against url as a user or staff login
// (kind) with the given fields, and returns what Kayako would conclude.
func kayakoLogin(t *testing.T, php, url, kind string, fields map[string]string) kayakoVerdict {
	t.Helper()
	in, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(php, "testdata/kayako_client.php", url, kind)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("php kayako_client.php %s %s: %v\nstderr: %s\nstdout: %s", url, kind, err, stderr.String(), stdout.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("php wrote to stderr: %s", stderr.String())
	}
	var v kayakoVerdict
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
		t.Fatalf("client output is not JSON: %v\n%s", err, stdout.String())
	}
	return v
}

func deref(p *string) string {
	if p == nil {
		return "<absent>"
	}
	return *p
}

// TestKayakoPHPClientSendsAndReadsLikeKayako checks the client itself against
// a recording server: the exact bytes it sends, and its verdict on the reply
// shapes the protocol reference lists, so that the Caddy test below proves
// something about Kayako and not about a lenient client.
func TestKayakoPHPClientSendsAndReadsLikeKayako(t *testing.T) {
	php := phpBinary(t)

	type seen struct {
		method, uri, body string
		header            http.Header
	}
	var (
		mu   sync.Mutex
		reqs []seen
	)
	const userOK = `<?xml version="1.0" encoding="UTF-8"?>
<loginshare><result>1</result><user><usergroup>Registered</usergroup><fullname>Jane Doe</fullname>
<emails><email>not an email</email><email>Mixed.Case@Example.COM</email><email>a b@example.com</email></emails></user></loginshare>`
	const staffOK = `<loginshare><result>1</result><staff><team>Support</team><firstname>Jane</firstname><lastname/>
<designation/><email> Jane@Example.com </email><mobilenumber/><signature/></staff></loginshare>`
	replies := map[string]struct {
		status int
		body   string
	}{
		"/user-ok":          {200, userOK},
		"/user-ok-500":      {500, userOK},
		"/leading-space":    {200, "\n\r\n\t " + userOK + "\n\n"},
		"/other-root":       {200, strings.ReplaceAll(userOK, "loginshare>", "anything>")},
		"/empty":            {200, ""},
		"/zero":             {200, "0"},
		"/empty-404":        {404, ""},
		"/html":             {200, "<html><body>Oops</body></html>"},
		"/garbage":          {200, "result=1"},
		"/no-result":        {200, `<loginshare><message>x</message></loginshare>`},
		"/Result":           {200, `<loginshare><Result>1</Result></loginshare>`},
		"/unescaped-amp":    {200, strings.Replace(userOK, "Jane Doe", "Tom & Jerry", 1)},
		"/control-char":     {200, strings.Replace(userOK, "Jane Doe", "Jane\x01Doe", 1)},
		"/fail":             {200, `<loginshare><result>0</result><message>Nope &amp; never</message></loginshare>`},
		"/fail-true":        {200, `<loginshare><result>true</result><message>m</message></loginshare>`},
		"/result-2":         {200, strings.Replace(userOK, "<result>1<", "<result>2<", 1)},
		"/result-01":        {200, strings.Replace(userOK, "<result>1<", "<result> 01<", 1)},
		"/no-fullname":      {200, strings.Replace(userOK, "<fullname>Jane Doe</fullname>", "", 1)},
		"/empty-fullname":   {200, strings.Replace(userOK, "<fullname>Jane Doe</fullname>", "<fullname> </fullname>", 1)},
		"/no-valid-email":   {200, strings.Replace(userOK, "<email>Mixed.Case@Example.COM</email>", "", 1)},
		"/staff-ok":         {200, staffOK},
		"/staff-no-sig":     {200, strings.Replace(staffOK, "<signature/>", "", 1)},
		"/staff-user-reply": {200, userOK},
		"/staff-no-first":   {200, strings.Replace(staffOK, "<firstname>Jane</firstname>", "<firstname></firstname>", 1)},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, seen{r.Method, r.RequestURI, string(b), r.Header.Clone()})
		mu.Unlock()
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/user-ok", http.StatusFound)
			return
		}
		rep, ok := replies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(rep.status)
		io.WriteString(w, rep.body)
	}))
	defer srv.Close()

	// What goes over the wire.
	v := kayakoLogin(t, php, srv.URL+"/user-ok?key=s3cr%2Ft", "user", map[string]string{
		"password": "p@ss+w%rd&x=y ~é", "username": "Jane Doe", "ipaddress": "2001:db8::1"})
	if v.Verdict != "success" {
		t.Errorf("user-ok: %+v", v)
	}
	kayakoLogin(t, php, srv.URL+"/staff-ok", "staff", map[string]string{"username": "jdoe", "password": "s3cret", "interface": "staff"})
	mu.Lock()
	got := append([]seen(nil), reqs...)
	reqs = nil
	mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("server saw %d requests, want 2", len(got))
	}
	want := []seen{
		{method: "POST", uri: "/user-ok?key=s3cr%2Ft",
			body: "username=Jane+Doe&password=p%40ss%2Bw%25rd%26x%3Dy+%7E%C3%A9&ipaddress=2001%3Adb8%3A%3A1"},
		{method: "POST", uri: "/staff-ok",
			body: "username=jdoe&password=s3cret&ipaddress=&interface=staff"},
	}
	for i, w := range want {
		g := got[i]
		if g.method != w.method || g.uri != w.uri || g.body != w.body {
			t.Errorf("request %d: %s %s %q, want %s %s %q", i, g.method, g.uri, g.body, w.method, w.uri, w.body)
		}
		if ct := g.header.Values("Content-Type"); len(ct) != 1 || ct[0] != "application/x-www-form-urlencoded" {
			t.Errorf("request %d: Content-Type %q", i, ct)
		}
		if ua := g.header.Get("User-Agent"); ua != "SWIFT_LoginShare" {
			t.Errorf("request %d: User-Agent %q", i, ua)
		}
		for _, h := range []string{"Authorization", "Cookie", "Expect"} {
			if g.header.Get(h) != "" {
				t.Errorf("request %d: unexpected %s header", i, h)
			}
		}
	}

	// What Kayako concludes from each reply.
	for _, tc := range []struct {
		path, kind, verdict string
		check               func(v kayakoVerdict) bool
	}{
		{"/user-ok", "user", "success", func(v kayakoVerdict) bool {
			// Invalid addresses dropped, the valid one lower-cased.
			return len(v.Emails) == 1 && v.Emails[0] == "mixed.case@example.com" && deref(v.FullName) == "Jane Doe"
		}},
		{"/user-ok-500", "user", "success", nil},
		{"/leading-space", "user", "success", nil},
		{"/other-root", "user", "success", nil},
		{"/empty", "user", "invalid_data_1", nil},
		{"/zero", "user", "invalid_data_1", nil},
		{"/empty-404", "user", "invalid_data_1", nil},
		{"/redirect", "user", "invalid_data_1", func(v kayakoVerdict) bool { return v.HTTPStatus == http.StatusFound }},
		{"/html", "user", "invalid_data_2", nil},
		{"/garbage", "user", "invalid_data_2", nil},
		{"/no-result", "user", "invalid_data_2", nil},
		{"/Result", "user", "invalid_data_2", nil},
		{"/unescaped-amp", "user", "invalid_data_2", nil},
		{"/control-char", "user", "invalid_data_2", nil},
		{"/fail", "user", "failure", func(v kayakoVerdict) bool { return deref(v.Message) == "Nope & never" }},
		{"/fail", "staff", "failure", nil},
		{"/fail-true", "user", "failure", nil},
		{"/result-2", "user", "invalid_data_5", nil},
		{"/result-01", "user", "success", nil},
		{"/no-fullname", "user", "invalid_data_5", nil},
		{"/empty-fullname", "user", "kayako_exception", nil},
		{"/no-valid-email", "user", "no_emails", nil},
		{"/staff-ok", "staff", "success", func(v kayakoVerdict) bool {
			return deref(v.Email) == "jane@example.com" && deref(v.LastName) == "" && deref(v.Signature) == ""
		}},
		{"/staff-no-sig", "staff", "invalid_data_5", nil},
		{"/staff-user-reply", "staff", "invalid_data_5", nil},
		{"/user-ok", "staff", "invalid_data_5", nil},
		{"/staff-no-first", "staff", "kayako_exception", nil},
	} {
		v := kayakoLogin(t, php, srv.URL+tc.path, tc.kind, map[string]string{"username": "u", "password": "p"})
		if v.Verdict != tc.verdict || (tc.check != nil && !tc.check(v)) {
			t.Errorf("%s (%s): verdict %q, want %q; %+v\nbody %q", tc.path, tc.kind, v.Verdict, tc.verdict, v, v.Body)
		}
	}
	// Every request was a POST: the 302 above was not followed (cURL would
	// have followed it with a GET of /user-ok).
	mu.Lock()
	defer mu.Unlock()
	for _, r := range reqs {
		if r.method != "POST" {
			t.Errorf("the client sent %s %s", r.method, r.uri)
		}
	}
}

// TestKayakoPHPClientAcceptsOurAnswers runs the spec's vectors that concern
// what Kayako reads through a real in-process Caddy with the static fixture,
// with the PHP client in Kayako's place.
func TestKayakoPHPClientAcceptsOurAnswers(t *testing.T) {
	php := phpBinary(t)
	s := fixtureSite(t, "")
	userURL, staffURL := s.base+"/loginshare/user", s.base+"/loginshare/staff"
	login := func(t *testing.T, url, kind, username, password, iface string) kayakoVerdict {
		t.Helper()
		f := map[string]string{"username": username, "password": password, "ipaddress": "203.0.113.7"}
		if kind == "staff" {
			f["interface"] = iface
		}
		v := kayakoLogin(t, php, url, kind, f)
		if v.CurlError != nil {
			t.Fatalf("cURL: %s", *v.CurlError)
		}
		if v.HTTPStatus != http.StatusOK {
			t.Errorf("%s %s: HTTP %d", kind, username, v.HTTPStatus)
		}
		return v
	}
	type fields map[string]string
	for _, tc := range []struct {
		name, kind, username, password, iface string
		verdict                               string
		want                                  fields
		emails                                []string
	}{
		{name: "T1 user", kind: "user", username: "jdoe", password: "s3cret", verdict: "success",
			want: fields{"usergroup": "Registered", "fullname": "Jane Doe", "designation": "Engineer", "phone": "+1 555 0100"},
			// Kayako keeps the address lower-cased.
			emails: []string{"jane.doe@example.com"}},
		{name: "T2 staff", kind: "staff", username: "jdoe", password: "s3cret", iface: "staff", verdict: "success",
			want: fields{"team": "Support", "firstname": "Jane", "lastname": "Doe", "designation": "Engineer",
				"email": "jane.doe@example.com", "mobilenumber": "", "signature": ""}},
		{name: "T3 wrong password", kind: "user", username: "jdoe", password: "wrong", verdict: "failure",
			want: fields{"message": DefaultMessageInvalid}},
		{name: "T3 wrong staff password", kind: "staff", username: "jdoe", password: "wrong", iface: "staff", verdict: "failure",
			want: fields{"message": DefaultMessageInvalid}},
		{name: "T4 unknown user", kind: "user", username: "nobody", password: "s3cret", verdict: "failure",
			want: fields{"message": DefaultMessageInvalid}},
		{name: "T11 admin interface", kind: "staff", username: "admin1", password: "s3cret", iface: "admin", verdict: "failure",
			want: fields{"message": DefaultMessageDenied}},
		{name: "T19 PHP-urlencoded password", kind: "user", username: "symbols", password: "p@ss+w%rd&x=y", verdict: "success",
			want: fields{"fullname": "Sym Bols", "usergroup": "Registered"}, emails: []string{"symbols@example.com"}},
		{name: "T19 decoded twice would match", kind: "user", username: "symbols", password: "p%40ss%2Bw%25rd%26x%3Dy", verdict: "failure",
			want: fields{"message": DefaultMessageInvalid}},
		{name: "T21 markup characters", kind: "user", username: "amp", password: "s3cret", verdict: "success",
			want: fields{"fullname": `Tom & Jerry <Ltd> "Q" 'A'`}, emails: []string{"amp@example.com"}},
		{name: "T22 unicode", kind: "user", username: "unicode", password: "s3cret", verdict: "success",
			want: fields{"fullname": "Zoë Ångström 山田太郎 🎉"}, emails: []string{"unicode@example.com"}},
		{name: "T24 CDATA terminator", kind: "user", username: "cdata", password: "s3cret", verdict: "success",
			want: fields{"fullname": "a]]>b"}, emails: []string{"cdata@example.com"}},
		{name: "T41 staff without given name", kind: "staff", username: "nogiven", password: "s3cret", iface: "staff", verdict: "success",
			want: fields{"firstname": "Nog", "team": "Support", "email": "nogiven@example.com"}},
		{name: "T42 over-long staff values", kind: "staff", username: "long", password: "s3cret", iface: "staff", verdict: "success",
			want: fields{"firstname": strings.Repeat("é", 100), "mobilenumber": strings.Repeat("9", 20)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := userURL
			if tc.kind == "staff" {
				url = staffURL
			}
			v := login(t, url, tc.kind, tc.username, tc.password, tc.iface)
			if v.Verdict != tc.verdict {
				t.Fatalf("Kayako would conclude %q, want %q\nanswer: %s", v.Verdict, tc.verdict, v.Body)
			}
			got := map[string]*string{
				"message": v.Message, "usergroup": v.UserGroup, "fullname": v.FullName, "designation": v.Designation,
				"phone": v.Phone, "team": v.Team, "firstname": v.FirstName, "lastname": v.LastName,
				"email": v.Email, "mobilenumber": v.MobileNumber, "signature": v.Signature,
			}
			for name, w := range tc.want {
				if g := got[name]; g == nil || *g != w {
					t.Errorf("SimpleXML reads %s = %q, want %q\nanswer: %s", name, deref(g), w, v.Body)
				}
			}
			if tc.verdict == "failure" {
				for name, p := range got {
					if name != "message" && p != nil {
						t.Errorf("failure carries <%s>: %s", name, v.Body)
					}
				}
			}
			if tc.emails != nil && strings.Join(v.Emails, "\n") != strings.Join(tc.emails, "\n") {
				t.Errorf("Kayako keeps e-mails %q, want %q\nanswer: %s", v.Emails, tc.emails, v.Body)
			}
		})
	}

	// T42 counted as PHP counts: mb_strlen, in characters.
	v := login(t, staffURL, "staff", "long", "s3cret", "staff")
	if v.MbStrlen["firstname"] != 100 || v.MbStrlen["mobilenumber"] != 20 {
		t.Errorf("mb_strlen firstname %d, mobilenumber %d; want 100, 20", v.MbStrlen["firstname"], v.MbStrlen["mobilenumber"])
	}
	v = login(t, userURL, "user", "unicode", "s3cret", "")
	if v.MbStrlen["fullname"] != len([]rune("Zoë Ångström 山田太郎 🎉")) {
		t.Errorf("mb_strlen fullname %d", v.MbStrlen["fullname"])
	}
}
