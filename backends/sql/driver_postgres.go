package sql

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL through pgx's database/sql adapter (already linked into a
// stock Caddy build).
func init() {
	registerDialect(&dialect{
		name: DriverPostgres,
		syntax: syntax{
			parameter:      numbered,
			nestedComments: true,
			dollarQuotes:   true,
		},
		readOnly: "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
		open:     openPostgres,
		classify: classifyPostgres,
	})
}

// openPostgres accepts a URL (postgres://user:pass@host:port/db?…) or a
// key=value DSN, as libpq does; PG* environment variables and ~/.pgpass
// fill what it leaves out.
func openPostgres(dsn string, _ settings) (driver.Connector, target, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx quotes the DSN in its parse errors; the caller redacts
		// with the raw DSN as the secret, since no password was parsed.
		var pce *pgconn.ParseConfigError
		if errors.As(err, &pce) {
			err = pgParseError(pce)
		}
		return nil, target{secrets: secretForms(dsn)}, fmt.Errorf("dsn: %w", err)
	}
	t := target{host: pgHost(cfg.Host, cfg.Port), secrets: secretForms(cfg.Password)}
	// Fallbacks repeat a host for sslmode=prefer's second try; name only
	// the other hosts of a multi-host DSN.
	others := map[string]bool{}
	for _, fb := range cfg.Fallbacks {
		if h := pgHost(fb.Host, fb.Port); h != t.host {
			others[h] = true
		}
	}
	if len(others) > 0 {
		t.host += fmt.Sprintf(" (+%d fallback hosts)", len(others))
	}
	return stdlib.GetConnector(*cfg), t, nil
}

func pgHost(host string, port uint16) string {
	if strings.HasPrefix(host, "/") {
		return host + "/.s.PGSQL." + strconv.Itoa(int(port))
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}

// classifyPostgres sorts by SQLSTATE
// (https://www.postgresql.org/docs/current/errcodes-appendix.html).
func classifyPostgres(err error) kind {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		code := pe.Code
		switch {
		case code == "28000", code == "28P01", code == "3D000":
			return kindAccount // bad account or password, no such database
		case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"),
			code == "57P01", code == "57P02", code == "57P03", code == "57014",
			code == "55P03", code == "40001", code == "40P01":
			return kindTransient // connection, resources, shutdown, cancel, locks
		case strings.HasPrefix(code, "42"), strings.HasPrefix(code, "22"),
			code == "25006", code == "0A000", code == "21000":
			return kindQuery // syntax, names, privileges, types, writes, subquery rows
		}
		return kindOther
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return kindTransient
	}
	if strings.Contains(err.Error(), "failed to encode") {
		return kindQuery // {username} compared with a column of another type
	}
	return kindOther
}

// pgParseError says what pgx's parse error says without the connection
// string: pgx masks the password in it as best it can, which a quoted
// password with an escaped quote, or an unclosed quote, defeats; and a URL
// that does not parse comes back whole inside net/url's error.
func pgParseError(pce *pgconn.ParseConfigError) error {
	text := pce.Error()
	// "cannot parse `<connection string>`: <message>[ (<cause>)]": the last
	// "`: " is at or after the end of the connection string.
	if i := strings.LastIndex(text, "`: "); i >= 0 {
		text = text[i+3:]
	} else {
		text = ""
	}
	if cause := errors.Unwrap(pce); cause != nil {
		text = strings.TrimSuffix(text, " ("+cause.Error()+")")
		var ue *url.Error
		if errors.As(cause, &ue) {
			cause = ue.Err
		}
		text += " (" + cause.Error() + ")"
	}
	return errors.New("cannot parse it: " + strings.TrimSpace(text))
}
