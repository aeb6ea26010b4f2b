package caddymodule

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// These tests were written against mutations that every other test let
// through: each asserts what the person, the audit log, the backend or the
// operator's log can observe, so they survive refactoring of the handler.

// logLines reads every JSON log line of the given files.
func logLines(t *testing.T, files ...string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("%s: a log line is not JSON: %q", name, sc.Text())
				continue
			}
			out = append(out, m)
		}
		f.Close()
	}
	return out
}

func msgOf(l map[string]any) string { s, _ := l["msg"].(string); return s }

// A banned address is refused before any backend work: a ban that is only
// looked at after the backend answered still says "no", but lets every
// banned guess reach the directory (and AD's lockout counter).
func TestPerIPBanRefusesWithoutCallingTheBackend(t *testing.T) {
	withClock(t)
	name := uniqueName("mut-ipban")
	s := throttleSite(t, name, `throttle {
		per_user 0
		per_ip 3 10m
		max_keys 2101
	}`)
	const ip = "198.51.100.23"
	for _, u := range []string{"guess1", "guess2", "guess3"} {
		mustFail(t, s.post("/loginshare/user", form("username", u, "password", "wrong", "ipaddress", ip)), 200, DefaultMessageInvalid)
	}
	before := fakeCount(name)
	if before != 3 {
		t.Fatalf("the guesses reached the backend %d times, want 3", before)
	}
	// Banned now: a known user with the right password, and another unknown
	// name, from that address.
	mustFail(t, s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret", "ipaddress", ip)), 200, DefaultMessageInvalid)
	mustFail(t, s.post("/loginshare/user", form("username", "guess4", "password", "wrong", "ipaddress", ip)), 200, DefaultMessageInvalid)
	if got := fakeCount(name) - before; got != 0 {
		t.Errorf("the backend was called %d times for a banned address", got)
	}
	// The control: another address still reaches the backend.
	if r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret", "ipaddress", "198.51.100.24")); r.Doc.Result != "1" {
		t.Errorf("another address refused: %s", r.Body)
	}
	if err := stopCaddy(); err != nil {
		t.Fatal(err)
	}
	lines := auditLines(t, s.logFile)
	if len(lines) != 6 {
		t.Fatalf("%d audit lines, want 6: %v", len(lines), lines)
	}
	for i, want := range []string{"unknown_user", "unknown_user", "unknown_user", "throttled", "throttled", "ok"} {
		if lines[i]["outcome"] != want {
			t.Errorf("audit line %d: outcome %v, want %s", i, lines[i]["outcome"], want)
		}
	}
}

// With DEBUG logging and an access log, reaching a user ban and an address
// ban writes the "throttled" WARN, and no line anywhere carries a password
// or the secret.
func TestThrottleBansLogNoPasswordOrSecret(t *testing.T) {
	withClock(t)
	const secret = "Mut-secret-never-in-a-log-9313"
	const right = "Right-pw-never-in-a-log-5108"
	t.Setenv("LOGINSHARE_MUT_KEY", secret)
	access := filepath.Join(t.TempDir(), "access.log")
	s := startCaddy(t, "", fmt.Sprintf(`log {
		output file %s
		format filter {
			request>uri query {
				delete key
			}
		}
	}
	loginshare {
		failure_delay 1ms
		failure_jitter 1ms
		secret {env.LOGINSHARE_MUT_KEY}
		throttle {
			per_user 2 10m
			per_ip 3 10m
			max_keys 2102
		}
		backend testfake {
			name %s
			user jdoe %s
		}
	}`, access, uniqueName("mut-logs"), right))
	path := "/loginshare/user?key=" + url.QueryEscape(secret)
	const ipA, ipB = "198.51.100.44", "198.51.100.45"
	passwords := []string{right}
	guess := func() string {
		pw := fmt.Sprintf("Guess-%d-never-in-a-log-7741", len(passwords))
		passwords = append(passwords, pw)
		return pw
	}
	for _, step := range []struct {
		user, ip, password string
		ok                 bool
	}{
		{"victim", ipA, guess(), false}, // victim 1, ipA 1
		{"victim", ipA, guess(), false}, // victim banned, ipA 2
		{"other", ipA, guess(), false},  // ipA banned
		{"jdoe", ipA, right, false},     // refused: ipA is banned
		{"victim", ipB, guess(), false}, // refused: victim is banned
		{"jdoe", ipB, right, true},
	} {
		r := s.post(path, form("username", step.user, "password", step.password, "ipaddress", step.ip))
		if (r.Doc.Result == "1") != step.ok {
			t.Errorf("%s from %s: %s", step.user, step.ip, r.Body)
		}
	}
	if err := stopCaddy(); err != nil {
		t.Fatal(err)
	}

	lines := logLines(t, s.logFile, access)
	warns, throttled, ok, debug, accessLines := 0, 0, 0, 0, 0
	for _, l := range lines {
		if l["level"] == "warn" && strings.Contains(strings.ToLower(msgOf(l)), "throttled") {
			warns++
		}
		if l["level"] == "debug" {
			debug++
		}
		if l["logger"] == "http.handlers.loginshare.audit" {
			switch l["outcome"] {
			case "throttled":
				throttled++
			case "ok":
				ok++
			}
		}
		if req, _ := l["request"].(map[string]any); req != nil && strings.HasPrefix(fmt.Sprint(req["uri"]), "/loginshare/user") {
			accessLines++
		}
	}
	// Without these the search below would prove nothing.
	if warns < 2 {
		t.Errorf("%d throttled WARN lines, want one per ban (2)", warns)
	}
	if throttled != 2 || ok != 1 {
		t.Errorf("audit: %d throttled, %d ok; want 2 and 1", throttled, ok)
	}
	if debug == 0 || accessLines != 6 {
		t.Errorf("%d DEBUG lines, %d access lines: logging is not what this test needs", debug, accessLines)
	}

	raw := ""
	for _, f := range []string{s.logFile, access} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raw += string(b)
	}
	never := append([]string{secret, url.QueryEscape(secret)}, passwords...)
	for _, line := range strings.Split(raw, "\n") {
		for _, n := range never {
			if strings.Contains(line, n) {
				t.Errorf("a log line contains %q: %s", n, line)
			}
		}
	}
}

// NUL and invalid UTF-8 in any field are refused before any backend is
// asked, even by a backend that would accept them: the failure document,
// outcome bad_request, and no call.
func TestNULAndInvalidUTF8InAnyFieldNeverReachTheBackend(t *testing.T) {
	name := uniqueName("mut-bytes")
	s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	%s
	staff_teams {
		default Support
	}
	backend testmut {
		name %s
		mode accept
	}
}`, fastFail, name))
	good := map[string]string{"username": "jdoe", "password": "Acc3pt-me", "ipaddress": "203.0.113.5", "interface": "staff"}
	post := func(endpoint string, f map[string]string) reply {
		v := url.Values{}
		for k, val := range f {
			v.Set(k, val)
		}
		return s.post("/loginshare/"+endpoint, v)
	}
	// The control: the accepting backend really accepts, on both endpoints.
	for _, ep := range []string{"user", "staff"} {
		if r := post(ep, good); r.Doc.Result != "1" {
			t.Fatalf("control login on %s failed: %s", ep, r.Body)
		}
	}
	if n := mutCount(name); n != 2 {
		t.Fatalf("control logins made %d backend calls, want 2", n)
	}
	bad := map[string]func(string) string{
		"NUL":               func(s string) string { return s[:2] + "\x00" + s[2:] },
		"trailing NUL":      func(s string) string { return s + "\x00" },
		"0xFF byte":         func(s string) string { return s[:2] + "\xff" + s[2:] },
		"truncated UTF-8":   func(s string) string { return s + "\xc3" },
		"overlong encoding": func(s string) string { return s + "\xc0\xaf" },
		"UTF-16 surrogate":  func(s string) string { return s + "\xed\xa0\x80" },
	}
	var sent []string
	for _, ep := range []string{"user", "staff"} {
		for _, field := range []string{"username", "password", "ipaddress", "interface"} {
			for kind, spoil := range bad {
				f := map[string]string{}
				for k, v := range good {
					f[k] = v
				}
				f[field] = spoil(f[field])
				label := ep + "/" + field + "/" + kind
				t.Run(label, func(t *testing.T) {
					mustFail(t, post(ep, f), 200, DefaultMessageInvalid)
				})
				sent = append(sent, label)
			}
		}
	}
	if n := mutCount(name) - 2; n != 0 {
		t.Errorf("%d of %d requests with a bad byte reached the backend", n, len(sent))
	}
	if err := stopCaddy(); err != nil {
		t.Fatal(err)
	}
	lines := auditLines(t, s.logFile)
	if len(lines) != len(sent)+2 {
		t.Fatalf("%d audit lines for %d requests", len(lines), len(sent)+2)
	}
	for i, l := range lines[2:] {
		if l["outcome"] != "bad_request" {
			t.Errorf("%s: audit outcome %v, want bad_request", sent[i], l["outcome"])
		}
	}
}

// deadlinePanics is a request context whose Deadline panics: the handler
// derives its timeout from the request's context in its own goroutine, so
// this panics there, outside any backend call.
type deadlinePanics struct{ context.Context }

func (deadlinePanics) Deadline() (time.Time, bool) {
	panic("internal detail: the request context exploded")
}

// A panic in the handler's own goroutine (not in a backend) still answers one
// well-formed failure document with no internal text and writes one audit
// line. The handler is loaded by Caddy's own module loader into the running
// config's context (so it logs where that config logs) and called directly.
func TestPanicInTheHandlerItselfAnswersAFailureDocument(t *testing.T) {
	name := uniqueName("mut-handler-panic")
	s := startCaddy(t, "", "")
	ctx, cancel := caddy.NewContext(caddy.ActiveContext())
	defer cancel()
	mod, err := ctx.LoadModuleByID("http.handlers.loginshare", json.RawMessage(fmt.Sprintf(
		`{"failure_delay":"1ms","failure_jitter":"1ms","throttle":{"off":true},"backends":[{"backend":"testmut","name":%q,"mode":"accept"}]}`, name)))
	if err != nil {
		t.Fatal(err)
	}
	h := mod.(caddyhttp.MiddlewareHandler)

	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		t.Error("a LoginShare path reached the next handler")
		return nil
	})
	req := httptest.NewRequestWithContext(deadlinePanics{context.Background()}, http.MethodPost, "/loginshare/user",
		strings.NewReader("username=jdoe&password=s3cret"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	var escaped any
	func() {
		defer func() { escaped = recover() }()
		err = h.ServeHTTP(rec, req, next)
	}()
	if escaped != nil {
		t.Fatalf("the panic escaped ServeHTTP: %v", escaped)
	}
	if err != nil {
		t.Errorf("ServeHTTP returned %v; the failure document is the whole answer", err)
	}
	body := rec.Body.String()
	var doc kayakoDoc
	if err := xml.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("answer is not well-formed XML: %v\n%s", err, body)
	}
	mustFail(t, reply{Status: rec.Code, Header: rec.Header(), Body: body, Doc: doc}, 200, DefaultMessageUnavail)
	for _, leak := range []string{"internal detail", "exploded", "goroutine", "panic"} {
		if strings.Contains(body, leak) {
			t.Errorf("the answer shows %q: %s", leak, body)
		}
	}
	if n := mutCount(name); n != 0 {
		t.Errorf("backend called %d times although the handler panicked first", n)
	}

	cancel()
	if err := stopCaddy(); err != nil {
		t.Fatal(err)
	}
	lines := auditLines(t, s.logFile)
	if len(lines) != 1 || lines[0]["outcome"] != "unavailable" || lines[0]["endpoint"] != "user" {
		t.Errorf("audit lines %v, want one unavailable line", lines)
	}
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "exploded") {
		t.Error("the panic's value reached the log")
	}
}

// The same through a real Caddy: a backend whose error cannot be turned into
// text panics where the handler reads that text, after the backend call.
func TestPanicReadingABackendErrorAnswersAFailureDocument(t *testing.T) {
	name := uniqueName("mut-error-text")
	s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	%s
	backend testmut {
		name %s
		mode panic_text
	}
}`, fastFail, name))
	for i := 0; i < 2; i++ { // the server keeps answering
		r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret"))
		mustFail(t, r, 200, DefaultMessageUnavail)
		if strings.Contains(r.Body, "internal detail") || strings.Contains(r.Body, "goroutine") {
			t.Errorf("internal text leaked: %s", r.Body)
		}
	}
	if n := mutCount(name); n != 2 {
		t.Errorf("backend calls %d, want 2", n)
	}
	if err := stopCaddy(); err != nil {
		t.Fatal(err)
	}
	lines := auditLines(t, s.logFile)
	if len(lines) != 2 {
		t.Fatalf("%d audit lines, want 2: %v", len(lines), lines)
	}
	for _, l := range lines {
		if l["outcome"] != "unavailable" {
			t.Errorf("audit line %v, want outcome unavailable", l)
		}
	}
}

// The open-endpoint warning is a WARN (risky configuration), from the
// handler's logger, and only when neither allow_from nor secret is set.
func TestOpenEndpointWarningIsLoggedAtWarnOnlyWhenOpen(t *testing.T) {
	const snippet = "LoginShare endpoint is open to anyone"
	for _, tc := range []struct {
		extra string
		open  bool
	}{
		{"", true},
		{"allow_from 127.0.0.1", false},
		{"secret some-long-shared-secret", false},
		{"allow_from 127.0.0.1\n\tsecret some-long-shared-secret", false},
	} {
		s := fixtureSite(t, tc.extra)
		if err := stopCaddy(); err != nil {
			t.Fatal(err)
		}
		var found []map[string]any
		for _, l := range logLines(t, s.logFile) {
			if strings.Contains(msgOf(l), snippet) {
				found = append(found, l)
			}
		}
		switch {
		case !tc.open && len(found) != 0:
			t.Errorf("%q: open-endpoint warning logged: %v", tc.extra, found)
		case tc.open && len(found) == 0:
			t.Errorf("%q: no open-endpoint warning", tc.extra)
		}
		for _, l := range found {
			if l["level"] != "warn" || l["logger"] != "http.handlers.loginshare" {
				t.Errorf("%q: open-endpoint warning at level %v from logger %v, want warn from http.handlers.loginshare", tc.extra, l["level"], l["logger"])
			}
		}
	}
}
