package sql

import (
	"context"
	"crypto/sha256"
	dbsql "database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// dialect is everything the backend knows about one database driver. Each
// driver lives in a file of its own (driver_*.go) that registers its
// dialect, so leaving one out of a build drops its dependency.
type dialect struct {
	name   string
	syntax syntax
	// readOnly runs on every new connection before it is used: the session
	// refuses writes whatever the account may do.
	readOnly string
	// open parses dsn without I/O and returns the connector and what may be
	// said about the target in logs.
	open func(dsn string, s settings) (driver.Connector, target, error)
	// classify sorts a driver error the generic checks did not recognise.
	classify func(err error) kind
}

// target is what logs say about where the database is, and which strings
// must never appear in them.
type target struct {
	host    string   // host:port, socket path or file; never credentials
	secrets []string // the password and anything else to redact
}

// settings are the options that shape the connections of a pool.
type settings struct {
	queryTimeout time.Duration
}

var dialects = map[string]*dialect{}

func registerDialect(d *dialect) { dialects[d.name] = d }

// kind is what an error means for the login and the log.
type kind int

const (
	kindOther     kind = iota // unknown: unavailable, ERROR
	kindTransient             // connection, timeout, busy, locked: unavailable, WARN
	kindQuery                 // the query is wrong (syntax, table, column, privilege): unavailable, ERROR naming it
	kindAccount               // the database refused the account or has no such database: unavailable, ERROR
)

// classifyErr is the generic part of the classification; the dialect's
// own codes decide the rest.
func classifyErr(d *dialect, err error) kind {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.As(err, &ne):
		return kindTransient
	case err.Error() == "sql: database is closed":
		// database/sql's unexported error: a login still running on a
		// config whose pool was released by a reload.
		return kindTransient
	}
	return d.classify(err)
}

// readOnlyConnector runs the dialect's read-only statement on every new
// connection, so that no query this backend sends can write, even through
// an account that may.
type readOnlyConnector struct {
	driver.Connector
	statement string
}

func (c readOnlyConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil || c.statement == "" {
		return conn, err
	}
	if err := execConn(ctx, conn, c.statement); err != nil {
		conn.Close()
		return nil, fmt.Errorf("making the session read-only: %w", err)
	}
	return conn, nil
}

func execConn(ctx context.Context, conn driver.Conn, stmt string) error {
	if ex, ok := conn.(driver.ExecerContext); ok {
		_, err := ex.ExecContext(ctx, stmt, nil)
		if !errors.Is(err, driver.ErrSkip) {
			return err
		}
	}
	st, err := conn.Prepare(stmt)
	if err != nil {
		return err
	}
	defer st.Close()
	//nolint:staticcheck // the context form was tried above
	_, err = st.Exec(nil)
	return err
}

// pool is one database/sql pool shared by every config with the same
// settings (driver, resolved dsn, sizes), across reloads.
type pool struct {
	db *dbsql.DB
	// down: the last use or probe failed in transport (server_up 0).
	down  atomic.Bool
	users poolUsers
}

func (p *pool) Destruct() error { return p.db.Close() }

var pools = caddy.NewUsagePool()

// poolKey identifies a pool by a digest of everything that shapes it; the
// resolved dsn (with its password) never leaves this process's memory.
func poolKey(driver, dsn string, poolSize int, lifetime, queryTimeout time.Duration) string {
	h := sha256.New()
	_ = json.NewEncoder(h).Encode([]any{driver, dsn, poolSize, lifetime, queryTimeout})
	return "sql:" + hex.EncodeToString(h.Sum(nil))
}

// redactor removes secrets from text that came from a driver: its errors
// may quote the DSN or parts of it.
type redactor struct {
	secrets []string // longest first
}

const redacted = "[REDACTED]"

// Belts and braces for DSN shapes whose password the dialect could not
// extract: key=value pairs and URL user info.
var (
	kvPassword  = regexp.MustCompile(`(?i)\b(password|passwd|pwd)\s*=\s*('(?:[^'\\]|\\.)*'|"[^"]*"|[^\s&;]+)`)
	urlUserInfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]*@`)
)

// secretForms returns s as it may appear in a driver's message: as is and
// percent-encoded the ways a URL would carry it.
func secretForms(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s, url.QueryEscape(s), url.PathEscape(s), strings.TrimPrefix(url.UserPassword("", s).String(), ":")}
}

func newRedactor(secrets ...string) redactor {
	var r redactor
	seen := map[string]bool{}
	for _, s := range secrets {
		if s != "" && !seen[s] {
			seen[s] = true
			r.secrets = append(r.secrets, s)
		}
	}
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	return r
}

// text returns s without any secret.
func (r redactor) text(s string) string {
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, redacted)
	}
	s = kvPassword.ReplaceAllString(s, "${1}="+redacted)
	return urlUserInfo.ReplaceAllString(s, "${1}"+redacted+"@")
}

// err returns an error that says what err says, without secrets, and that
// unwraps only to the context error it may carry: the driver's own error
// (whose text may hold the secret) is not reachable through it.
func (r redactor) err(err error) error {
	if err == nil {
		return nil
	}
	re := &redactedError{msg: r.text(err.Error())}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		re.cause = context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		re.cause = context.Canceled
	}
	return re
}

type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }
