package sql

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
)

const okQuery = "SELECT login AS username, pass AS password FROM u WHERE login = {username}"

// unreachable is a loopback address where nothing listens.
func unreachable(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestProvisionChecksJSONConfigsLikeTheCaddyfile(t *testing.T) {
	for _, c := range []struct {
		name string
		s    *SQL
		want string
	}{
		{"no driver", &SQL{DSN: "x", UserQuery: okQuery}, `driver "": want postgres, mysql or sqlite`},
		{"bad driver", &SQL{Driver: "oracle", DSN: "x", UserQuery: okQuery}, `driver "oracle"`},
		{"no dsn", &SQL{Driver: DriverSQLite, UserQuery: okQuery}, "dsn must not be empty"},
		{"empty after placeholders", &SQL{Driver: DriverSQLite, DSN: "{env.LOGINSHARE_SQL_TEST_UNSET}", UserQuery: okQuery}, "dsn is empty after resolving"},
		{"bad preset", &SQL{Driver: DriverSQLite, DSN: "x", Preset: "joomla3", UserQuery: okQuery}, `preset "joomla3"`},
		{"no user_query", &SQL{Driver: DriverSQLite, DSN: "x"}, "user_query is required"},
		{"quoted placeholder", &SQL{Driver: DriverPostgres, DSN: "postgres://u@h/d", UserQuery: "SELECT login AS username, pass AS password FROM u WHERE login = '{username}'"}, "inside the quoted literal"},
		{"no password", &SQL{Driver: DriverMySQL, DSN: "u@tcp(h)/d", UserQuery: "SELECT login FROM u WHERE login = {username}"}, "no password column"},
		{"bad hash", &SQL{Driver: DriverSQLite, DSN: "x", UserQuery: okQuery, Hashes: []string{"crc32"}}, `unknown password hash format "crc32"`},
		{"hash twice", &SQL{Driver: DriverSQLite, DSN: "x", UserQuery: okQuery, Hashes: []string{"md5", "md5"}}, "listed twice"},
		{"negative pool", &SQL{Driver: DriverSQLite, DSN: "x", UserQuery: okQuery, PoolSize: -1}, "pool_size must be positive"},
		{"negative timeout", &SQL{Driver: DriverSQLite, DSN: "x", UserQuery: okQuery, QueryTimeout: -1}, "query_timeout must not be negative"},
		{"bad prefix", &SQL{Driver: DriverSQLite, DSN: "x", UserQuery: okQuery, TablePrefix: "a b"}, "only letters"},
		{"unused prefix", &SQL{Driver: DriverSQLite, DSN: "x", UserQuery: okQuery, TablePrefix: "wp_"}, "no query uses {prefix}"},
		{"sqlite memory", &SQL{Driver: DriverSQLite, DSN: ":memory:", UserQuery: okQuery}, "in-memory"},
		{"mysql multi statements", &SQL{Driver: DriverMySQL, DSN: "u:p@tcp(127.0.0.1:1)/d?multiStatements=true", UserQuery: okQuery}, "multiStatements"},
		{"pg bad dsn", &SQL{Driver: DriverPostgres, DSN: "postgres://u:p@h:notaport/d", UserQuery: okQuery}, "dsn"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := tryProvision(t, c.s)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestProvisionDoesNotConnect(t *testing.T) {
	// caddy validate must pass without a database: nothing listens at the
	// address, and provisioning still succeeds; the first login then
	// answers unavailable.
	for _, s := range []*SQL{
		{Driver: DriverPostgres, DSN: "postgres://reader:pw@" + unreachable(t) + "/shop?sslmode=disable", UserQuery: okQuery},
		{Driver: DriverMySQL, DSN: "reader:pw@tcp(" + unreachable(t) + ")/shop", UserQuery: okQuery},
		{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "missing.db"), UserQuery: okQuery},
	} {
		t.Run(s.Driver, func(t *testing.T) {
			s.QueryTimeout = caddyDuration(2 * time.Second)
			s, logs := provision(t, s)
			if n := len(levelLines(logs, zapcore.WarnLevel)); n != 0 {
				t.Errorf("warnings at provision:\n%s", logText(logs))
			}
			if st := s.db.Stats(); st.OpenConnections != 0 {
				t.Errorf("%d connections open after provision", st.OpenConnections)
			}
			_, err := login(s, "alice", Password)
			wantClass(t, err, backends.Unavailable)
			warns := levelLines(logs, zapcore.WarnLevel)
			if len(warns) != 1 || warns[0].ContextMap()["driver"] != s.Driver || warns[0].ContextMap()["host"] != s.target.host || s.target.host == "" {
				t.Errorf("want one WARN naming driver and host:\n%s", logText(logs))
			}
			if s.Driver == DriverSQLite {
				// mode=rw: a mistyped path is not created as an empty database.
				if _, err := os.Stat(s.target.host); err == nil {
					t.Errorf("%s was created", s.target.host)
				}
			}
		})
	}
}

func TestPlainInHashesWarns(t *testing.T) {
	_, logs := provision(t, &SQL{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "x.db"), UserQuery: okQuery, Hashes: []string{"bcrypt", "plain"}})
	warns := levelLines(logs, zapcore.WarnLevel)
	if len(warns) != 1 || !strings.Contains(warns[0].Message, "plain") {
		t.Errorf("want a WARN about plain:\n%s", logText(logs))
	}
}

func TestPoolsAreSharedByEqualSettingsAndReleasedInCleanup(t *testing.T) {
	d := openDatabase(t, "sqlite")
	a, _ := provision(t, d.backend())
	b, bLogs := provision(t, d.backend())
	if a.db != b.db {
		t.Fatal("equal settings got two pools")
	}
	other := d.backend()
	other.PoolSize = 3
	c, _ := provision(t, other)
	if c.db == a.db {
		t.Fatal("a different pool_size shares the pool")
	}
	// A reload: the old config's Cleanup runs after the new one
	// provisioned, and the shared pool survives it.
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := a.Cleanup(); err != nil { // twice is harmless
		t.Fatal(err)
	}
	if _, err := login(b, "alice", Password); err != nil {
		t.Fatalf("after the other config's cleanup: %v", err)
	}
	if err := b.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := b.db.Ping(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("the pool is still open after its last user's cleanup: %v", err)
	}
	_, err := login(b, "alice", Password)
	wantClass(t, err, backends.Unavailable)
	if errs := levelLines(bLogs, zapcore.ErrorLevel); len(errs) != 0 {
		t.Errorf("a login on a released config is no query mistake:\n%s", logText(bLogs))
	}
	// A half-provisioned module cleans up too.
	if err := new(SQL).Cleanup(); err != nil {
		t.Fatal(err)
	}
}

func TestProbeReportsWhatAnOperatorMustFix(t *testing.T) {
	d := openDatabase(t, "postgres")
	for _, c := range []struct {
		name  string
		s     *SQL
		level zapcore.Level
		msg   string
	}{
		{"reachable", &SQL{Driver: d.driver, DSN: d.dsn, UserQuery: userQuery}, zapcore.InfoLevel, "SQL database reachable"},
		{"down", &SQL{Driver: DriverPostgres, DSN: "postgres://reader:pw@" + unreachable(t) + "/x", UserQuery: okQuery}, zapcore.WarnLevel, "SQL database check failed"},
		{"wrong password", &SQL{Driver: d.driver, DSN: strings.Replace(d.dsn, escapeUserinfo(d.password), "wrong", 1), UserQuery: userQuery}, zapcore.ErrorLevel, "refused the account"},
		{"query mistake", &SQL{Driver: d.driver, DSN: d.dsn, UserQuery: "SELECT login AS username, pass AS password FROM nosuch WHERE login = {username}"}, zapcore.ErrorLevel, "SQL query failed"},
		{"unknown column", &SQL{Driver: d.driver, DSN: d.dsn, UserQuery: "SELECT login AS username, pass AS password, company FROM people WHERE login = {username}"}, zapcore.ErrorLevel, "SQL query failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.s.probeAfter = time.Millisecond
			s, logs := provision(t, c.s)
			deadline := time.Now().Add(10 * time.Second)
			for {
				for _, e := range logs.All() {
					if e.Level == c.level && strings.Contains(e.Message, c.msg) {
						if e.ContextMap()["host"] == "" && e.ContextMap()["driver"] != s.Driver {
							t.Errorf("%s does not name the database: %v", e.Message, e.ContextMap())
						}
						return
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("no %s %q from the probe:\n%s", c.level, c.msg, logText(logs))
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestProbeStopsWithTheConfig(t *testing.T) {
	s := &SQL{Driver: DriverPostgres, DSN: "postgres://reader:pw@" + unreachable(t) + "/x", UserQuery: okQuery, probeAfter: time.Hour}
	s, logs := provision(t, s)
	done := make(chan struct{})
	go func() { s.Cleanup(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Cleanup waited for the probe's delay")
	}
	if len(logs.All()) != 1 { // the "ready" line only
		t.Errorf("the probe ran:\n%s", logText(logs))
	}
}

func TestRequestDeadlineIsUnavailableWithoutAWarning(t *testing.T) {
	d := openDatabase(t, "postgres")
	s, logs := provision(t, &SQL{Driver: d.driver, DSN: d.dsn, QueryTimeout: caddyDuration(5 * time.Second),
		UserQuery: `SELECT login AS username, pass AS password FROM people WHERE login = {username} AND ` + d.sleepWhere})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Authenticate(ctx, backends.Credentials{Username: "alice", Password: Password})
	wantClass(t, err, backends.Unavailable)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s with a 300ms request deadline", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v", err)
	}
	if n := len(levelLines(logs, zapcore.WarnLevel)); n != 0 {
		t.Errorf("the request's own deadline is the handler's to report:\n%s", logText(logs))
	}
}

// escapeUserinfo is password as a URL's user info carries it.
func escapeUserinfo(password string) string {
	return strings.TrimPrefix(url.UserPassword("", password).String(), ":")
}

func TestDSNFromEnvironmentAndFile(t *testing.T) {
	d := openDatabase(t, "postgres")
	t.Setenv("LOGINSHARE_SQL_TEST_DSN", d.dsn)
	file := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(file, []byte(d.dsn+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dsn := range []string{"{env.LOGINSHARE_SQL_TEST_DSN}", "{file." + file + "}"} {
		s, _ := provision(t, &SQL{Driver: d.driver, DSN: dsn, UserQuery: userQuery})
		if s.DSN != dsn {
			t.Errorf("the resolved DSN was written back into the config: %q", s.DSN)
		}
		if _, err := login(s, "alice", Password); err != nil {
			t.Errorf("%s: %v", dsn, err)
		}
	}
}
