package sql

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
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/kayako-loginshare/caddy-loginshare/caddymodule"
)

// The tests here run one real, in-process Caddy (a process-wide
// singleton): admin endpoint off, nothing persisted, its storage under this
// binary's scratch directory. Never t.Parallel() them.

func stopCaddyForGood() { _ = caddy.Stop() }

func caddyEnv() {
	os.Setenv("XDG_DATA_HOME", filepath.Join(scratch, "xdg-data"))
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(scratch, "xdg-config"))
}

// kayakoAnswer is what Kayako reads from a user LoginShare document.
type kayakoAnswer struct {
	XMLName xml.Name `xml:"loginshare"`
	Result  string   `xml:"result"`
	Message string   `xml:"message"`
	User    *struct {
		UserGroup    string   `xml:"usergroup"`
		FullName     string   `xml:"fullname"`
		Designation  string   `xml:"designation"`
		Emails       []string `xml:"emails>email"`
		Phone        string   `xml:"phone"`
		Organization string   `xml:"organization"`
	} `xml:"user"`
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func loadCaddyfile(t *testing.T, cfg string) {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapt: %v\n%s", err, cfg)
	}
	if strings.Contains(string(out), os.Getenv("LOGINSHARE_SQL_TEST_DSN")) {
		t.Fatal("the adapted JSON holds the resolved DSN")
	}
	if err := caddy.Load(out, true); err != nil {
		t.Fatalf("load: %v", err)
	}
}

// kayakoClient opens a connection per request, as Kayako's cURL does; a
// reload closes the old server's idle connections.
var kayakoClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func kayakoPost(t *testing.T, base, username, password string) kayakoAnswer {
	t.Helper()
	a, err := tryKayakoPost(base, username, password)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tryKayakoPost(base, username, password string) (kayakoAnswer, error) {
	return tryKayakoPostURL(base+"/loginshare/user", username, password)
}

// tryKayakoPostURL posts a user login to the LoginShare URL u.
func tryKayakoPostURL(u, username, password string) (kayakoAnswer, error) {
	var a kayakoAnswer
	form := url.Values{"username": {username}, "password": {password}, "ipaddress": {"198.51.100.7"}}
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return a, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "SWIFT_LoginShare")
	resp, err := kayakoClient.Do(req)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return a, err
	}
	if err := xml.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("answer is not a LoginShare document: %v\n%s", err, body)
	}
	return a, nil
}

func TestKayakoLogsInThroughCaddyWithTheSQLBackend(t *testing.T) {
	caddyEnv()
	d := openDatabase(t, "postgres")
	t.Setenv("LOGINSHARE_SQL_TEST_DSN", d.dsn)
	port := freeTCPPort(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	cfg := fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	skip_install_trust
	log {
		output file %[1]s
		level DEBUG
	}
}
http://127.0.0.1:%[2]d {
	log {
		output file %[1]s
	}
	loginshare {
		failure_delay 10ms
		failure_jitter 1ms
		user_groups {
			staff  "Staff Users"
			default Registered
		}
		backend sql {
			driver postgres
			dsn {env.LOGINSHARE_SQL_TEST_DSN}
			user_query "%[3]s"
			groups_query "%[4]s"
			query_timeout 2s
		}
	}
	respond "next handler" 200
}
`, logFile, port, strings.Join(strings.Fields(userQuery), " "), groupsQuery)
	loadCaddyfile(t, cfg)
	t.Cleanup(func() {
		_ = caddy.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("Caddy's log:\n%s", b)
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitForPort(t, port)

	a := kayakoPost(t, base, "alice@example.org", Password)
	if a.Result != "1" || a.User == nil {
		t.Fatalf("alice: %+v", a)
	}
	if a.User.UserGroup != "Staff Users" || a.User.FullName != "Alice Anders" || a.User.Designation != "Engineer" ||
		a.User.Organization != "Example Org" || len(a.User.Emails) != 1 || a.User.Emails[0] != "alice@example.org" {
		t.Errorf("alice's document: %+v", *a.User)
	}
	if a := kayakoPost(t, base, "bob", Password); a.Result != "1" || a.User.UserGroup != "Registered" {
		t.Errorf("bob (no mapped group): %+v", a)
	}
	for _, c := range []struct{ user, pw, msg string }{
		{"alice", "wrong", "Invalid username or password"},
		{"nobody", Password, "Invalid username or password"},
		{"carol", Password, "Invalid username or password"}, // disabled
		{"' OR '1'='1", Password, "Invalid username or password"},
		{"dave", Password, "Authentication service unavailable"}, // md5: no accepted format
	} {
		if a := kayakoPost(t, base, c.user, c.pw); a.Result != "0" || a.Message != c.msg {
			t.Errorf("%s: %+v, want result 0 %q", c.user, a, c.msg)
		}
	}

	// A reload with the same settings keeps the pool (and its
	// connections); logins go on working.
	before := d.count(t, "people")
	var err error
	loadCaddyfile(t, cfg)
	// The old server may still be closing its listener a moment.
	var after kayakoAnswer
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if after, err = tryKayakoPost(base, "alice", Password); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || after.Result != "1" {
		t.Errorf("after a reload: %+v, %v", after, err)
	}
	if d.count(t, "people") != before {
		t.Error("the table changed")
	}

	if err = caddy.Stop(); err != nil { // flushes the log files
		t.Fatal(err)
	}
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"outcome":"ok"`, `"outcome":"invalid_credentials"`, `"outcome":"unknown_user"`,
		`"outcome":"account_disabled"`, `"outcome":"unavailable"`, "no accepted format"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("Caddy's log has no %s", want)
		}
	}
	for _, secret := range append(secretForms(d.password), Password) {
		if strings.Contains(string(log), secret) {
			t.Errorf("Caddy's log (DEBUG, access log) holds %q", secret)
		}
	}
}

func waitForPort(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d", port)
}
