package sql

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	_ "github.com/kayako-loginshare/caddy-loginshare/backends/ldap"
)

func TestCaddyfilePresets(t *testing.T) {
	for _, c := range []struct{ name, block, err string }{
		{"wordpress, DSN only", "driver mysql\ndsn x\npreset wordpress", ""},
		{"wordpress, other prefix", "driver mysql\ndsn x\npreset wordpress\ntable_prefix shop2_", ""},
		{"joomla needs a prefix", "driver mysql\ndsn x\npreset joomla", "preset joomla needs table_prefix"},
		{"joomla with one", "driver mysql\ndsn x\npreset joomla\ntable_prefix x7k2q_", ""},
		{"joomla, own queries without {prefix}", "driver mysql\ndsn x\npreset joomla\nuser_query \"SELECT id, password FROM jos_users WHERE username = {username}\"\ngroups_query \"SELECT title FROM jos_usergroups WHERE id = {id}\"", ""},
		{"django has no prefix", "driver postgres\ndsn x\npreset django\ntable_prefix dj_", "no query uses {prefix}"},
		{"drupal7, prefix", "driver postgres\ndsn x\npreset drupal7\ntable_prefix d7_", ""},
		{"whmcs overrides hashes", "driver mysql\ndsn x\npreset whmcs\nhashes bcrypt", ""},
		{"preset before driver, broken override", "preset drupal\nuser_query \"SELECT id FROM users WHERE name = {username}\"\ndriver postgres\ndsn x", "selects no password column"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse("sql {\n" + c.block + "\n}")
			if c.err == "" && err != nil {
				t.Fatal(err)
			}
			if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("err %v, want %q", err, c.err)
			}
		})
	}
}

// TestEveryPresetProvisionsOnEveryDriver: each preset's queries compile for
// every driver its application runs on, and explicit options win.
func TestEveryPresetProvisionsOnEveryDriver(t *testing.T) {
	dsns := map[string]string{DriverMySQL: "u:p@tcp(127.0.0.1:9)/db", DriverPostgres: "postgres://u:p@127.0.0.1:9/db", DriverSQLite: filepath.Join(scratch, "none.db")}
	for name := range presets {
		if name == PresetGeneric {
			continue
		}
		for driver, dsn := range dsns {
			s := &SQL{Driver: driver, DSN: dsn, Preset: name, probeAfter: -1}
			if presets[name].prefixRequired {
				s.TablePrefix = "jx_"
			}
			ctx, cancel := context.WithCancel(context.Background())
			if err := s.provision(ctx, zap.NewNop()); err != nil {
				t.Errorf("%s on %s: %v", name, driver, err)
			}
			cancel()
			_ = s.Cleanup()
		}
	}
	s := &SQL{Driver: DriverMySQL, DSN: dsns[DriverMySQL], Preset: PresetWordPress, TablePrefix: "shop_", Hashes: []string{"wordpress"}, probeAfter: -1}
	if err := s.provision(context.Background(), zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	defer s.Cleanup()
	if !strings.Contains(s.userQ.text, "FROM shop_users") || !strings.Contains(s.groupsQ.text, "'shop_capabilities'") ||
		len(s.accepted) != 1 || !s.trimPw {
		t.Errorf("overrides: %s / %s / %v", s.userQ.text, s.groupsQ.text, s.accepted)
	}
}

// TestWordPressAndADExampleThroughCaddy runs examples/Caddyfile.wordpress-and-ad
// as shipped, changed only where a test must: its site address and
// allow_from become loopback, its log goes to a temp file, and
// WORDPRESS_DSN is the test MariaDB's WordPress schema (the reader with
// SELECT on wp_users and wp_usermeta only). Only the customer side is
// asserted: the staff backend names the example's domain controllers,
// which are not contacted (staff logins are not tried here; the LDAP
// backend's own tests run the activedirectory preset against Samba).
func TestWordPressAndADExampleThroughCaddy(t *testing.T) {
	caddyEnv()
	_, _, dsn := wordpressDatabase(t)
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "Caddyfile.wordpress-and-ad"))
	if err != nil {
		t.Fatal(err)
	}
	port := freeTCPPort(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	cfg := string(src)
	for old, repl := range map[string]string{
		"helpdesk.example.com {":                   fmt.Sprintf("http://127.0.0.1:%d {", port),
		"allow_from 203.0.113.10 2001:db8:10::/64": "allow_from 127.0.0.1",
		"/var/log/caddy/helpdesk-access.log":       logFile,
		"reverse_proxy kayako:80":                  `respond "kayako" 200`,
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("the example no longer has %q", old)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	cfg = "{\n\tadmin off\n\tpersist_config off\n\tauto_https off\n\tskip_install_trust\n}\n" + cfg
	t.Setenv("WORDPRESS_DSN", dsn)
	t.Setenv("LOGINSHARE_SQL_TEST_DSN", dsn)
	t.Setenv("LOGINSHARE_KEY", "example-key")
	t.Setenv("LDAP_BIND_PASSWORD", "unused")
	loadCaddyfile(t, cfg)
	t.Cleanup(func() {
		_ = caddy.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("access log:\n%s", b)
		}
	})
	waitForPort(t, port)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	post := func(user, pw string) kayakoAnswer {
		t.Helper()
		var a kayakoAnswer
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			a, err = tryKayakoPostKey(base, "example-key", user, pw)
			if err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if a := post("ada", Password); a.Result != "1" || a.User.UserGroup != "VIP" || a.User.FullName != "Ada Admin" {
		t.Errorf("ada (administrator): %+v %+v", a, a.User)
	}
	if a := post("bob@example.org", Password); a.Result != "1" || a.User.UserGroup != "Registered" {
		t.Errorf("bob by e-mail (subscriber): %+v", a)
	}
	if a := post("tess", "  "+Password+"  "); a.Result != "1" {
		t.Errorf("tess, password with spaces (WordPress trims): %+v", a)
	}
	if a := post("ada", "wrong"); a.Result != "0" || a.Message != msgInvalid {
		t.Errorf("wrong password: %+v", a)
	}
	if a, err := tryKayakoPostKey(base, "wrong-key", "ada", Password); err == nil && a.Result == "1" {
		t.Error("a wrong key logged in")
	}
}

func tryKayakoPostKey(base, key, user, pw string) (kayakoAnswer, error) {
	return tryKayakoPostURL(base+"/loginshare/user?key="+url.QueryEscape(key), user, pw)
}
