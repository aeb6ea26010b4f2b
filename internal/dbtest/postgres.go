package dbtest

import (
	"context"
	dbsql "database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
)

// Postgres is the binary's private PostgreSQL server. Its superuser is
// "postgres", which authenticates with SuperPassword (scram-sha-256, like
// every account).
type Postgres struct {
	Port          int
	SuperPassword string
	Dir           string // data in Dir/data, socket and log in Dir
	LogFile       string

	bin  string // directory of initdb and postgres
	cred *syscall.Credential

	mu   sync.Mutex
	proc *process // nil while stopped
}

var (
	pgOnce   sync.Once
	pgServer *Postgres
	pgErr    error
)

// StartPostgres returns the binary's PostgreSQL server, starting it on the
// first call (initdb takes about a second, the start another). Missing
// binaries skip t (fail it under CI=true); any other start-up problem fails t,
// and every later call, at once.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	pgOnce.Do(func() {
		pgServer, pgErr = startPostgres()
		if pgServer != nil {
			register(pgServer)
		}
	})
	if pgErr != nil {
		unavailable(t, "PostgreSQL", pgErr)
	}
	return pgServer
}

// findPostgres returns the bin directory of the newest Debian PostgreSQL.
func findPostgres() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var found []string
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "postgres")) && isExecutable(filepath.Join(d, "initdb")) {
			found = append(found, d)
		}
	}
	if len(found) == 0 {
		return "", fmt.Errorf("no /usr/lib/postgresql/*/bin/{postgres,initdb}: %w", errMissing)
	}
	sort.Slice(found, func(i, j int) bool { return version(found[i]) > version(found[j]) })
	return found[0], nil
}

// version reads the major version from /usr/lib/postgresql/<v>/bin.
func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func startPostgres() (*Postgres, error) {
	bin, err := findPostgres()
	if err != nil {
		return nil, err
	}
	p := &Postgres{bin: bin, SuperPassword: randomPassword("pgsuper")}

	// PostgreSQL refuses to run as root: as root, run it as the postgres
	// account the package creates. Its directory must be reachable by that
	// account, which t.TempDir's 0700 parents are not.
	var uid, gid int = -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root and there is no postgres account (%v): %w", err, errMissing)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if p.Dir, err = os.MkdirTemp("", "dbtest-postgres-"); err != nil {
		return nil, err
	}
	fail := func(err error) (*Postgres, error) {
		os.RemoveAll(p.Dir)
		return nil, err
	}
	if err := os.Chmod(p.Dir, 0o755); err != nil {
		return fail(err)
	}
	pwfile := filepath.Join(p.Dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(p.SuperPassword+"\n"), 0o600); err != nil {
		return fail(err)
	}
	if p.cred != nil {
		for _, f := range []string{p.Dir, pwfile} {
			if err := os.Chown(f, uid, gid); err != nil {
				return fail(err)
			}
		}
	}
	logf, logPath, err := openLog(p.Dir, "postgres.log")
	if err != nil {
		return fail(err)
	}
	p.LogFile = logPath
	defer logf.Close()
	initdb := p.command("initdb", "-D", filepath.Join(p.Dir, "data"), "-U", "postgres",
		"--pwfile="+pwfile, "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Stdout, initdb.Stderr = logf, logf
	if err := initdb.Run(); err != nil {
		return fail(fmt.Errorf("initdb: %v; %s ends with:\n%s", err, logPath, logTail(logPath)))
	}
	os.Remove(pwfile)

	var lastErr error
	for range 5 { // a free port can be taken between freePort and listen
		if p.Port, err = freePort(); err != nil {
			return fail(err)
		}
		if lastErr = p.start(); lastErr == nil {
			return p, nil
		}
	}
	return fail(lastErr)
}

// command runs one of the server's programs, as the postgres account when
// this process is root.
func (p *Postgres) command(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, prog), args...)
	cmd.Dir = p.Dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + p.Dir}
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	return cmd
}

func (p *Postgres) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		return nil
	}
	logf, _, err := openLog(p.Dir, "postgres.log")
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := p.command("postgres", "-D", filepath.Join(p.Dir, "data"), "-p", strconv.Itoa(p.Port), "-k", p.Dir,
		"-c", "listen_addresses="+Host, "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=32MB")
	proc, err := startProcess(cmd, logf)
	if err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	err = waitReady(proc, "postgres", p.LogFile, func(ctx context.Context) error {
		db, err := dbsql.Open("pgx", p.DSN("postgres", p.SuperPassword, "postgres"))
		if err != nil {
			return err
		}
		defer db.Close()
		return db.PingContext(ctx)
	})
	if err != nil {
		proc.stop(syscall.SIGKILL)
		return err
	}
	p.proc = proc
	return nil
}

// DSN is a pgx connection URL for user on database db (no TLS: loopback).
func (p *Postgres) DSN(user, password, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     fmt.Sprintf("%s:%d", Host, p.Port),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// SuperDSN is the superuser's DSN on database db.
func (p *Postgres) SuperDSN(db string) string { return p.DSN("postgres", p.SuperPassword, db) }

// Addr is host:port.
func (p *Postgres) Addr() string { return fmt.Sprintf("%s:%d", Host, p.Port) }

// DB opens a superuser connection pool on database db ("" for postgres),
// closed when t ends.
func (p *Postgres) DB(t testing.TB, db string) *dbsql.DB {
	t.Helper()
	if db == "" {
		db = "postgres"
	}
	d, err := dbsql.Open("pgx", p.DSN("postgres", p.SuperPassword, db))
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return closeOnCleanup(t, d)
}

// Exec runs statements (several, separated by semicolons, when args is
// empty) as the superuser in database db, failing t on error.
func (p *Postgres) Exec(t testing.TB, db, statements string, args ...any) {
	t.Helper()
	if _, err := p.DB(t, db).Exec(statements, args...); err != nil {
		t.Fatalf("dbtest: postgres %s: %v\n%s", db, err, statements)
	}
}

// CreateDatabase creates an empty database with a name unique in this
// binary, starting with prefix, and returns its name. Unlike PostgreSQL's
// default, PUBLIC may not connect to it.
func (p *Postgres) CreateDatabase(t testing.TB, prefix string) string {
	t.Helper()
	name := uniqueName(prefix)
	p.Exec(t, "", "CREATE DATABASE "+name)
	// Only the accounts CreateReader makes for it may connect.
	p.Exec(t, "", "REVOKE ALL ON DATABASE "+name+" FROM PUBLIC")
	return name
}

// CreateReader creates an account that may read database db and nothing
// else: CONNECT on db, USAGE on its public schema, SELECT on its tables
// (those there now and those the superuser creates later). It returns the
// account's name and password.
func (p *Postgres) CreateReader(t testing.TB, db string) (user, password string) {
	t.Helper()
	user, password = uniqueName("reader"), randomPassword("reader")
	p.Exec(t, "", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD %s", user, quoteLiteral(password)))
	p.Exec(t, "", fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", db, user))
	p.Exec(t, db, fmt.Sprintf(`REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO %[1]s;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO %[1]s;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO %[1]s`, user))
	return user, password
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings
// is on: only the quote doubles).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// PID of the running postgres, 0 while stopped.
func (p *Postgres) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return 0
	}
	return p.proc.pid
}

// Stop shuts the server down (fast shutdown: open sessions are ended, as
// when a database server is stopped under load) and waits for it to exit.
// The data stays for Restart.
func (p *Postgres) Stop(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.proc.stop(syscall.SIGINT)
	p.proc = nil
}

// Restart starts the stopped server again on the same port with the same
// data (it starts it if it is running: a no-op).
func (p *Postgres) Restart(t testing.TB) {
	t.Helper()
	var err error
	for range 20 { // the old listener may linger a moment
		if err = p.start(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("dbtest: restarting postgres: %v", err)
}

func (p *Postgres) shutdown() {
	p.mu.Lock()
	p.proc.stop(syscall.SIGINT)
	p.proc = nil
	p.mu.Unlock()
	os.RemoveAll(p.Dir)
}
