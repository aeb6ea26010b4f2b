package dbtest

import (
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopAll()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goroutines left behind: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// open opens dsn with driver and closes the pool when t ends.
func open(t *testing.T, driver, dsn string) *dbsql.DB {
	t.Helper()
	db, err := dbsql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func ping(db *dbsql.DB) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// processAlive reports whether pid names a live process (signal 0).
func processAlive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

func TestPostgresStartsOnceAndRunsAsPostgres(t *testing.T) {
	p := StartPostgres(t)
	if again := StartPostgres(t); again != p {
		t.Fatal("second StartPostgres started another server")
	}
	if !processAlive(p.PID()) {
		t.Fatalf("no process %d", p.PID())
	}
	if os.Geteuid() == 0 {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID()) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(st), "\nUid:\t"+strconv.Itoa(int(p.cred.Uid))+"\t") {
			t.Errorf("postgres does not run as the postgres account:\n%s", st)
		}
	}
	var listen, fsync, auth string
	db := p.DB(t, "")
	if err := db.QueryRow("SHOW listen_addresses").Scan(&listen); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SHOW fsync").Scan(&fsync); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SHOW password_encryption").Scan(&auth); err != nil {
		t.Fatal(err)
	}
	if listen != Host || fsync != "off" || auth != "scram-sha-256" {
		t.Errorf("listen_addresses %q, fsync %q, password_encryption %q", listen, fsync, auth)
	}
	if err := ping(open(t, "pgx", p.DSN("postgres", "wrong", "postgres"))); err == nil {
		t.Error("the superuser logged in with a wrong password")
	}
}

func TestPostgresReaderMaySelectOnly(t *testing.T) {
	p := StartPostgres(t)
	db := p.CreateDatabase(t, "harness")
	p.Exec(t, db, `CREATE TABLE before (v text); INSERT INTO before VALUES ('one')`)
	user, pw := p.CreateReader(t, db)
	p.Exec(t, db, `CREATE TABLE after (v text); INSERT INTO after VALUES ('two')`)

	r := open(t, "pgx", p.DSN(user, pw, db))
	for table, want := range map[string]string{"before": "one", "after": "two"} {
		var got string
		if err := r.QueryRow("SELECT v FROM " + table).Scan(&got); err != nil || got != want {
			t.Errorf("SELECT from %s: %q, %v", table, got, err)
		}
	}
	for _, stmt := range []string{
		"INSERT INTO before VALUES ('x')",
		"UPDATE before SET v = 'x'",
		"DELETE FROM after",
		"CREATE TABLE mine (v text)",
		"DROP TABLE before",
	} {
		_, err := r.Exec(stmt)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" { // insufficient_privilege
			t.Errorf("%s as the reader: %v, want permission denied", stmt, err)
		}
	}
	other := p.CreateDatabase(t, "harness_other")
	if err := ping(open(t, "pgx", p.DSN(user, pw, other))); err == nil {
		t.Errorf("the reader of %s connected to %s", db, other)
	}
}

func TestPostgresStopAndRestart(t *testing.T) {
	p := StartPostgres(t)
	db := p.CreateDatabase(t, "restart")
	p.Exec(t, db, `CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)`)
	user, pw := p.CreateReader(t, db)
	r := open(t, "pgx", p.DSN(user, pw, db))
	if err := ping(r); err != nil {
		t.Fatal(err)
	}
	pid := p.PID()
	p.Stop(t)
	t.Cleanup(func() { p.Restart(t) }) // others share the server
	if processAlive(pid) || p.PID() != 0 {
		t.Fatalf("postgres %d still runs after Stop", pid)
	}
	start := time.Now()
	if err := ping(r); err == nil {
		t.Fatal("ping succeeded with the server stopped")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a stopped server took %s to refuse", d)
	}
	p.Restart(t)
	if p.PID() == 0 || p.PID() == pid {
		t.Fatalf("restart: pid %d (was %d)", p.PID(), pid)
	}
	var v int
	if err := r.QueryRow("SELECT v FROM kept").Scan(&v); err != nil || v != 42 {
		t.Fatalf("after restart: %d, %v", v, err)
	}
}

func TestMariaDBStartsOnce(t *testing.T) {
	m := StartMariaDB(t)
	if again := StartMariaDB(t); again != m {
		t.Fatal("second StartMariaDB started another server")
	}
	if !processAlive(m.PID()) {
		t.Fatalf("no process %d", m.PID())
	}
	var bind, resolve string
	db := m.DB(t, "")
	if err := db.QueryRow("SELECT @@bind_address, @@skip_name_resolve").Scan(&bind, &resolve); err != nil {
		t.Fatal(err)
	}
	if bind != Host || resolve != "1" {
		t.Errorf("bind_address %q, skip_name_resolve %q", bind, resolve)
	}
	// root has no password and is reachable only through the socket.
	if err := ping(open(t, "mysql", m.DSN("root", "", ""))); err == nil {
		t.Error("root logged in over TCP without a password")
	}
}

func TestMariaDBReaderMaySelectOnly(t *testing.T) {
	m := StartMariaDB(t)
	db := m.CreateDatabase(t, "harness")
	m.Exec(t, db, `CREATE TABLE t (v varchar(10)); INSERT INTO t VALUES ('one')`)
	user, pw := m.CreateReader(t, db)
	r := open(t, "mysql", m.DSN(user, pw, db))
	var got string
	if err := r.QueryRow("SELECT v FROM t").Scan(&got); err != nil || got != "one" {
		t.Fatalf("SELECT as the reader: %q, %v", got, err)
	}
	for _, stmt := range []string{
		"INSERT INTO t VALUES ('x')",
		"UPDATE t SET v = 'x'",
		"DELETE FROM t",
		"CREATE TABLE mine (v int)",
		"DROP TABLE t",
	} {
		_, err := r.Exec(stmt)
		var me *mysql.MySQLError
		if !errors.As(err, &me) || (me.Number != 1142 && me.Number != 1044) { // command denied
			t.Errorf("%s as the reader: %v, want command denied", stmt, err)
		}
	}
	other := m.CreateDatabase(t, "harness_other")
	if err := ping(open(t, "mysql", m.DSN(user, pw, other))); err == nil {
		t.Errorf("the reader of %s connected to %s", db, other)
	}
	if err := ping(open(t, "mysql", m.DSN(user, "wrong", db))); err == nil {
		t.Error("the reader logged in with a wrong password")
	}
}

func TestMariaDBStopAndRestart(t *testing.T) {
	m := StartMariaDB(t)
	db := m.CreateDatabase(t, "restart")
	m.Exec(t, db, `CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)`)
	user, pw := m.CreateReader(t, db)
	r := open(t, "mysql", m.DSN(user, pw, db))
	if err := ping(r); err != nil {
		t.Fatal(err)
	}
	pid := m.PID()
	m.Stop(t)
	t.Cleanup(func() { m.Restart(t) })
	if processAlive(pid) || m.PID() != 0 {
		t.Fatalf("mariadbd %d still runs after Stop", pid)
	}
	if err := ping(r); err == nil {
		t.Fatal("ping succeeded with the server stopped")
	}
	m.Restart(t)
	if m.PID() == 0 || m.PID() == pid {
		t.Fatalf("restart: pid %d (was %d)", m.PID(), pid)
	}
	var v int
	if err := r.QueryRow("SELECT v FROM kept").Scan(&v); err != nil || v != 42 {
		t.Fatalf("after restart: %d, %v", v, err)
	}
}

// TestShutdownStopsByPIDAndRemovesTheDirectory starts a second server of
// each kind (not the shared ones) and shuts it down as StopAll would.
func TestShutdownStopsByPIDAndRemovesTheDirectory(t *testing.T) {
	StartPostgres(t) // skips (or fails under CI) like every test here
	StartMariaDB(t)
	pg, err := startPostgres()
	if err != nil {
		t.Fatal(err)
	}
	my, err := startMariaDB()
	if err != nil {
		pg.shutdown()
		t.Fatal(err)
	}
	for _, s := range []struct {
		name string
		pid  int
		dir  string
		stop func()
	}{{"postgres", pg.PID(), pg.Dir, pg.shutdown}, {"mariadb", my.PID(), my.Dir, my.shutdown}} {
		if !processAlive(s.pid) {
			t.Errorf("%s: pid %d not running", s.name, s.pid)
		}
		if !strings.HasPrefix(s.dir, os.TempDir()) {
			t.Errorf("%s: directory %s not under %s", s.name, s.dir, os.TempDir())
		}
		s.stop()
		if processAlive(s.pid) {
			t.Errorf("%s: pid %d still runs after shutdown", s.name, s.pid)
		}
		if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
			t.Errorf("%s: directory %s still there: %v", s.name, s.dir, err)
		}
	}
}

func TestMissingBinariesSkipOrFailUnderCI(t *testing.T) {
	// unavailable is what StartPostgres/StartMariaDB call; run it in a
	// subtest of a fake T to see what it does.
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			ft := &fakeT{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				unavailable(ft, "PostgreSQL", errors.Join(errors.New("no postgres"), errMissing))
			}()
			<-done
			if !strings.Contains(ft.msg, InstallHint) {
				t.Errorf("message %q does not say how to install", ft.msg)
			}
			if ci == "true" && !ft.fatal {
				t.Error("under CI=true a missing server must fail the test")
			}
			if ci == "" && !ft.skipped {
				t.Error("outside CI a missing server must skip the test")
			}
		})
	}
}

// fakeT records Skip and Fatal instead of ending the test.
type fakeT struct {
	testing.TB
	msg            string
	fatal, skipped bool
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatal(args ...any) {
	f.fatal, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.fatal, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeT) Skip(args ...any) {
	f.skipped, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
