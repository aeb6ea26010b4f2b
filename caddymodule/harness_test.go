package caddymodule

import (
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/kayako-loginshare/caddy-loginshare/backends/ldap"
	_ "github.com/kayako-loginshare/caddy-loginshare/backends/sql"
	_ "github.com/kayako-loginshare/caddy-loginshare/backends/static"
	"github.com/kayako-loginshare/caddy-loginshare/internal/dbtest"
	"github.com/kayako-loginshare/caddy-loginshare/kayako"
)

// The tests in this package drive one real, in-process Caddy (Caddy is a
// process-wide singleton): each test loads its own config on its own port.
// Never t.Parallel() tests that call startCaddy.

var testDir string

func TestMain(m *testing.M) {
	var err error
	testDir, err = os.MkdirTemp("", "loginshare-caddymodule-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_DATA_HOME", filepath.Join(testDir, "data"))
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(testDir, "config"))
	code := m.Run()
	_ = caddy.Stop()
	dbtest.StopAll()
	// Every config, pool, probe, fake directory and in-flight request the
	// tests started must be gone by now. Only checked when the tests passed:
	// a failed test may leave its goroutines behind, and says so already.
	if code == 0 {
		client.CloseIdleConnections() // its keep-alive loops are ours, not a leak
		if err := findLeaks(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left running after the tests:\n%v\n", err)
			code = 1
		}
	}
	os.RemoveAll(testDir)
	os.Exit(code)
}

// leakIgnores are the goroutines Caddy itself leaves behind and the tests
// cannot stop.
var leakIgnores = []goleak.Option{
	// One per log file a config opened: Caddy v2.11.9 never closes its
	// file log writers when a config stops (Logging.openLogs registers the
	// closing with OnCancel on a copy of the config's context, so it never
	// runs), and the rolling writer's mill goroutine ends only on Close.
	goleak.IgnoreTopFunction("github.com/DeRuina/timberjack.(*Logger).millRun"),
}

// findLeaks is goleak.Find with time for goroutines that end on their own:
// certmagic keeps a storage lock (taken when the first config's TLS app cleans
// the storage) fresh from a goroutine that notices the release only at its next
// 5 s poll. Retrying for up to 8 s covers that without ignoring it.
func findLeaks() error {
	deadline := time.Now().Add(8 * time.Second)
	for {
		err := goleak.Find(leakIgnores...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// site is one loaded Caddy config serving http://127.0.0.1:port.
type site struct {
	t       *testing.T
	base    string
	port    int
	logFile string // every log line of this config, DEBUG included
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// adapt turns a Caddyfile into JSON, failing the test on any error.
func adapt(t testing.TB, caddyfile string) []byte {
	t.Helper()
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapt: %v\n%s", err, caddyfile)
	}
	for _, w := range warnings {
		if !strings.Contains(w.Message, "formatted") {
			t.Logf("adapt warning: %s", w.String())
		}
	}
	return out
}

// testGlobals is the global options block of every test config: no admin
// endpoint, nothing persisted, every log line (DEBUG) into logFile.
func testGlobals(logFile, extra string) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	skip_install_trust
	log {
		output file %s
		level DEBUG
	}
	%s
}
`, logFile, extra)
}

// startCaddy loads a config whose site block serves `body` on a fresh port,
// then "next handler" for anything body passes on. global is inserted into
// the global options block. The config is stopped when the test ends.
func startCaddy(t *testing.T, global, body string) *site {
	t.Helper()
	port := freePort(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	cfg := testGlobals(logFile, global) + fmt.Sprintf(`http://127.0.0.1:%d {
	%s
	respond "next handler" 200
}
`, port, body)
	return loadConfig(t, cfg, port, logFile)
}

// loadConfig adapts and loads a complete Caddyfile that listens on port.
func loadConfig(t *testing.T, cfg string, port int, logFile string) *site {
	t.Helper()
	s := &site{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), port: port, logFile: logFile}
	if err := caddy.Load(adapt(t, cfg), true); err != nil {
		t.Fatalf("load: %v\n%s", err, cfg)
	}
	t.Cleanup(func() {
		_ = caddy.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("Caddy's log:\n%s", b)
		}
	})
	waitListening(t, port)
	return s
}

// loadAgain loads a new config over the running one (a reload).
func loadAgain(caddyfile string) error {
	cfg := []byte(caddyfile)
	if !strings.HasPrefix(strings.TrimSpace(caddyfile), "{\"") {
		out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(cfg, map[string]any{"filename": "Caddyfile"})
		if err != nil {
			return err
		}
		cfg = out
	}
	return caddy.Load(cfg, true)
}

// stopCaddy stops the running config, which also flushes its log files.
func stopCaddy() error { return caddy.Stop() }

func waitListening(t testing.TB, port int) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d", port)
}

var client = &http.Client{Timeout: 30 * time.Second}

// reply is an answer as Kayako would see it.
type reply struct {
	Status int
	Header http.Header
	Body   string
	Doc    kayakoDoc
}

// kayakoDoc decodes every element Kayako reads from either document.
type kayakoDoc struct {
	XMLName xml.Name `xml:"loginshare"`
	Result  string   `xml:"result"`
	Message *string  `xml:"message"`
	User    *struct {
		UserGroup    string   `xml:"usergroup"`
		FullName     string   `xml:"fullname"`
		Designation  string   `xml:"designation"`
		Emails       []string `xml:"emails>email"`
		Phone        string   `xml:"phone"`
		Organization string   `xml:"organization"`
	} `xml:"user"`
	Staff *struct {
		Team         *string `xml:"team"`
		FirstName    *string `xml:"firstname"`
		LastName     *string `xml:"lastname"`
		Designation  *string `xml:"designation"`
		Email        *string `xml:"email"`
		MobileNumber *string `xml:"mobilenumber"`
		Signature    *string `xml:"signature"`
	} `xml:"staff"`
}

func (s *site) do(method, path, contentType string, body io.Reader) reply {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return s.doReq(req)
}

// doReq sends req as Kayako's client would and decodes the answer.
func (s *site) doReq(req *http.Request) reply {
	s.t.Helper()
	r, err := s.tryReq(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return r
}

// tryReq is doReq for callers that handle transport errors themselves (and
// for goroutines other than the test's, which must not call Fatal).
func (s *site) tryReq(req *http.Request) (reply, error) {
	req.Header.Set("User-Agent", "SWIFT_LoginShare")
	resp, err := client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	if strings.HasPrefix(r.Body, "<?xml") {
		if err := xml.Unmarshal(b, &r.Doc); err != nil {
			return r, fmt.Errorf("answer is not well-formed XML: %v\n%s", err, r.Body)
		}
	}
	return r, nil
}

// post sends a Kayako-shaped form POST. url.Values encodes like PHP urlencode
// but for "~" (PHP sends %7E); both decode alike. kayako_php_test.go sends
// with PHP itself.
func (s *site) post(path string, form url.Values) reply {
	s.t.Helper()
	return s.do(http.MethodPost, path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

// mustFail asserts a well-formed Kayako failure document with the given message.
func mustFail(t *testing.T, r reply, status int, message string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("status %d, want %d (body %s)", r.Status, status, r.Body)
	}
	if r.Doc.Result != "0" || r.Doc.Message == nil || *r.Doc.Message != message {
		t.Errorf("want failure %q, got %s", message, r.Body)
	}
	if r.Doc.User != nil || r.Doc.Staff != nil {
		t.Errorf("failure carries person data: %s", r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "text/xml; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	// What Kayako itself makes of the answer, on either endpoint: a refusal
	// that shows exactly this message.
	for _, e := range []kayako.Endpoint{kayako.User, kayako.Staff} {
		if v := kayako.Judge(e, r.Status, []byte(r.Body)); v.Outcome != kayako.Refused || v.Shows != message {
			t.Errorf("Kayako (%s login) would %s, showing %q (%s), not refuse with %q", e, v.Outcome, v.Shows, v.Reason, message)
		}
	}
}

// mustLogin asserts that Kayako would log the person in from this answer
// to an endpoint's request, and returns the record it would store.
func mustLogin(t *testing.T, e kayako.Endpoint, r reply) kayako.Verdict {
	t.Helper()
	v := kayako.Judge(e, r.Status, []byte(r.Body))
	if v.Outcome != kayako.Login {
		t.Errorf("Kayako (%s login) would not log in: %s, showing %q (%s)\n%s", e, v.Outcome, v.Shows, v.Reason, r.Body)
	}
	return v
}

// Fixture hashes are made once at the minimum bcrypt cost.
var (
	hashes = map[string]string{}
	hashMu sync.Mutex
)

func hashOf(t testing.TB, password string) string {
	t.Helper()
	hashMu.Lock()
	defer hashMu.Unlock()
	if h, ok := hashes[password]; ok {
		return h
	}
	b, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	hashes[password] = string(b)
	return string(b)
}

// fixtureStatic is the spec's fixture as static accounts.
func fixtureStatic(t testing.TB) string {
	return fmt.Sprintf(`backend static {
		user jdoe %s {
			full_name   "Jane Doe"
			first_name  Jane
			last_name   Doe
			email       Jane.Doe@Example.com
			designation Engineer
			phone       "+1 555 0100"
			groups      helpdesk-users helpdesk-staff
		}
		user admin1 %s {
			full_name "Ada Admin"
			email     admin1@example.com
			groups    helpdesk-admins
		}
		user nogiven %s {
			full_name "Nog Iven"
			email     nogiven@example.com
			groups    helpdesk-staff
		}
		user both %s {
			full_name "Bo Th"
			email     both@example.com
			groups    helpdesk-staff helpdesk-users
		}
		user nomail %s {
			full_name "No Mail"
			groups    helpdesk-users
		}
		user lonely %s {
			full_name "Lone Ly"
			email     lonely@example.com
		}
		user amp %s {
			full_name "Tom & Jerry <Ltd> \"Q\" 'A'"
			email     amp@example.com
			groups    helpdesk-users
		}
		user unicode %s {
			full_name "Zoë Ångström 山田太郎 🎉"
			email     unicode@example.com
			groups    helpdesk-users
		}
		user cdata %s {
			full_name "a]]>b"
			email     cdata@example.com
			groups    helpdesk-users
		}
		user symbols %s {
			full_name "Sym Bols"
			email     symbols@example.com
			groups    helpdesk-users
		}
		user long %s {
			full_name   "%s"
			phone       "%s"
			mobile      "%s"
			email       long@example.com
			groups      helpdesk-staff
		}
	}`,
		hashOf(t, "s3cret"), hashOf(t, "s3cret"), hashOf(t, "s3cret"), hashOf(t, "s3cret"),
		hashOf(t, "s3cret"), hashOf(t, "s3cret"), hashOf(t, "s3cret"), hashOf(t, "s3cret"),
		hashOf(t, "s3cret"), hashOf(t, "p@ss+w%rd&x=y"), hashOf(t, "s3cret"),
		strings.Repeat("é", 250), strings.Repeat("1", 40), strings.Repeat("9", 30))
}

// fixtureMapping maps the fixture's groups as the spec's vectors expect.
const fixtureMapping = `user_groups {
		helpdesk-users Registered
	}
	staff_teams {
		helpdesk-staff Support
		helpdesk-admins Administrator
	}`

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}
