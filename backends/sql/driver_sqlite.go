package sql

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite through modernc.org/sqlite (pure Go: no C compiler needed, about
// 3.7 MB in a stripped binary; see the README).
func init() {
	registerDialect(&dialect{
		name: DriverSQLite,
		syntax: syntax{
			parameter:          positional,
			backtickIdentifier: true,
			bracketIdentifier:  true,
			questionMarker:     true,
		},
		readOnly: "PRAGMA query_only = ON",
		open:     openSQLite,
		classify: classifySQLite,
	})
}

// openSQLite accepts a file path or a file: URI. The file is opened with
// mode=rw unless the URI says otherwise, so a mistyped path fails instead
// of creating an empty database; a file the process may only read is then
// opened read-only by SQLite itself. busy_timeout, unless given, is the
// query timeout: a writer's lock is waited for within the same budget.
func openSQLite(dsn string, s settings) (driver.Connector, target, error) {
	path, query, _ := strings.Cut(dsn, "?")
	if path == ":memory:" || strings.HasPrefix(path, "file::memory:") || strings.Contains(query, "mode=memory") {
		return nil, target{}, errors.New("dsn: an in-memory SQLite database has no users; name the application's database file")
	}
	if !strings.HasPrefix(path, "file:") {
		path = "file:" + (&url.URL{Path: path}).EscapedPath()
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, target{}, fmt.Errorf("dsn: %w", err)
	}
	if !q.Has("mode") {
		q.Set("mode", "rw")
	}
	if !q.Has("_busy_timeout") && !q.Has("_timeout") && !strings.Contains(strings.ToLower(strings.Join(q["_pragma"], ",")), "busy_timeout") {
		q.Set("_busy_timeout", strconv.FormatInt(s.queryTimeout.Milliseconds(), 10))
	}
	file, _ := url.PathUnescape(strings.TrimPrefix(path, "file:"))
	t := target{host: file}
	c, err := sqlite.NewConnector(path + "?" + q.Encode())
	if err != nil {
		return nil, t, fmt.Errorf("dsn: %w", err)
	}
	return c, t, nil
}

// classifySQLite sorts by primary result code
// (https://www.sqlite.org/rescode.html).
func classifySQLite(err error) kind {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return kindOther
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_IOERR, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_FULL, sqlite3.SQLITE_PROTOCOL:
		return kindTransient
	case sqlite3.SQLITE_ERROR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_AUTH, sqlite3.SQLITE_RANGE,
		sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_PERM:
		return kindQuery
	}
	return kindOther
}
