package dbtest

import (
	"context"
	dbsql "database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MariaDB is the binary's private MariaDB server. Its superuser is root,
// reached only through the Unix socket (no password); test accounts connect
// over TCP on Host:Port.
type MariaDB struct {
	Port    int
	Socket  string
	Dir     string // data in Dir/data
	LogFile string

	mariadbd string

	mu   sync.Mutex
	proc *process
}

var (
	myOnce   sync.Once
	myServer *MariaDB
	myErr    error
)

// StartMariaDB returns the binary's MariaDB server, starting it on the first
// call (about 2 s for mariadb-install-db and the start). Missing binaries
// skip t (fail it under CI=true); any other start-up problem fails t, and
// every later call, at once.
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	myOnce.Do(func() {
		myServer, myErr = startMariaDB()
		if myServer != nil {
			register(myServer)
		}
	})
	if myErr != nil {
		unavailable(t, "MariaDB", myErr)
	}
	return myServer
}

// findProgram returns the first of names found in PATH or in the sbin
// directories (mariadbd lives in /usr/sbin, which a non-root PATH lacks).
func findProgram(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
		for _, d := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
			if p := filepath.Join(d, n); isExecutable(p) {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("none of %s found: %w", strings.Join(names, ", "), errMissing)
}

func startMariaDB() (*MariaDB, error) {
	mariadbd, err := findProgram("mariadbd", "mysqld")
	if err != nil {
		return nil, err
	}
	installDB, err := findProgram("mariadb-install-db", "mysql_install_db")
	if err != nil {
		return nil, err
	}
	m := &MariaDB{mariadbd: mariadbd}
	if m.Dir, err = os.MkdirTemp("", "dbtest-mariadb-"); err != nil {
		return nil, err
	}
	fail := func(err error) (*MariaDB, error) {
		os.RemoveAll(m.Dir)
		return nil, err
	}
	m.Socket = filepath.Join(m.Dir, "mariadb.sock")
	logf, logPath, err := openLog(m.Dir, "mariadb.log")
	if err != nil {
		return fail(err)
	}
	m.LogFile = logPath
	defer logf.Close()
	// --no-defaults first: the system's /etc/mysql configuration (its
	// datadir, socket and port) must not leak in.
	args := []string{"--no-defaults", "--datadir=" + filepath.Join(m.Dir, "data"),
		"--auth-root-authentication-method=normal", "--skip-test-db"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	install := exec.Command(installDB, args...)
	install.Dir = m.Dir
	install.Stdout, install.Stderr = logf, logf
	if err := install.Run(); err != nil {
		return fail(fmt.Errorf("%s: %v; %s ends with:\n%s", installDB, err, logPath, logTail(logPath)))
	}

	var lastErr error
	for range 5 {
		if m.Port, err = freePort(); err != nil {
			return fail(err)
		}
		if lastErr = m.start(); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		return fail(lastErr)
	}
	if err := m.rootOnlyOnSocket(); err != nil {
		m.shutdown()
		return nil, err
	}
	return m, nil
}

// rootOnlyOnSocket drops the password-less root accounts that
// mariadb-install-db makes for 127.0.0.1, ::1 and the host name, so that
// over TCP only the accounts a test creates can log in.
func (m *MariaDB) rootOnlyOnSocket() error {
	db, err := dbsql.Open("mysql", m.rootDSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.Query("SELECT host FROM mysql.user WHERE user = 'root' AND host <> 'localhost'")
	if err != nil {
		return fmt.Errorf("listing root accounts: %w", err)
	}
	var hosts []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return err
		}
		hosts = append(hosts, h)
	}
	rows.Close()
	for _, h := range hosts {
		if _, err := db.Exec("DROP USER 'root'@" + mysqlLiteral(h)); err != nil {
			return fmt.Errorf("dropping root@%s: %w", h, err)
		}
	}
	return nil
}

func (m *MariaDB) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		return nil
	}
	logf, _, err := openLog(m.Dir, "mariadb.log")
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{"--no-defaults", "--datadir=" + filepath.Join(m.Dir, "data"),
		"--socket=" + m.Socket, "--port=" + strconv.Itoa(m.Port), "--bind-address=" + Host,
		"--skip-name-resolve", "--pid-file=" + filepath.Join(m.Dir, "mariadbd.pid"),
		"--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M",
		"--innodb-flush-log-at-trx-commit=0", "--skip-log-bin", "--max-connections=200"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.Command(m.mariadbd, args...)
	cmd.Dir = m.Dir
	proc, err := startProcess(cmd, logf)
	if err != nil {
		return fmt.Errorf("starting mariadbd: %w", err)
	}
	err = waitReady(proc, "mariadbd", m.LogFile, func(ctx context.Context) error {
		db, err := dbsql.Open("mysql", m.rootDSN(""))
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.PingContext(ctx); err != nil {
			return err
		}
		// The socket answers before TCP does on a slow start.
		c, err := dbsql.Open("mysql", (&mysql.Config{User: "nobody", Net: "tcp", Addr: m.Addr(), AllowNativePasswords: true}).FormatDSN())
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.PingContext(ctx); err != nil && !isAccessDenied(err) {
			return err
		}
		return nil
	})
	if err != nil {
		proc.stop(syscall.SIGKILL)
		return err
	}
	m.proc = proc
	return nil
}

func isAccessDenied(err error) bool {
	me, ok := err.(*mysql.MySQLError)
	return ok && me.Number == 1045
}

// rootDSN reaches root over the Unix socket.
func (m *MariaDB) rootDSN(db string) string {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "unix", m.Socket, db
	c.MultiStatements = true
	c.Timeout = 5 * time.Second
	return c.FormatDSN()
}

// SuperDSN is root's DSN (over the Unix socket) on database db.
func (m *MariaDB) SuperDSN(db string) string {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "unix", m.Socket, db
	return c.FormatDSN()
}

// DSN is a go-sql-driver/mysql DSN for user on database db over TCP.
func (m *MariaDB) DSN(user, password, db string) string {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = user, password, "tcp", m.Addr(), db
	return c.FormatDSN()
}

// Addr is host:port.
func (m *MariaDB) Addr() string { return fmt.Sprintf("%s:%d", Host, m.Port) }

// DB opens a root connection pool on database db ("" for none), closed
// when t ends. It allows several statements per Exec.
func (m *MariaDB) DB(t testing.TB, db string) *dbsql.DB {
	t.Helper()
	d, err := dbsql.Open("mysql", m.rootDSN(db))
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return closeOnCleanup(t, d)
}

// Exec runs statements (several, separated by semicolons) as root in
// database db, failing t on error.
func (m *MariaDB) Exec(t testing.TB, db, statements string, args ...any) {
	t.Helper()
	if _, err := m.DB(t, db).Exec(statements, args...); err != nil {
		t.Fatalf("dbtest: mariadb %s: %v\n%s", db, err, statements)
	}
}

// CreateDatabase creates an empty database (utf8mb4) with a name unique in
// this binary, starting with prefix, and returns its name.
func (m *MariaDB) CreateDatabase(t testing.TB, prefix string) string {
	t.Helper()
	name := uniqueName(prefix)
	m.Exec(t, "", "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
	return name
}

// CreateReader creates an account 'name'@'%' with SELECT on database db and
// no other privilege, and returns its name and password.
func (m *MariaDB) CreateReader(t testing.TB, db string) (user, password string) {
	t.Helper()
	user, password = uniqueName("reader"), randomPassword("reader")
	m.Exec(t, "", fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY %s; GRANT SELECT ON %s.* TO '%[1]s'@'%%'",
		user, mysqlLiteral(password), db))
	return user, password
}

// mysqlLiteral quotes s for MariaDB's default sql_mode, where a backslash
// escapes too.
func mysqlLiteral(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// PID of the running mariadbd, 0 while stopped.
func (m *MariaDB) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return 0
	}
	return m.proc.pid
}

// Stop shuts the server down (SIGTERM: connections are killed, as when a
// database server is stopped under load) and waits for it to exit. The data
// stays for Restart.
func (m *MariaDB) Stop(t testing.TB) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.proc.stop(syscall.SIGTERM)
	m.proc = nil
}

// Restart starts the stopped server again on the same port with the same
// data (a no-op when it is running).
func (m *MariaDB) Restart(t testing.TB) {
	t.Helper()
	var err error
	for range 20 { // the old listener may linger a moment
		if err = m.start(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("dbtest: restarting mariadbd: %v", err)
}

func (m *MariaDB) shutdown() {
	m.mu.Lock()
	m.proc.stop(syscall.SIGTERM)
	m.proc = nil
	m.mu.Unlock()
	os.RemoveAll(m.Dir)
}
