package loginsharecmd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/kayako-loginshare/caddy-loginshare/backends/static"
	"github.com/kayako-loginshare/caddy-loginshare/caddymodule"
)

// asCaddy makes the test binary run as `caddy` (Caddy's own main with this
// package's command registered): plumbing_test.go runs it that way to see
// exit statuses and help as a real Caddy binary gives them.
const asCaddy = "LOGINSHARECMD_TEST_AS_CADDY"

func TestMain(m *testing.M) {
	if os.Getenv(asCaddy) == "1" {
		caddycmd.Main()
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "loginsharecmd-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	code := m.Run()
	_ = caddy.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startCaddy runs this plugin's endpoints in an in-process Caddy with one
// static account (jdoe / s3cret) and returns its base URL and log file.
// This is the only test in the package that starts Caddy.
func startCaddy(t *testing.T) (base, logFile string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	logFile = filepath.Join(t.TempDir(), "caddy.log")
	cfg := fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	skip_install_trust
	log {
		output file %s
		level DEBUG
	}
}
http://127.0.0.1:%d {
	loginshare {
		failure_delay 1ms
		failure_jitter 1ms
		throttle off
		user_groups {
			helpdesk-users Registered
		}
		staff_teams {
			helpdesk-staff Support
		}
		backend static {
			user jdoe %s {
				full_name   "Jane Doe"
				first_name  Jane
				last_name   Doe
				email       Jane.Doe@Example.com
				designation Engineer
				phone       "+1 555 0100"
				groups      helpdesk-users helpdesk-staff
			}
		}
	}
	respond "next handler" 404
}
`, logFile, port, hash)
	js, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(js, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	waitListening(t, port)
	return fmt.Sprintf("http://127.0.0.1:%d", port), logFile
}

// TestCheckAgainstOurEndpoint runs the check against this plugin's handler
// in a real Caddy: user and staff, right and wrong password.
func TestCheckAgainstOurEndpoint(t *testing.T) {
	base, logFile := startCaddy(t)
	for _, tc := range []struct {
		name     string
		args     []string
		password string
		code     int
		words    []string
	}{
		{"user, right password", []string{"--ipaddress", "203.0.113.7", base + "/loginshare/user"}, "s3cret", exitLogin, []string{
			textLine("verdict", `login: Kayako would log "jdoe" in to the support centre`),
			textLine("user group", "Registered"), textLine("full name", "Jane Doe"), textLine("e-mails", "jane.doe@example.com"),
			textLine("designation", "Engineer"), textLine("phone", "+1 555 0100"), "200 OK in "}},
		{"user, wrong password", []string{base + "/loginshare/user"}, "wrong", exitRefused, []string{
			textLine("verdict", fmt.Sprintf("refused: Kayako would refuse the login and show %q", caddymodule.DefaultMessageInvalid))}},
		{"staff, right password", []string{"--staff", base + "/loginshare/staff"}, "s3cret", exitLogin, []string{
			textLine("verdict", `login: Kayako would log "jdoe" in as staff (interface staff)`),
			textLine("team", "Support"), textLine("first name", "Jane"), textLine("last name", "Doe"),
			textLine("designation", "Engineer"), textLine("e-mail", "jane.doe@example.com"),
			textLine("mobile", "(empty)"), textLine("signature", "(empty)")}},
		{"staff, wrong password", []string{"--staff", base + "/loginshare/staff"}, "wrong", exitRefused, []string{
			fmt.Sprintf("refused: Kayako would refuse the login and show %q", caddymodule.DefaultMessageInvalid),
			"the Staff CP shows this message only while its login lockout is on"}},
		{"staff, the admin interface (denied by default)", []string{"--staff", "--interface", "admin", base + "/loginshare/staff"}, "s3cret", exitRefused, []string{
			fmt.Sprintf("show %q", caddymodule.DefaultMessageDenied), "falls back to the local Kayako password"}},
		{"user login sent to the staff endpoint", []string{base + "/loginshare/staff"}, "s3cret", exitRefused, []string{
			"add --staff to check it as Kayako's staff login"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCheck(t, tc.password+"\n", append([]string{"-u", "jdoe"}, tc.args...)...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d", r.code, tc.code)
			}
			for _, w := range tc.words {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if strings.Contains(r.stdout+r.stderr, tc.password) {
				t.Error("the password appears in the output")
			}
		})
	}

	// The handler's audit lines show the fields arrived as sent.
	if err := caddy.Stop(); err != nil { // flushes the log
		t.Fatal(err)
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var audits []map[string]any
	for _, l := range strings.Split(string(b), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["logger"] == "http.handlers.loginshare.audit" {
			audits = append(audits, m)
		}
	}
	if len(audits) != 6 {
		t.Fatalf("%d audit lines, want 6:\n%s", len(audits), b)
	}
	first, third := audits[0], audits[2]
	if first["endpoint"] != "user" || first["username"] != "jdoe" || first["ipaddress"] != "203.0.113.7" || first["outcome"] != "ok" {
		t.Errorf("first audit line %v", first)
	}
	if third["endpoint"] != "staff" || third["interface"] != "staff" || third["ipaddress"] != "127.0.0.1" || third["outcome"] != "ok" {
		t.Errorf("third audit line %v", third)
	}
	if strings.Contains(string(b), "s3cret") {
		t.Error("the password is in Caddy's log")
	}
}
