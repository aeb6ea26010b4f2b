package sql

import (
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.uber.org/zap"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/backends/sql/passhash"
)

// field is what one result column of user_query means.
type field int

const (
	fieldID field = iota
	fieldUsername
	fieldPassword
	fieldEmail // email, email2, email3, …: ordered by columns.emails
	fieldFirstName
	fieldLastName
	fieldFullName
	fieldPhone
	fieldMobile
	fieldDesignation
	fieldOrganization
	fieldDisabled
	fieldGroups
)

var fieldNames = map[string]field{
	"id": fieldID, "username": fieldUsername, "password": fieldPassword, "email": fieldEmail,
	"first_name": fieldFirstName, "last_name": fieldLastName, "full_name": fieldFullName,
	"phone": fieldPhone, "mobile": fieldMobile, "designation": fieldDesignation,
	"organization": fieldOrganization, "disabled": fieldDisabled, "groups": fieldGroups,
}

// columns maps the result columns of one user_query to fields.
type columns struct {
	field  []field  // per column
	names  []string // per column, as the query named it
	emails []int    // column indexes of email, email2, …, primary first
	has    map[field]bool
}

// errColumns marks a user_query whose result columns are not the mapping:
// a configuration mistake the operator must fix.
var errColumns = errors.New("result columns")

// mapColumns reads the column names (case-insensitively: PostgreSQL folds
// unquoted aliases to lower case, MySQL keeps them as written).
func mapColumns(names []string) (*columns, error) {
	c := &columns{field: make([]field, len(names)), names: names, has: map[field]bool{}}
	seen := map[string]bool{}
	type numbered struct{ n, col int }
	var emails []numbered
	for i, raw := range names {
		name := strings.ToLower(strings.TrimSpace(raw))
		if seen[name] {
			return nil, fmt.Errorf("%w: column %q appears twice", errColumns, raw)
		}
		seen[name] = true
		if f, ok := fieldNames[name]; ok {
			c.field[i] = f
			c.has[f] = true
			if f == fieldEmail {
				emails = append(emails, numbered{1, i})
			}
			continue
		}
		if n, ok := emailNumber(name); ok {
			c.field[i] = fieldEmail
			c.has[fieldEmail] = true
			emails = append(emails, numbered{n, i})
			continue
		}
		return nil, fmt.Errorf("%w: unknown column %q (the columns are the mapping: id, username, password, email, email2…, first_name, last_name, full_name, phone, mobile, designation, organization, disabled, groups; rename with AS)", errColumns, raw)
	}
	if !c.has[fieldPassword] {
		return nil, fmt.Errorf("%w: no password column (name the stored hash's column AS password)", errColumns)
	}
	// email comes first, then email1, email2, … by number.
	sort.SliceStable(emails, func(a, b int) bool { return emails[a].n < emails[b].n })
	for _, e := range emails {
		c.emails = append(c.emails, e.col)
	}
	return c, nil
}

// emailNumber recognises email2, email3, … (and email1, which sorts
// before email2 but after email).
func emailNumber(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "email")
	if !ok || rest == "" || rest[0] == '0' {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// row is one user row as text (NULL is empty), and as the driver gave it
// (to bind id back in groups_query with its own type).
type row struct {
	cols *columns
	vals []string
	raw  []any
}

func (r row) rawID() any {
	for i, cf := range r.cols.field {
		if cf == fieldID {
			return r.raw[i]
		}
	}
	return nil
}

func (r row) get(f field) string {
	for i, cf := range r.cols.field {
		if cf == f {
			return r.vals[i]
		}
	}
	return ""
}

// Authenticate finds the row for c.Username, calls the handler's gate with
// the row's canonical username, verifies c.Password against the stored hash
// and reads the groups.
//
// The canonical username is the row's username column; when the query has
// none (or it is NULL or blank), the row's first e-mail address; failing
// both, the typed username, trimmed. Every error returned after the row was
// found comes with Identity{Username: canonical}.
//
// An unknown username costs one verification of a dummy hash, like a
// known one. A disabled account is answered account_disabled only after its
// password was verified; a wrong password answers invalid_credentials
// whether or not the account is disabled, so neither answer tells a guesser
// more than the other.
func (s *SQL) Authenticate(ctx context.Context, c backends.Credentials) (backends.Identity, error) {
	if s.db == nil {
		return backends.Identity{}, backends.Errorf(backends.Unavailable, "sql: not provisioned")
	}
	typed := strings.TrimSpace(c.Username)
	if typed == "" {
		return backends.Identity{}, backends.Errorf(backends.UnknownUser, "sql: empty username")
	}

	found, err := s.findUser(ctx, typed)
	if err != nil {
		return backends.Identity{}, err
	}
	if found == nil {
		backends.Trace(ctx, "sql", "no row for this username: verifying a dummy hash, as for a wrong password", "username", typed)
		_, _, _ = passhash.Verify(s.dummy, c.Password, s.dummyF)
		if ce := s.logger.Check(zap.DebugLevel, "no SQL row for this username"); ce != nil {
			ce.Write(zap.String("username", typed))
		}
		return backends.Identity{}, backends.Errorf(backends.UnknownUser, "sql: no row for %q", typed)
	}

	id := s.identity(*found, typed)
	known := backends.Identity{Username: id.Username}
	if err := backends.Gate(ctx, id.Username); err != nil {
		return known, err
	}

	password := c.Password
	if s.trimPw {
		password = phpTrim(password)
	}
	stored := found.get(fieldPassword)
	if !acceptsPlain(s.accepted) {
		stored = strings.TrimSpace(stored) // CHAR(n) columns pad; no hash has spaces
	}
	if stored == "" {
		backends.Trace(ctx, "sql", "the row has no stored password")
		_, _, _ = passhash.Verify(s.dummy, password, s.dummyF)
		if ce := s.logger.Check(zap.DebugLevel, "SQL account has no stored password"); ce != nil {
			ce.Write(zap.String("username", id.Username))
		}
		return known, backends.Errorf(backends.InvalidCredentials, "sql: %q has no stored password", id.Username)
	}
	if backends.Tracing(ctx) {
		looks := "no known format"
		if f, ok := passhash.Identify(stored, passhash.Formats()); ok {
			looks = string(f)
		}
		kv := []string{"format", looks, "accepted", strings.Join(formatNames(s.accepted), " ")}
		if s.trimPw {
			kv = append(kv, "password", "trimmed first, as the application does")
		}
		backends.Trace(ctx, "sql", "stored hash format identified", kv...)
	}
	ok, format, err := passhash.Verify(stored, password, s.accepted)
	if err != nil {
		backends.Trace(ctx, "sql", "stored hash cannot be verified", "error", err.Error())
		return known, s.hashError(id.Username, stored, err)
	}
	if !ok {
		backends.Trace(ctx, "sql", "wrong password", "format", string(format))
		if ce := s.logger.Check(zap.DebugLevel, "wrong password for SQL account"); ce != nil {
			ce.Write(zap.String("username", id.Username), zap.String("format", string(format)))
		}
		return known, backends.Errorf(backends.InvalidCredentials, "sql: wrong password for %q", id.Username)
	}
	backends.Trace(ctx, "sql", "password matches", "format", string(format))
	if disabled(found.get(fieldDisabled)) {
		backends.Trace(ctx, "sql", "account disabled", "disabled", found.get(fieldDisabled))
		return known, backends.Errorf(backends.AccountDisabled, "sql: %q is disabled", id.Username)
	}

	if s.groupsQ != nil {
		names, err := s.queryGroups(ctx, found.rawID(), id.Username)
		if err != nil {
			return known, err
		}
		id.Groups = mergeGroups(id.Groups, names)
		backends.Trace(ctx, "sql", "groups found", "query", s.groupsQ.option, "sql", s.groupsQ.text, "groups", groupList(id.Groups))
	} else if len(id.Groups) > 0 {
		backends.Trace(ctx, "sql", "groups found", "column", "groups", "groups", groupList(id.Groups))
	}
	if ce := s.logger.Check(zap.DebugLevel, "SQL account authenticated"); ce != nil {
		ce.Write(zap.String("username", id.Username), zap.String("format", string(format)),
			zap.Int("groups", len(id.Groups)))
	}
	return id, nil
}

// maxCandidates bounds the rows read for one login: more than one is
// ambiguous unless the e-mail rule picks one, and more than this many is
// ambiguous whatever they hold.
const maxCandidates = 16

// findUser runs user_query: nil for no row, an error for two or more that
// the e-mail rule (presets with emailLogin) does not settle.
func (s *SQL) findUser(ctx context.Context, typed string) (*row, error) {
	qctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	q := s.userQ
	rows, err := s.query(qctx, q, map[string]any{"username": typed})
	if err != nil {
		return nil, s.failed(ctx, qctx, q, err)
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return nil, s.failed(ctx, qctx, q, err)
	}
	cols, err := mapColumns(names)
	if err != nil {
		backends.Trace(ctx, "sql", "user_query columns are not the mapping", "server", s.server(), "error", err.Error())
		return nil, s.queryError(q, err)
	}
	var found []*row
	for rows.Next() {
		if len(found) == maxCandidates {
			break
		}
		raw, vals, err := scanRow(rows, len(names))
		if err != nil {
			return nil, s.failed(ctx, qctx, q, err)
		}
		found = append(found, &row{cols: cols, vals: vals, raw: raw})
	}
	if err := rows.Err(); err != nil {
		return nil, s.failed(ctx, qctx, q, err)
	}
	s.markUp()
	backends.Trace(ctx, "sql", "user query run", "server", s.server(), "query", q.option, "sql", q.text,
		"username", typed, "rows", strconv.Itoa(len(found)))
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		s.traceRow(ctx, "row found", found[0])
		return found[0], nil
	}
	if s.emailLogin && strings.Contains(typed, "@") {
		if r, how := byEmail(found, typed); r != nil {
			s.traceRow(ctx, "row found: its e-mail is what was typed ("+how+"), which wins over a username match", r)
			return r, nil
		}
	}
	s.logger.Error("user_query returned more than one row for one username: make it select exactly one person (refusing to pick one)",
		zap.String("query", q.option), zap.String("sql", q.source), zap.String("username", typed), zap.Int("rows", len(found)))
	backends.Trace(ctx, "sql", "several rows: ambiguous (refusing to pick one)", "rows", strconv.Itoa(len(found)))
	return nil, backends.Errorf(backends.AmbiguousUser, "sql: user_query returned several rows for %q", typed)
}

// byEmail returns the one row with an e-mail equal to typed: exactly, or
// failing that ignoring case. Several such rows settle nothing.
func byEmail(rows []*row, typed string) (*row, string) {
	for _, cmp := range []struct {
		how string
		eq  func(a, b string) bool
	}{
		{"exactly", func(a, b string) bool { return a == b }},
		{"ignoring case", strings.EqualFold},
	} {
		var match *row
		n := 0
		for _, r := range rows {
			for _, col := range r.cols.emails {
				if cmp.eq(strings.TrimSpace(r.vals[col]), typed) {
					match = r
					n++
					break
				}
			}
		}
		if n == 1 {
			return match, cmp.how
		}
		if n > 1 {
			return nil, ""
		}
	}
	return nil, ""
}

// traceRow records a row's columns, except the password.
func (s *SQL) traceRow(ctx context.Context, what string, r *row) {
	if !backends.Tracing(ctx) {
		return
	}
	kv := []string{"server", s.server()}
	for i, f := range r.cols.field {
		if f == fieldPassword {
			continue
		}
		kv = append(kv, r.cols.names[i], r.vals[i])
	}
	backends.Trace(ctx, "sql", what, kv...)
}

// queryGroups runs groups_query and returns the first column of each row.
func (s *SQL) queryGroups(ctx context.Context, id any, username string) ([]string, error) {
	qctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	q := s.groupsQ
	rows, err := s.query(qctx, q, map[string]any{"id": id, "username": username})
	if err != nil {
		return nil, s.failed(ctx, qctx, q, err)
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return nil, s.failed(ctx, qctx, q, err)
	}
	var groups []string
	for rows.Next() {
		_, vals, err := scanRow(rows, len(names))
		if err != nil {
			return nil, s.failed(ctx, qctx, q, err)
		}
		if s.groupValues == nil {
			groups = append(groups, vals[0])
			continue
		}
		names, err := s.groupValues(vals[0])
		if err != nil {
			// As the application reads it: a value it cannot read gives no
			// groups. The value is not logged (it is the user's data).
			s.logger.Warn("a groups_query value cannot be read; it gives no groups",
				zap.String("username", username), zap.String("preset", s.Preset), zap.String("reason", err.Error()))
			backends.Trace(ctx, "sql", "groups value unreadable: no groups from it", "error", err.Error())
			continue
		}
		groups = append(groups, names...)
	}
	if err := rows.Err(); err != nil {
		return nil, s.failed(ctx, qctx, q, err)
	}
	s.markUp()
	return groups, nil
}

// query runs q. When it fails on a connection that had died while idle in
// the pool (the server restarted; PostgreSQL sends its shutdown notice to
// idle sessions), the pool's idle connections are dropped and the query is
// tried once more on a fresh one: every query is a read-only SELECT, so a
// second try changes nothing, and a login right after a database restart
// succeeds instead of failing once per stale connection.
func (s *SQL) query(qctx context.Context, q *compiledQuery, values map[string]any) (*dbsql.Rows, error) {
	args := q.args(values)
	rows, err := s.db.QueryContext(qctx, q.text, args...)
	if err == nil || qctx.Err() != nil || classifyErr(s.dialect, err) != kindTransient {
		return rows, err
	}
	s.dropIdle()
	if ce := s.logger.Check(zap.DebugLevel, "SQL query failed on a pooled connection; trying a fresh one"); ce != nil {
		ce.Write(zap.String("query", q.option), zap.String("reason", s.redact.text(err.Error())))
	}
	return s.db.QueryContext(qctx, q.text, args...)
}

// dropIdle closes the pool's idle connections.
func (s *SQL) dropIdle() {
	s.db.SetMaxIdleConns(0)
	s.db.SetMaxIdleConns(s.PoolSize)
}

// scanRow reads every column of the current row as the driver gives it
// and as text (NULL: empty).
func scanRow(rows *dbsql.Rows, n int) ([]any, []string, error) {
	raw := make([]any, n)
	dest := make([]any, n)
	for i := range raw {
		dest[i] = &raw[i]
	}
	if err := rows.Scan(dest...); err != nil {
		return nil, nil, err
	}
	text := make([]string, n)
	for i, v := range raw {
		text[i] = asText(v)
	}
	return raw, text, nil
}

// asText renders a driver value: the types database/sql drivers return,
// and fmt for anything else.
func asText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case []byte:
		return string(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// identity builds what Kayako learns from the row.
func (s *SQL) identity(r row, typed string) backends.Identity {
	id := backends.Identity{
		FirstName:    strings.TrimSpace(r.get(fieldFirstName)),
		LastName:     strings.TrimSpace(r.get(fieldLastName)),
		FullName:     strings.TrimSpace(r.get(fieldFullName)),
		Phone:        strings.TrimSpace(r.get(fieldPhone)),
		Mobile:       strings.TrimSpace(r.get(fieldMobile)),
		Designation:  strings.TrimSpace(r.get(fieldDesignation)),
		Organization: strings.TrimSpace(r.get(fieldOrganization)),
		Server:       s.target.host,
	}
	var emails []string
	for _, col := range r.cols.emails {
		emails = append(emails, r.vals[col])
	}
	id.Emails = dedupe(emails)
	id.Username = strings.TrimSpace(r.get(fieldUsername))
	if id.Username == "" && len(id.Emails) > 0 {
		id.Username = id.Emails[0]
	}
	if id.Username == "" {
		id.Username = typed
	}
	id.Groups = mergeGroups(nil, splitList(r.get(fieldGroups)))
	return id
}

func groupList(gs []backends.Group) string {
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = g.Name
	}
	return strings.Join(names, ", ")
}

// phpTrim is PHP's trim(): space, tab, newline, carriage return, NUL and
// vertical tab at either end, and nothing else (no other Unicode space).
func phpTrim(s string) string { return strings.Trim(s, " \t\n\r\x00\x0B") }

// splitList splits a groups column on commas and newlines.
func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
}

// mergeGroups adds names (trimmed, non-empty, not yet there ignoring case)
// to groups.
func mergeGroups(groups []backends.Group, names []string) []backends.Group {
	seen := map[string]bool{}
	for _, g := range groups {
		seen[strings.ToLower(g.Name)] = true
	}
	for _, n := range names {
		n = strings.TrimSpace(n)
		k := strings.ToLower(n)
		if n == "" || seen[k] {
			continue
		}
		seen[k] = true
		groups = append(groups, backends.Group{Name: n})
	}
	return groups
}

// dedupe drops empty values and repeats (ignoring case), keeping the order.
func dedupe(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range in {
		v = strings.TrimSpace(v)
		k := strings.ToLower(v)
		if v == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, v)
	}
	return out
}

// disabled reads a disabled column: empty, 0 (any zero number), false, f,
// no, n and off are "enabled"; any other text is "disabled". (The
// specification lists 1, true, t, y and other text as disabled; f, n and
// off are the negatives of t, y and on, so they read as enabled.)
func disabled(v string) bool {
	v = strings.ToLower(strings.TrimFunc(v, unicode.IsSpace))
	switch v {
	case "", "0", "false", "f", "no", "n", "off":
		return false
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return n != 0
	}
	return true
}

func acceptsPlain(fs []passhash.Format) bool {
	for _, f := range fs {
		if f == passhash.Plain {
			return true
		}
	}
	return false
}

// hashError reports a stored value that cannot be verified: the operator
// must add its format to hashes or fix the query. The value itself is not
// logged.
func (s *SQL) hashError(username, stored string, err error) error {
	accepted := strings.Join(formatNames(s.accepted), " ")
	looks := "no known format"
	if f, ok := passhash.Identify(stored, passhash.Formats()); ok {
		looks = "a " + string(f) + " hash"
	}
	switch {
	case errors.Is(err, passhash.ErrUnknownFormat):
		s.logger.Error("stored password hash is in no accepted format: add its format to hashes, or fix the query's password column",
			zap.String("username", username), zap.String("looks_like", looks), zap.String("accepted", accepted),
			zap.Int("length", len(stored)))
		return backends.Errorf(backends.Unavailable, "sql: stored password of %q is in no accepted format (%s; accepted: %s)", username, looks, accepted)
	case errors.Is(err, passhash.ErrMalformed):
		s.logger.Error("stored password hash is malformed",
			zap.String("username", username), zap.String("reason", err.Error()), zap.Int("length", len(stored)))
		return backends.Errorf(backends.Unavailable, "sql: stored password of %q is malformed: %v", username, err)
	}
	s.logger.Error("verifying the stored password failed", zap.String("username", username), zap.String("reason", err.Error()))
	return backends.Errorf(backends.Unavailable, "sql: verifying the password of %q: %v", username, err)
}

// failed classifies an error of a query run under qctx (derived from the
// request's ctx), logs it and returns it redacted.
func (s *SQL) failed(ctx, qctx context.Context, q *compiledQuery, err error) error {
	switch {
	case ctx.Err() != nil:
		// The request's own deadline: the handler reports it.
		return &backends.Error{Class: backends.Unavailable,
			Reason: "sql: the request's deadline passed during " + q.option, Err: ctx.Err()}
	case qctx.Err() != nil:
		s.markDown()
		backends.Trace(ctx, "sql", q.option+" timed out", "server", s.server(), "query_timeout", s.timeout.String())
		s.logger.Warn("SQL query timed out",
			zap.String("driver", s.Driver), zap.String("host", s.target.host),
			zap.String("query", q.option), zap.Duration("query_timeout", s.timeout))
		return &backends.Error{Class: backends.Unavailable,
			Reason: fmt.Sprintf("sql: %s timed out after %s (%s at %s)", q.option, s.timeout, s.Driver, s.target.host),
			Err:    context.DeadlineExceeded}
	}
	qerr := s.queryError(q, err)
	backends.Trace(ctx, "sql", q.option+" failed", "server", s.server(), "error", qerr.Error())
	return qerr
}

// queryError logs err by its kind and returns an unavailable error whose
// text is redacted.
func (s *SQL) queryError(q *compiledQuery, err error) error {
	k := kindQuery
	if !errors.Is(err, errColumns) {
		k = classifyErr(s.dialect, err)
	}
	safe := s.redact.err(err)
	fields := s.fields(safe)
	switch k {
	case kindTransient:
		s.markDown()
		s.logger.Warn("SQL database unavailable", fields...)
		return &backends.Error{Class: backends.Unavailable,
			Reason: fmt.Sprintf("sql: %s at %s unavailable: %s", s.Driver, s.target.host, safe), Err: safe}
	case kindAccount:
		s.logger.Error("SQL database refused the account or database in dsn", fields...)
	default:
		fields = append(fields, zap.String("query", q.option), zap.String("sql", q.source))
		s.logger.Error("SQL query failed: fix "+q.option, fields...)
	}
	return &backends.Error{Class: backends.Unavailable,
		Reason: fmt.Sprintf("sql: %s failed: %s", q.option, safe), Err: safe}
}

// fields name the database for a log line; err must already be redacted
// (or be ours).
func (s *SQL) fields(err error) []zap.Field {
	return []zap.Field{zap.String("driver", s.Driver), zap.String("host", s.target.host),
		zap.String("reason", s.redact.text(err.Error()))}
}
