package sql

import (
	"context"
	"crypto/md5"
	dbsql "database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/dbtest"
)

var scratch string // this binary's directory for SQLite files and Caddy's state

func TestMain(m *testing.M) {
	var err error
	if scratch, err = os.MkdirTemp("", "loginshare-sql-"); err != nil {
		panic(err)
	}
	code := m.Run()
	stopCaddyForGood()
	dbtest.StopAll()
	if code == 0 {
		if err := goleak.Find(leakOptions()...); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.RemoveAll(scratch)
	os.Exit(code)
}

// Password is the password of every fixture person.
const Password = "s3cret Pässword!"

// provision provisions s with an observed DEBUG logger and no probe
// (unless s.probeAfter is set); Cleanup runs when t ends.
func provision(t testing.TB, s *SQL) (*SQL, *observer.ObservedLogs) {
	t.Helper()
	logs, err := tryProvision(t, s)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	return s, logs
}

func tryProvision(t testing.TB, s *SQL) (*observer.ObservedLogs, error) {
	core, logs := observer.New(zapcore.DebugLevel)
	if s.probeAfter == 0 {
		s.probeAfter = -1
	}
	ctx, cancel := context.WithCancel(context.Background())
	err := s.provision(ctx, zap.New(core))
	t.Cleanup(func() {
		cancel()
		if err := s.Cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return logs, err
}

// login authenticates username with password under a 30 s deadline.
func login(s *SQL, username, password string) (backends.Identity, error) {
	return loginCtx(context.Background(), s, username, password)
}

func loginCtx(ctx context.Context, s *SQL, username, password string) (backends.Identity, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return s.Authenticate(ctx, backends.Credentials{Username: username, Password: password, IPAddress: "192.0.2.1"})
}

// logText is every observed line with its fields, for "never logged"
// searches.
func logText(logs *observer.ObservedLogs) string {
	var b strings.Builder
	for _, e := range logs.All() {
		b.WriteString(entryText(e))
	}
	return b.String()
}

func entryText(e observer.LoggedEntry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", e.Level, e.Message)
	for k, v := range e.ContextMap() {
		fmt.Fprintf(&b, " %s=%v", k, v)
	}
	b.WriteByte('\n')
	return b.String()
}

// levelLines returns the messages logged at level.
func levelLines(logs *observer.ObservedLogs, level zapcore.Level) []observer.LoggedEntry {
	return logs.FilterLevelExact(level).All()
}

// --- hashes made by the applications' own code where it is here ---

var (
	hashMu    sync.Mutex
	hashCache = map[string]string{}
)

// phpHash evaluates a PHP expression that hashes $p (the password): PHP's
// password_hash and crypt are what applications write with. Without PHP
// (CI installs php-cli) bcrypt comes from x/crypto and the others skip,
// or fail under CI=true.
func phpHash(t testing.TB, expr, password string) string {
	t.Helper()
	key := expr + "\x00" + password
	hashMu.Lock()
	defer hashMu.Unlock()
	if h, ok := hashCache[key]; ok {
		return h
	}
	php, err := exec.LookPath("php")
	if err != nil {
		if strings.HasPrefix(expr, "password_hash($p, PASSWORD_BCRYPT") {
			h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			hashCache[key] = string(h)
			return string(h)
		}
		msg := "php is not installed (apt-get install php-cli): cannot make " + expr
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cmd := exec.Command(php, "-r", `$p = stream_get_contents(STDIN); echo `+expr+`;`)
	cmd.Stdin = strings.NewReader(password)
	out, err := cmd.Output()
	if err != nil || len(out) == 0 {
		t.Fatalf("php %s: %v %s", expr, err, out)
	}
	hashCache[key] = string(out)
	return string(out)
}

func bcryptOf(t testing.TB, pw string) string {
	return phpHash(t, `password_hash($p, PASSWORD_BCRYPT, ["cost" => 4])`, pw)
}

func argon2idOf(t testing.TB, pw string) string {
	return phpHash(t, `password_hash($p, PASSWORD_ARGON2ID, ["memory_cost" => 1024, "time_cost" => 1, "threads" => 1])`, pw)
}

func sha512cryptOf(t testing.TB, pw string) string {
	return phpHash(t, `crypt($p, '$6$rounds=1000$'.substr(str_replace('+', '.', base64_encode(random_bytes(12))), 0, 16).'$')`, pw)
}

func md5Of(pw string) string {
	h := md5.Sum([]byte(pw))
	return hex.EncodeToString(h[:])
}

// --- the databases ---

// database is one real database with the fixture loaded, and what a test
// may do to it.
type database struct {
	name     string // postgres, mariadb, sqlite
	driver   string
	dsn      string // the read-only account's (sqlite: the file)
	password string // in dsn, for leak searches ("" for sqlite)
	host     string
	ownerDSN string // the superuser's (sqlite: the file)
	// owner opens a pool as the superuser, closed when t ends.
	owner func(t testing.TB) *dbsql.DB
	// sleepWhere is a WHERE condition that takes 10 s ("" for sqlite).
	sleepWhere string
	// stop and restart the server (nil for sqlite).
	stop, restart func(t testing.TB)
}

// fixture rows: every person's password is Password unless said.
type person struct {
	id                           int
	login, email, emailAlt, pass string
	first, last, display         string
	phone, mobile, title, org    string
	disabled                     bool
	roles                        string
	null                         bool // every optional column NULL
}

func people(t testing.TB) []person {
	return []person{
		{id: 1, login: "alice", email: "alice@example.org", emailAlt: "ALICE@example.org", pass: bcryptOf(t, Password),
			first: "Alice", last: "Anders", display: "Alice Anders", phone: "+1 555 0100", mobile: "+1 555 0199",
			title: "Engineer", org: "Example Org"},
		{id: 2, login: "bob", email: "bob@example.org", emailAlt: "bob.alt@example.org", pass: sha512cryptOf(t, Password),
			first: "Bob", last: "Brown", roles: "editors, writers\nreaders,,Editors"},
		{id: 3, login: "carol", email: "carol@example.org", pass: bcryptOf(t, Password), disabled: true},
		{id: 4, login: "dave", email: "dave@example.org", pass: md5Of(Password)}, // md5: not accepted by generic
		{id: 5, login: "erin", pass: bcryptOf(t, Password), null: true},
		{id: 6, login: "twin1", email: "twin@example.org", pass: bcryptOf(t, Password)},
		{id: 7, login: "twin2", email: "twin@example.org", pass: bcryptOf(t, Password)},
		{id: 8, login: "frank", email: "frank@example.org", pass: argon2idOf(t, Password)},
		{id: 9, login: "nopass", email: "nopass@example.org", null: true},
		{id: 10, login: "zoë.ångström", email: "zoe@example.org", pass: bcryptOf(t, Password), display: "Zoë Ångström 山田"},
	}
}

// Groups: alice in staff and customers, bob in customers, erin in none.
const groupsDML = `INSERT INTO usergroups (id, name) VALUES (1, 'staff'), (2, 'customers'), (3, 'vip');
INSERT INTO memberships (user_id, group_id) VALUES (1, 1), (1, 2), (2, 2)`

func sqlText(v string, null bool) string {
	if null || v == "" {
		return "NULL"
	}
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// fixtureDML inserts the people (hashes have no quote or backslash).
func fixtureDML(t testing.TB) string {
	var rows []string
	for _, p := range people(t) {
		dis := "FALSE"
		if p.disabled {
			dis = "TRUE"
		}
		rows = append(rows, fmt.Sprintf("(%d, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
			p.id, sqlText(p.login, false), sqlText(p.email, p.null), sqlText(p.emailAlt, p.null), sqlText(p.pass, false),
			sqlText(p.first, p.null), sqlText(p.last, p.null), sqlText(p.display, p.null), sqlText(p.phone, p.null),
			sqlText(p.mobile, p.null), sqlText(p.title, p.null), sqlText(p.org, p.null), dis, sqlText(p.roles, p.null)))
	}
	return `INSERT INTO people (id, login, email, email_alt, pass, first_name, last_name, display_name, phone, mobile, title, company, is_disabled, roles) VALUES
` + strings.Join(rows, ",\n")
}

const (
	// userQuery is the generic query every database test uses: login by
	// username or e-mail, every mapped column.
	userQuery = `SELECT id, login AS username, pass AS password, email, email_alt AS email2,
	first_name, last_name, display_name AS full_name, phone, mobile, title AS designation,
	company AS organization, is_disabled AS disabled, roles AS groups
FROM people WHERE login = {username} OR email = {username}`
	groupsQuery = `SELECT g.name FROM memberships m JOIN usergroups g ON g.id = m.group_id WHERE m.user_id = {id} ORDER BY g.name`
)

var (
	dbMu    sync.Mutex
	dbCache = map[string]*database{}
)

// openDatabase returns the named database with the fixture loaded (once
// per binary); the servers are shared, so tests must not change it.
func openDatabase(t testing.TB, name string) *database {
	t.Helper()
	dbMu.Lock()
	defer dbMu.Unlock()
	if d, ok := dbCache[name]; ok {
		return d
	}
	var d *database
	switch name {
	case "postgres":
		d = postgresFixture(t)
	case "mariadb":
		d = mariadbFixture(t)
	case "sqlite":
		d = sqliteFixture(t)
	default:
		t.Fatalf("no database %q", name)
	}
	dbCache[name] = d
	return d
}

var databaseNames = []string{"postgres", "mariadb", "sqlite"}

// eachDatabase runs f as a subtest per database.
func eachDatabase(t *testing.T, f func(t *testing.T, d *database)) {
	for _, name := range databaseNames {
		t.Run(name, func(t *testing.T) { f(t, openDatabase(t, name)) })
	}
}

func postgresFixture(t testing.TB) *database {
	p := dbtest.StartPostgres(t)
	db := p.CreateDatabase(t, "fixture")
	p.Exec(t, db, `CREATE TABLE people (
	id integer PRIMARY KEY, login text NOT NULL UNIQUE, email text, email_alt text, pass text,
	first_name text, last_name text, display_name text, phone text, mobile text, title text, company text,
	is_disabled boolean NOT NULL DEFAULT false, roles text);
CREATE TABLE usergroups (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE memberships (user_id integer NOT NULL, group_id integer NOT NULL)`)
	p.Exec(t, db, fixtureDML(t))
	p.Exec(t, db, groupsDML)
	user, pw := p.CreateReader(t, db)
	return &database{
		name: "postgres", driver: DriverPostgres, dsn: p.DSN(user, pw, db), password: pw, host: p.Addr(),
		ownerDSN:   p.SuperDSN(db),
		owner:      func(t testing.TB) *dbsql.DB { return p.DB(t, db) },
		sleepWhere: "(SELECT pg_sleep(10)) IS NOT NULL",
		stop:       p.Stop, restart: p.Restart,
	}
}

func mariadbFixture(t testing.TB) *database {
	m := dbtest.StartMariaDB(t)
	db := m.CreateDatabase(t, "fixture")
	m.Exec(t, db, `CREATE TABLE people (
	id int PRIMARY KEY, login varchar(64) NOT NULL UNIQUE, email varchar(128), email_alt varchar(128), pass varchar(255),
	first_name varchar(64), last_name varchar(64), display_name varchar(128), phone varchar(32), mobile varchar(32),
	title varchar(64), company varchar(64), is_disabled tinyint(1) NOT NULL DEFAULT 0, roles text);
CREATE TABLE usergroups (id int PRIMARY KEY, name varchar(64) NOT NULL);
CREATE TABLE memberships (user_id int NOT NULL, group_id int NOT NULL)`)
	m.Exec(t, db, fixtureDML(t))
	m.Exec(t, db, groupsDML)
	user, pw := m.CreateReader(t, db)
	return &database{
		name: "mariadb", driver: DriverMySQL, dsn: m.DSN(user, pw, db), password: pw, host: m.Addr(),
		ownerDSN:   m.SuperDSN(db),
		owner:      func(t testing.TB) *dbsql.DB { return m.DB(t, db) },
		sleepWhere: "SLEEP(10) = 0",
		stop:       m.Stop, restart: m.Restart,
	}
}

func sqliteFixture(t testing.TB) *database {
	file := filepath.Join(scratch, "fixture.db")
	owner := func(t testing.TB) *dbsql.DB {
		db, err := dbsql.Open("sqlite", file)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	exec := func(t testing.TB, stmts string) {
		if _, err := owner(t).Exec(stmts); err != nil {
			t.Fatalf("sqlite: %v\n%s", err, stmts)
		}
	}
	exec(t, `CREATE TABLE people (
	id INTEGER PRIMARY KEY, login TEXT NOT NULL UNIQUE, email TEXT, email_alt TEXT, pass TEXT,
	first_name TEXT, last_name TEXT, display_name TEXT, phone TEXT, mobile TEXT, title TEXT, company TEXT,
	is_disabled INTEGER NOT NULL DEFAULT 0, roles TEXT);
CREATE TABLE usergroups (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE memberships (user_id INTEGER NOT NULL, group_id INTEGER NOT NULL)`)
	exec(t, fixtureDML(t))
	exec(t, groupsDML)
	return &database{name: "sqlite", driver: DriverSQLite, dsn: file, host: file, ownerDSN: file, owner: owner}
}

// exec runs statements as the owner.
func (d *database) exec(t testing.TB, stmts string) {
	t.Helper()
	if _, err := d.owner(t).Exec(stmts); err != nil {
		t.Fatalf("%s: %v\n%s", d.name, err, stmts)
	}
}

// count counts a table's rows.
func (d *database) count(t testing.TB, table string) int {
	t.Helper()
	var n int
	if err := d.owner(t).QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// backend is the generic configuration against d.
func (d *database) backend() *SQL {
	return &SQL{Driver: d.driver, DSN: d.dsn, UserQuery: userQuery, GroupsQuery: groupsQuery,
		QueryTimeout: caddyDuration(3 * time.Second)}
}

// leakOptions ignores what Caddy leaves running after Stop: the storage
// lock refresher of its cleaning job and the file log writer's rotation
// worker. Everything of this package (pools, probes) must be gone.
func leakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh"),
		goleak.IgnoreAnyFunction("github.com/DeRuina/timberjack.(*Logger).millRun"),
	}
}
