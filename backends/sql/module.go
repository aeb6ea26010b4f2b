// Package sql is the SQL backend of the LoginShare handler (Caddy module
// loginshare.backends.sql): it finds the person in an application's own
// user table (PostgreSQL, MySQL/MariaDB or SQLite) with the operator's
// SELECT, checks the stored password hash and builds a backends.Identity
// from the row's columns.
//
// It only reads. Every connection is put into read-only mode before it is
// used, queries must be single SELECT statements, and nothing is ever
// written back (no rehash on login, no last-login update). The README
// recommends an account with SELECT on the needed tables only.
//
// Text the person typed is always a bound parameter, never SQL text. The
// connection pool (database/sql) is opened at provision without connecting
// and shared across config reloads by equal settings; a background probe
// reports an unreachable database or a query that does not work.
package sql

import (
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/backends/sql/passhash"
	"github.com/kayako-loginshare/caddy-loginshare/internal/background"
)

func init() {
	caddy.RegisterModule(new(SQL))
}

// SQL authenticates people against rows of an SQL database.
type SQL struct {
	backends.Base

	// Driver is the database: postgres (PostgreSQL through pgx), mysql
	// (MySQL and MariaDB through go-sql-driver/mysql) or sqlite
	// (modernc.org/sqlite). Required.
	Driver string `json:"driver,omitempty"`

	// DSN is the data source name in the driver's own syntax:
	// postgres://user:pass@host:5432/db?sslmode=verify-full (or libpq's
	// key=value form), user:pass@tcp(host:3306)/db for mysql, a file path or
	// file: URI for sqlite. Use {env.NAME} or {file./abs/path}: placeholders
	// are resolved at provision and never written back, and the password is
	// removed from every log line and error. Required.
	DSN string `json:"dsn,omitempty"`

	// Preset names the application whose schema the defaults describe:
	// generic (write your own user_query), wordpress, joomla, drupal7,
	// drupal (8+), django or whmcs (8+). A preset fills user_query,
	// groups_query, table_prefix and hashes; options given override it.
	// Default: generic.
	Preset string `json:"preset,omitempty"`

	// TablePrefix replaces {prefix} in both queries (letters, digits and _
	// only). Default: the preset's (generic: none).
	TablePrefix string `json:"table_prefix,omitempty"`

	// UserQuery is one SELECT that finds the person by what they typed:
	// {username} stands for the typed username (trimmed) and is sent as a
	// bound parameter, as often as it appears (never inside quotes). The
	// result's column names are the mapping: id, username, password (the
	// stored hash; required), email, email2, email3, … (every non-empty one,
	// primary first), first_name, last_name, full_name, phone, mobile,
	// designation, organization, disabled (1, true, t, y, yes or any other
	// text except 0, false, f, no, n, off: the account is disabled) and
	// groups (a comma- or newline-separated list); rename with AS. Any other
	// column is an error at login. 0 rows: unknown user; 2 or more: an
	// ambiguous configuration (ERROR). Required with the generic preset.
	UserQuery string `json:"user_query,omitempty"`

	// GroupsQuery is an optional SELECT whose first column is one group
	// name per row; {id} is the user row's id and {username} the canonical
	// username, both bound parameters. Groups have no DN. Default: the
	// preset's (generic: none).
	GroupsQuery string `json:"groups_query,omitempty"`

	// Hashes are the accepted stored formats (bcrypt, argon2id, argon2i,
	// wordpress, phpass, drupal7, sha512crypt, sha256crypt, md5crypt,
	// django, md5_salt_after, md5_salt_before, md5, sha1, plain); a stored
	// value in none of them answers unavailable with an ERROR, never "wrong
	// password". plain gets a WARN. Default: the preset's (generic: bcrypt
	// argon2id argon2i sha512crypt sha256crypt).
	Hashes []string `json:"hashes,omitempty"`

	// PoolSize is the number of open connections (MaxOpenConns). Default: 8.
	PoolSize int `json:"pool_size,omitempty"`

	// QueryTimeout bounds each query (and the connection it needs), within
	// the request's own deadline. Default: 5s.
	QueryTimeout caddy.Duration `json:"query_timeout,omitempty"`

	// ConnMaxLifetime closes connections older than this. Default: 30m.
	ConnMaxLifetime caddy.Duration `json:"conn_max_lifetime,omitempty"`

	logger   *zap.Logger
	dialect  *dialect
	target   target
	redact   redactor
	userQ    *compiledQuery
	groupsQ  *compiledQuery
	accepted []passhash.Format
	dummy    string // verified for unknown users, for the time it takes
	dummyF   []passhash.Format
	trimPw   bool
	// emailLogin and groupValues: see preset.
	emailLogin  bool
	groupValues func(string) ([]string, error)
	db          *dbsql.DB
	shared      *pool
	poolKey     string
	timeout     time.Duration
	released    atomic.Bool
	bg          background.Probe
	// probeAfter: 0 means probeDelay; negative disables the probe (tests).
	probeAfter time.Duration
}

// CaddyModule returns the Caddy module information.
func (*SQL) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "loginshare.backends.sql",
		New: func() caddy.Module { return new(SQL) },
	}
}

// probeDelay lets `caddy validate` and `caddy adapt --validate`, which
// cancel the context right after provisioning, finish before the probe
// connects.
var probeDelay = 2 * time.Second

// Provision applies the preset and defaults, checks every option, resolves
// the DSN and opens the shared pool without connecting.
func (s *SQL) Provision(ctx caddy.Context) error {
	if err := s.provision(ctx, ctx.Logger()); err != nil {
		return err
	}
	return registerMetrics(ctx)
}

func (s *SQL) provision(ctx context.Context, logger *zap.Logger) error {
	s.logger = logger
	if s.Preset == "" {
		s.Preset = PresetGeneric
	}
	if err := checkPreset(s.Preset); err != nil {
		return err
	}
	p := presets[s.Preset]
	if err := checkDriver(s.Driver); err != nil {
		return err
	}
	s.dialect = dialects[s.Driver]
	if err := checkDSNText(s.DSN); err != nil {
		return err
	}
	if s.TablePrefix == "" {
		s.TablePrefix = p.prefix
	}
	if err := checkTablePrefix(s.TablePrefix); err != nil {
		return err
	}

	userQuery, groupsQuery := s.UserQuery, s.GroupsQuery
	if userQuery == "" {
		userQuery = p.userQuery
	}
	if groupsQuery == "" {
		groupsQuery = p.groupsQuery
	}
	if err := checkPrefixUsed(s.TablePrefix, userQuery, groupsQuery); err != nil {
		return err
	}
	if err := checkPresetPrefix(s.Preset, s.TablePrefix, userQuery, groupsQuery); err != nil {
		return err
	}
	var err error
	if s.userQ, s.groupsQ, err = checkQueries(s.Driver, userQuery, groupsQuery, s.TablePrefix); err != nil {
		return err
	}
	s.accepted = p.hashes
	if len(s.Hashes) > 0 {
		if s.accepted, err = checkHashes(s.Hashes); err != nil {
			return err
		}
	}
	if len(s.accepted) == 0 {
		return errors.New("hashes: no accepted format")
	}
	for _, f := range s.accepted {
		if f == passhash.Plain {
			s.logger.Warn("hashes lists plain: passwords stored as clear text are accepted; anyone who can read the table can log in as anyone")
		}
	}
	// The dummy costs what the application's own hashes cost: its main
	// format when accepted, else the first accepted one.
	dummyFormat := s.accepted[0]
	for _, f := range s.accepted {
		if f == p.main {
			dummyFormat = f
		}
	}
	s.dummy, s.dummyF = passhash.Dummy(dummyFormat), []passhash.Format{dummyFormat}
	s.trimPw = p.trimPassword
	s.emailLogin = p.emailLogin
	s.groupValues = p.groupValues

	if err := checkPositive("pool_size", s.PoolSize); err != nil {
		return err
	}
	for opt, d := range map[string]caddy.Duration{"query_timeout": s.QueryTimeout, "conn_max_lifetime": s.ConnMaxLifetime} {
		if err := checkDuration(opt, d); err != nil {
			return err
		}
	}
	if s.PoolSize == 0 {
		s.PoolSize = defaultPoolSize
	}
	if s.QueryTimeout == 0 {
		s.QueryTimeout = caddy.Duration(defaultQueryTimeout)
	}
	if s.ConnMaxLifetime == 0 {
		s.ConnMaxLifetime = caddy.Duration(defaultConnMaxLifetime)
	}
	s.timeout = time.Duration(s.QueryTimeout)

	// A DSN never starts or ends with white space; a file's stray
	// newline would otherwise become part of the database name.
	dsn := strings.TrimSpace(caddy.NewReplacer().ReplaceKnown(s.DSN, ""))
	if dsn == "" {
		return errors.New("dsn is empty after resolving placeholders (is the environment variable or file there?)")
	}
	connector, t, err := s.dialect.open(dsn, settings{queryTimeout: s.timeout})
	s.target = t
	s.redact = newRedactor(append(t.secrets, secretForms(dsn)...)...)
	if err != nil {
		return fmt.Errorf("%s: %s", s.Driver, s.redact.text(err.Error()))
	}

	s.poolKey = poolKey(s.Driver, dsn, s.PoolSize, time.Duration(s.ConnMaxLifetime), s.timeout)
	val, _, err := pools.LoadOrNew(s.poolKey, func() (caddy.Destructor, error) {
		db := dbsql.OpenDB(readOnlyConnector{Connector: connector, statement: s.dialect.readOnly})
		db.SetMaxOpenConns(s.PoolSize)
		db.SetMaxIdleConns(s.PoolSize)
		db.SetConnMaxLifetime(time.Duration(s.ConnMaxLifetime))
		return &pool{db: db}, nil
	})
	if err != nil {
		return err
	}
	s.shared = val.(*pool)
	s.db = s.shared.db
	s.shared.addUser(s)
	s.logger.Info("SQL backend ready",
		zap.String("driver", s.Driver), zap.String("host", s.target.host),
		zap.String("preset", s.Preset), zap.Strings("hashes", formatNames(s.accepted)))

	if s.probeAfter < 0 {
		return nil
	}
	delay := probeDelay
	if s.probeAfter > 0 {
		delay = s.probeAfter
	}
	s.bg.Start(ctx, delay, s.probe)
	return nil
}

// Validate is part of caddy.Validator; Provision already checked everything.
func (s *SQL) Validate() error { return nil }

// Cleanup stops the probe and releases this config's share of the pool.
// It tolerates a half-provisioned module.
func (s *SQL) Cleanup() error {
	s.bg.Stop()
	// s.db stays: a login still running on this config finds the pool
	// closed (when no other config shares it) and answers unavailable.
	if s.db != nil && s.released.CompareAndSwap(false, true) {
		s.shared.removeUser(s)
		_, err := pools.Delete(s.poolKey)
		return err
	}
	return nil
}

// probe checks, once and in the background, that the database answers and
// that user_query runs (with an empty username, reading no row): what an
// operator must fix is logged before the first person tries to log in.
func (s *SQL) probe(ctx context.Context) {
	stage, err := s.check(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		if stage == "ping" {
			if classifyErr(s.dialect, err) == kindAccount {
				s.logger.Error("SQL database check failed: the database refused the account or database in dsn", s.fields(s.redact.err(err))...)
			} else {
				s.logger.Warn("SQL database check failed", s.fields(s.redact.err(err))...)
			}
			return
		}
		s.queryError(s.userQ, err)
		return
	}
	s.logger.Info("SQL database reachable", zap.String("driver", s.Driver), zap.String("host", s.target.host))
}

func formatNames(fs []passhash.Format) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	return out
}

// Interface guards.
var (
	_ caddy.Module       = (*SQL)(nil)
	_ caddy.Provisioner  = (*SQL)(nil)
	_ caddy.Validator    = (*SQL)(nil)
	_ caddy.CleanerUpper = (*SQL)(nil)
	_ backends.Backend   = (*SQL)(nil)
	_ backends.Namer     = (*SQL)(nil)
	_ backends.Prober    = (*SQL)(nil)
)
