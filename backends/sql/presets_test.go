package sql

import (
	dbsql "database/sql"
	"encoding/xml"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/kayako-loginshare/caddy-loginshare/internal/dbtest"
)

// Every application preset against its application's own schema in a real
// database, logged into through a real Caddy. Each schema is written from
// the application's public source (cited at each fixture), with only the
// tables and columns the preset reads left out where noted; the rows'
// hashes are made by the application's own algorithm (PHP's password_hash,
// WordPress 6.8's wp_hash_password run by PHP, or this package's
// implementations of phpass, Drupal 7 and Django's PBKDF2, checked in
// apphash_test.go).
//
// The database account is created with exactly the grants the README
// gives for the preset: the test proves they are enough.

// presetCase is one login: ok with the user group (and, when team is
// set, the staff team on the staff endpoint), or refused with msg.
type presetCase struct {
	name, user, pw string
	msg            string // "" = success
	group, team    string
	fullName, org  string
	email          string
}

const (
	msgInvalid     = "Invalid username or password"
	msgUnavailable = "Authentication service unavailable"
)

type presetFixture struct {
	preset, driver, dsn string
	extra               string // more lines in the sql block
	userGroups          string // user_groups lines
	staffTeams          string // staff_teams lines
	cases               []presetCase
	// rows counts the user table's rows as the owner (injection check).
	rows func(t testing.TB) int
}

var injections = []presetCase{
	{name: "injection quote", user: "' OR '1'='1", pw: Password, msg: msgInvalid},
	{name: "injection drop", user: `"; DROP TABLE users; --`, pw: Password, msg: msgInvalid},
	{name: "injection union", user: "x' UNION SELECT 1, 'a', 'b', 'c' -- ", pw: Password, msg: msgInvalid},
}

func TestPresetsAgainstTheApplicationsSchemas(t *testing.T) {
	caddyEnv()
	for _, c := range []struct {
		name  string
		build func(t *testing.T) presetFixture
	}{
		{"wordpress", wordpressFixture},
		{"joomla", joomlaFixture},
		{"drupal7", drupal7Fixture},
		{"drupal", drupalFixture},
		{"django", djangoFixture},
		{"whmcs", whmcsFixture},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := c.build(t)
			runPresetFixture(t, f)
		})
	}
}

func presetCaddyfile(port int, logFile string, f presetFixture) string {
	return fmt.Sprintf(`{
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
	loginshare {
		failure_delay 1ms
		failure_jitter 1ms
		throttle off
		user_groups {
%[3]s
			default Registered
		}
		staff_teams {
%[4]s
		}
		backend sql {
			driver %[5]s
			dsn {env.LOGINSHARE_SQL_TEST_DSN}
			preset %[6]s
%[7]s
		}
	}
}
`, logFile, port, f.userGroups, f.staffTeams, f.driver, f.preset, f.extra)
}

func runPresetFixture(t *testing.T, f presetFixture) {
	t.Setenv("LOGINSHARE_SQL_TEST_DSN", f.dsn)
	port := freeTCPPort(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	loadCaddyfile(t, presetCaddyfile(port, logFile, f))
	t.Cleanup(func() {
		_ = caddy.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("Caddy's log:\n%s", b)
		}
	})
	waitForPort(t, port)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	before := f.rows(t)
	for _, c := range append(append([]presetCase(nil), f.cases...), injections...) {
		t.Run(c.name, func(t *testing.T) {
			a := kayakoPost(t, base, c.user, c.pw)
			if c.msg != "" {
				if a.Result != "0" || a.Message != c.msg {
					t.Fatalf("%q: %+v, want refused with %q", c.user, a, c.msg)
				}
				return
			}
			if a.Result != "1" || a.User == nil {
				t.Fatalf("%q: %+v, want logged in", c.user, a)
			}
			if a.User.UserGroup != c.group {
				t.Errorf("user group %q, want %q", a.User.UserGroup, c.group)
			}
			if c.fullName != "" && a.User.FullName != c.fullName {
				t.Errorf("full name %q, want %q", a.User.FullName, c.fullName)
			}
			if a.User.Organization != c.org {
				t.Errorf("organization %q, want %q", a.User.Organization, c.org)
			}
			if c.email != "" && (len(a.User.Emails) == 0 || a.User.Emails[0] != c.email) {
				t.Errorf("e-mails %q, want %q first", a.User.Emails, c.email)
			}
			if c.team != "" {
				if got := staffTeam(t, base, c.user, c.pw); got != c.team {
					t.Errorf("staff team %q, want %q", got, c.team)
				}
			}
		})
	}
	if after := f.rows(t); after != before {
		t.Errorf("the user table had %d rows, now %d", before, after)
	}
}

// staffTeam logs in on the staff endpoint and returns the team ("" when
// refused).
func staffTeam(t *testing.T, base, user, pw string) string {
	t.Helper()
	form := url.Values{"username": {user}, "password": {pw}, "ipaddress": {"198.51.100.7"}, "interface": {"staff"}}
	resp, err := kayakoClient.PostForm(base+"/loginshare/staff", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Result string `xml:"result"`
		Staff  *struct {
			Team string `xml:"team"`
		} `xml:"staff"`
	}
	if err := xml.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.Result != "1" || doc.Staff == nil {
		return ""
	}
	return doc.Staff.Team
}

func mysqlQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
}

func pgQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// mariadbReader creates an account with SELECT on the named tables only
// (the README's grants) and returns its DSN.
func mariadbReader(t *testing.T, m *dbtest.MariaDB, db string, tables ...string) string {
	user := "r" + strings.TrimPrefix(db, "fixture")
	user = strings.NewReplacer("_", "", "-", "").Replace(user)
	if len(user) > 32 {
		user = user[:32]
	}
	pw := "Reader-pw-" + user
	stmts := fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY %s", user, mysqlQuote(pw))
	for _, tb := range tables {
		stmts += fmt.Sprintf("; GRANT SELECT ON %s.%s TO '%s'@'%%'", db, tb, user)
	}
	m.Exec(t, "", stmts)
	return m.DSN(user, pw, db)
}

// postgresReader creates an account with CONNECT, USAGE on public and
// SELECT on the named tables only (the README's grants).
func postgresReader(t *testing.T, p *dbtest.Postgres, db string, tables ...string) string {
	user := "r_" + db
	pw := "Reader-pw-" + db
	p.Exec(t, "", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD %s", user, pgQuote(pw)))
	p.Exec(t, "", fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", db, user))
	p.Exec(t, db, fmt.Sprintf("GRANT USAGE ON SCHEMA public TO %s; GRANT SELECT ON %s TO %s", user, strings.Join(tables, ", "), user))
	return p.DSN(user, pw, db)
}

func countRows(t testing.TB, db *dbsql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
