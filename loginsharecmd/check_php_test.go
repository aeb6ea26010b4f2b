package loginsharecmd

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// These tests point `caddy loginshare check` at PHP's built-in web server
// playing LoginShare scripts (testdata/broken_endpoints.php), as the legacy
// scripts this plugin replaces answer.

// TestCheckSendsWhatKayakoSends checks the bytes on the wire: method, URL,
// headers, field order and PHP urlencode() encoding, for a user and a staff
// login.
func TestCheckSendsWhatKayakoSends(t *testing.T) {
	s := startPHPServer(t)
	const password = "p@ss+w%rd&x=y ~é"
	for _, tc := range []struct {
		name string
		args []string
		uri  string
		body string
	}{
		{"user", []string{"--username", "Jane Doe", "--ipaddress", "2001:db8::1", s.base + "/staff-ok?key=s3cr%2Ft&type=user"},
			"/staff-ok?key=s3cr%2Ft&type=user",
			"username=Jane+Doe&password=p%40ss%2Bw%25rd%26x%3Dy+%7E%C3%A9&ipaddress=2001%3Adb8%3A%3A1"},
		{"staff", []string{"--staff", "-u", "jdoe", "--interface", "winapp", s.base + "/staff-ok"},
			"/staff-ok",
			"username=jdoe&password=p%40ss%2Bw%25rd%26x%3Dy+%7E%C3%A9&ipaddress=127.0.0.1&interface=winapp"},
		{"staff default interface", []string{"--staff", "-u", "jdoe", s.base + "/staff-ok"},
			"/staff-ok",
			"username=jdoe&password=p%40ss%2Bw%25rd%26x%3Dy+%7E%C3%A9&ipaddress=127.0.0.1&interface=staff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runCheck(t, password+"\n", tc.args...)
			reqs := s.requests(t)
			if len(reqs) != 1 {
				t.Fatalf("the endpoint saw %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != "POST" || r.URI != tc.uri {
				t.Errorf("request line %s %s, want POST %s", r.Method, r.URI, tc.uri)
			}
			if r.Body != tc.body {
				t.Errorf("body\n%q, want\n%q", r.Body, tc.body)
			}
			// PHP reads the fields back and urlencode()s them to the same bytes.
			if r.Rebuilt != r.Body {
				t.Errorf("PHP's urlencode() of the fields gives\n%q, the command sent\n%q", r.Rebuilt, r.Body)
			}
			want := map[string]string{
				"Content-Type":   "application/x-www-form-urlencoded",
				"User-Agent":     "SWIFT_LoginShare",
				"Accept":         "*/*",
				"Content-Length": fmt.Sprint(len(tc.body)),
			}
			for name, value := range want {
				if got, ok := r.header(name); !ok || got != value {
					t.Errorf("header %s: %q, want %q", name, got, value)
				}
			}
			// Kayako's cURL sends nothing else (the Host header aside).
			for name := range r.Headers {
				if _, ok := want[name]; !ok && !strings.EqualFold(name, "Host") {
					t.Errorf("unexpected header %s: %s", name, r.Headers[name])
				}
			}
		})
	}
}

// TestCheckJudgesBrokenRepliesAsKayako runs the check against each kind of
// broken reply and asserts the exit status and the words Kayako would show.
func TestCheckJudgesBrokenRepliesAsKayako(t *testing.T) {
	s := startPHPServer(t)
	nothing := fmt.Sprintf("http://127.0.0.1:%d/loginshare/user", freePort(t))
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		words []string // each must appear in the output
		stdin string   // default: the right password
	}{
		{name: "working user endpoint", args: []string{s.base + "/user-ok"}, code: exitLogin, words: []string{
			textLine("verdict", `login: Kayako would log "jdoe" in to the support centre`),
			textLine("user group", "Registered"), textLine("full name", "Jane Doe"), textLine("e-mails", "jane.doe@example.com"),
			textLine("dropped", `"not an email" (Kayako's e-mail validator rejects them)`), textLine("designation", "Engineer"),
			textLine("phone", "+1 555 0100"), textLine("organisation", "(none)"), "http          200 OK in "}},
		{name: "working staff endpoint", args: []string{"--staff", s.base + "/staff-ok"}, code: exitLogin, words: []string{
			textLine("verdict", `login: Kayako would log "jdoe" in as staff (interface staff)`),
			textLine("team", "Support"), textLine("first name", "Jane"), textLine("last name", "Doe"),
			textLine("e-mail", "jane.doe@example.com"), textLine("mobile", "(empty)"), `links staff by the typed username "jdoe"`}},
		{name: "wrong password", args: []string{s.base + "/user-ok", "--ipaddress", "203.0.113.7"}, code: exitRefused, stdin: "wrong\n", words: []string{
			textLine("verdict", `refused: Kayako would refuse the login and show "Invalid Username or Password"`),
			textLine("why", "the endpoint refused the login (result 0)")}},
		{name: "empty body", args: []string{s.base + "/empty"}, code: exitBroken, words: []string{
			textLine("verdict", `broken: Kayako would show "Invalid data provided: 1"`), textLine("why", "the reply body is empty")}},
		{name: "not XML", args: []string{s.base + "/not-xml"}, code: exitBroken, words: []string{
			`Kayako would show "Invalid data provided: 2"`, "HTML page", `reply         "<!DOCTYPE html>`}},
		{name: "a result other than 0 or 1", args: []string{s.base + "/result-2"}, code: exitBroken, words: []string{
			`Kayako would show "Invalid data provided: 5"`, `<result> is "2"`}},
		{name: "a missing staff child", args: []string{"--staff", s.base + "/staff-no-signature"}, code: exitBroken, words: []string{
			`Kayako would show "Invalid data provided: 5"`, "<staff> has no <signature>"}},
		{name: "no valid e-mail", args: []string{s.base + "/no-valid-email"}, code: exitBroken, words: []string{
			`Kayako would show "Invalid data provided: No Emails"`, `"jane doe@example.com"`, `" jane@example.com"`}},
		{name: "an empty title", args: []string{s.base + "/empty-title"}, code: exitBroken, words: []string{
			`Kayako would show "Invalid data provided: Invalid Group"`, "<usergroup> is empty"}},
		{name: "an empty full name", args: []string{s.base + "/empty-fullname"}, code: exitBroken, words: []string{
			`Kayako would show an error page ("Invalid data provided": Kayako throws an exception it does not catch)`, "<fullname> is empty"}},
		{name: "a redirect", args: []string{s.base + "/redirect"}, code: exitBroken, words: []string{
			`Kayako would show "Invalid data provided: 1"`, "302 Found in ", "(not followed)",
			"paste the https:// URL into Kayako's LoginShare setting: https://127.0.0.1:"}},
		{name: "a 500 with a valid document", args: []string{s.base + "/error-500"}, code: exitLogin, words: []string{
			"login: Kayako would log", "HTTP 500: Kayako ignores the status and reads the body anyway"}},
		{name: "nothing listening", args: []string{nothing}, code: exitBroken, words: []string{
			`Kayako would show "Invalid data provided: 1"`, "connection refused"}},
		{name: "no complete answer in time", args: []string{"--timeout", "500ms", s.base + "/slow"}, code: exitBroken, words: []string{
			`Kayako would show "Invalid data provided: 1"`, "no complete answer within 500ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--username", "jdoe"}, tc.args...)
			stdin := tc.stdin
			if stdin == "" {
				stdin = "s3cret\n"
			}
			r := runCheck(t, stdin, args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d", r.code, tc.code)
			}
			for _, w := range tc.words {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if strings.Contains(r.stdout+r.stderr, "s3cret") {
				t.Error("the password appears in the output")
			}
			if r.stderr != "" {
				t.Errorf("stderr: %s", r.stderr)
			}
			// And what went over the wire, each time.
			reqs := s.requests(t)
			if tc.args[len(tc.args)-1] == nothing {
				return
			}
			body := "username=jdoe&password=" + phpURLEncode(strings.TrimSuffix(stdin, "\n")) + "&ipaddress=127.0.0.1"
			if slices.Contains(tc.args, "--ipaddress") {
				body = strings.Replace(body, "127.0.0.1", "203.0.113.7", 1)
			}
			if slices.Contains(tc.args, "--staff") {
				body += "&interface=staff"
			}
			if len(reqs) != 1 {
				t.Fatalf("the endpoint saw %d requests, want 1", len(reqs))
			}
			q := reqs[0]
			ct, _ := q.header("Content-Type")
			ua, _ := q.header("User-Agent")
			if q.Method != "POST" || ct != "application/x-www-form-urlencoded" || ua != "SWIFT_LoginShare" || q.Body != body || q.Rebuilt != body {
				t.Errorf("sent %s, %q, %q, %q (PHP re-encodes it as %q); want POST, form, SWIFT_LoginShare, %q", q.Method, ct, ua, q.Body, q.Rebuilt, body)
			}
		})
	}
}

// TestCheckJSON checks --json's object for a success and a broken reply.
func TestCheckJSON(t *testing.T) {
	s := startPHPServer(t)
	r := runCheck(t, "s3cret\n", "--json", "-u", "jdoe", s.base+"/user-ok?key=abc")
	if r.code != exitLogin {
		t.Fatalf("exit %d", r.code)
	}
	var j map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, r.stdout)
	}
	if j["verdict"] != "login" || j["kayako_shows"] != nil || j["http_status"] != float64(200) || j["url"] != s.base+"/user-ok?key=REDACTED" {
		t.Errorf("object %v", j)
	}
	if _, ok := j["elapsed_ms"].(float64); !ok {
		t.Errorf("elapsed_ms %v", j["elapsed_ms"])
	}
	f, _ := j["fields"].(map[string]any)
	if f["usergroup"] != "Registered" || f["fullname"] != "Jane Doe" || fmt.Sprint(f["emails"]) != "[jane.doe@example.com]" ||
		fmt.Sprint(f["emails_dropped"]) != "[not an email]" || f["designation"] != "Engineer" || f["phone"] != "+1 555 0100" {
		t.Errorf("fields %v", f)
	}

	r = runCheck(t, "s3cret\n", "--json", "--staff", "-u", "jdoe", s.base+"/staff-no-signature")
	j = nil
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || r.code != exitBroken {
		t.Fatalf("exit %d, %v\n%s", r.code, err, r.stdout)
	}
	if j["verdict"] != "broken" || j["kayako_shows"] != "Invalid data provided: 5" || j["kayako_code"] != "invalid_data_5" || j["fields"] != nil {
		t.Errorf("object %v", j)
	}
	req, _ := j["request"].(map[string]any)
	if fmt.Sprint(req["fields"]) != "[username password ipaddress interface]" || req["user_agent"] != "SWIFT_LoginShare" {
		t.Errorf("request %v", req)
	}
}

// TestCheckNeverPrintsThePassword points the check at a debugging script
// that echoes the POST back: the password must be masked everywhere.
func TestCheckNeverPrintsThePassword(t *testing.T) {
	s := startPHPServer(t)
	for _, pw := range []string{"s3cret", "p@ss+w%rd&x=y ~é", `<"'&>`} {
		for _, format := range []string{"--json=false", "--json"} {
			r := runCheck(t, pw+"\n", format, "-u", "jdoe", s.base+"/echo")
			if r.code != exitBroken {
				t.Errorf("exit %d", r.code)
			}
			out := r.stdout + r.stderr
			for _, form := range passwordForms(pw) {
				if strings.Contains(out, form) {
					t.Errorf("%s: the password appears as %q:\n%s", format, form, out)
				}
			}
			if !strings.Contains(out, "DEBUG: received") || !strings.Contains(out, mask) {
				t.Errorf("%s: the reply excerpt is missing or not masked:\n%s", format, out)
			}
		}
	}
}

// TestCheckUsageErrors: exit 3, nothing sent.
func TestCheckUsageErrors(t *testing.T) {
	s := startPHPServer(t)
	for _, tc := range []struct {
		name, stdin string
		args        []string
		words       string
	}{
		{"no URL", "pw\n", []string{"-u", "jdoe"}, "give exactly one URL"},
		{"two URLs", "pw\n", []string{"-u", "jdoe", s.base, s.base}, "give exactly one URL"},
		{"not http", "pw\n", []string{"-u", "jdoe", "ftp://example.com/x"}, "is not an http:// or https:// URL"},
		{"interface without staff", "pw\n", []string{"-u", "jdoe", "--interface", "admin", s.base + "/staff-ok"}, "add --staff"},
		{"no username without a terminal", "pw\n", []string{s.base + "/user-ok"}, "--username is required"},
		{"empty password", "\n", []string{"-u", "jdoe", s.base + "/user-ok"}, "the password is empty"},
		{"no standard input", "", []string{"-u", "jdoe", s.base + "/user-ok"}, "standard input is empty"},
		{"a password flag does not exist", "pw\n", []string{"-u", "jdoe", "--password", "x", s.base + "/user-ok"}, "unknown flag: --password"},
		{"bad timeout", "pw\n", []string{"-u", "jdoe", "--timeout", "0s", s.base + "/user-ok"}, "--timeout must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCheck(t, tc.stdin, tc.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d", r.code, exitUsage)
			}
			if !strings.Contains(r.stderr, tc.words) {
				t.Errorf("stderr lacks %q:\n%s", tc.words, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
		})
	}
	if reqs := s.requests(t); len(reqs) != 0 {
		t.Errorf("usage errors sent %d requests", len(reqs))
	}
	var out, errOut strings.Builder
	if code := run(nil, strings.NewReader(""), &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "check") {
		t.Errorf("bare `loginshare`: exit %d, stderr %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"bogus"}, strings.NewReader(""), &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), `unknown command "bogus"`) {
		t.Errorf("`loginshare bogus`: exit %d, stderr %s", code, errOut.String())
	}
}
