package sql

import (
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
)

// MySQL and MariaDB through go-sql-driver/mysql (already linked into a
// stock Caddy build).
func init() {
	registerDialect(&dialect{
		name: DriverMySQL,
		syntax: syntax{
			parameter:          positional,
			doubleQuotedString: true,
			backslashEscapes:   true,
			backtickIdentifier: true,
			hashComment:        true,
			dashCommentSpace:   true,
			questionMarker:     true,
		},
		readOnly: "SET SESSION TRANSACTION READ ONLY",
		open:     openMySQL,
		classify: classifyMySQL,
	})
}

// openMySQL accepts the driver's DSN:
// user:password@tcp(host:port)/dbname?param=value.
func openMySQL(dsn string, _ settings) (driver.Connector, target, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, target{secrets: secretForms(dsn)}, fmt.Errorf("dsn: %w", err)
	}
	if cfg.MultiStatements {
		return nil, target{secrets: secretForms(cfg.Passwd)}, errors.New("dsn: multiStatements=true is refused: each query must be one statement")
	}
	t := target{host: cfg.Addr, secrets: secretForms(cfg.Passwd)}
	if cfg.Net == "unix" {
		t.host = "unix:" + cfg.Addr
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, t, fmt.Errorf("dsn: %w", err)
	}
	return c, t, nil
}

// classifyMySQL sorts by server error number
// (https://mariadb.com/kb/en/mariadb-error-codes/); other server errors
// are taken for mistakes in the query.
func classifyMySQL(err error) kind {
	if errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, mysql.ErrPktSync) || errors.Is(err, mysql.ErrPktSyncMul) ||
		errors.Is(err, mysql.ErrBusyBuffer) || errors.Is(err, mysql.ErrMalformPkt) {
		return kindTransient
	}
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return kindOther
	}
	switch me.Number {
	case 1040, 1203, 1226, // too many connections, max_user_connections, resource limit
		1205, 1213, // lock wait timeout, deadlock
		1053, 1927, 1317, 1969, 3024, // shutdown, connection killed, interrupted, statement timeouts
		1129, 1130, 1152, 1153, 1158, 1159, 1160, 1161, // host blocked / not allowed, network errors
		2002, 2003, 2006, 2013: // client: cannot connect, gone away, lost connection
		return kindTransient
	case 1044, 1045, 1049, 1698, 1251, 1862, 1820: // access denied, unknown database, auth plugin, expired password
		return kindAccount
	}
	return kindQuery
}
