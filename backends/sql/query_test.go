package sql

import (
	"reflect"
	"strings"
	"testing"
)

func TestPlaceholdersBecomeTheDriversMarkers(t *testing.T) {
	const q = `SELECT id, login AS username, pass AS password FROM users WHERE login = {username} OR lower(email) = lower({username})`
	for _, c := range []struct {
		driver, text string
		params       []string
	}{
		{DriverPostgres, `SELECT id, login AS username, pass AS password FROM users WHERE login = $1 OR lower(email) = lower($1)`, []string{"username"}},
		{DriverMySQL, `SELECT id, login AS username, pass AS password FROM users WHERE login = ? OR lower(email) = lower(?)`, []string{"username", "username"}},
		{DriverSQLite, `SELECT id, login AS username, pass AS password FROM users WHERE login = ? OR lower(email) = lower(?)`, []string{"username", "username"}},
	} {
		uq, _, err := checkQueries(c.driver, q, "", "")
		if err != nil {
			t.Fatalf("%s: %v", c.driver, err)
		}
		if uq.text != c.text || !reflect.DeepEqual(uq.params, c.params) {
			t.Errorf("%s: %q %q", c.driver, uq.text, uq.params)
		}
		if got := uq.args(map[string]any{"username": "x"}); len(got) != len(c.params) {
			t.Errorf("%s: args %v", c.driver, got)
		}
	}
	// groups_query numbers {id} and {username} in order of first use.
	_, gq, err := checkQueries(DriverPostgres, q, `SELECT name FROM g WHERE uid = {id} AND owner <> {username} AND uid2 = {id}`, "")
	if err != nil {
		t.Fatal(err)
	}
	if gq.text != `SELECT name FROM g WHERE uid = $1 AND owner <> $2 AND uid2 = $1` || !reflect.DeepEqual(gq.params, []string{"id", "username"}) {
		t.Errorf("%q %q", gq.text, gq.params)
	}
}

func TestQueryLexerKeepsLiteralsAndCommentsApart(t *testing.T) {
	for _, c := range []struct {
		name, driver, query, want, err string
	}{
		{"pg comment with placeholder", DriverPostgres,
			"SELECT login AS username, pass AS password -- match {username} below\nFROM u WHERE login = {username}",
			"SELECT login AS username, pass AS password -- match {username} below\nFROM u WHERE login = $1", ""},
		{"pg nested block comment", DriverPostgres,
			"SELECT /* a /* {username} */ still comment */ login AS username, pass AS password FROM u WHERE login = {username}",
			"SELECT /* a /* {username} */ still comment */ login AS username, pass AS password FROM u WHERE login = $1", ""},
		{"pg array literal braces", DriverPostgres,
			"SELECT login AS username, pass AS password FROM u WHERE roles && '{admin,staff}' AND login = {username}",
			"SELECT login AS username, pass AS password FROM u WHERE roles && '{admin,staff}' AND login = $1", ""},
		{"pg doubled quote", DriverPostgres,
			"SELECT login AS username, pass AS password FROM u WHERE note <> 'it''s {username}' AND login = {username}", "",
			"inside the quoted literal"},
		{"pg E string with escaped quote", DriverPostgres,
			`SELECT login AS username, pass AS password FROM u WHERE note <> E'a\'b' AND login = {username}`,
			`SELECT login AS username, pass AS password FROM u WHERE note <> E'a\'b' AND login = $1`, ""},
		{"pg standard string ends at quote despite backslash", DriverPostgres,
			`SELECT login AS username, pass AS password FROM u WHERE note <> 'a\' AND login = {username}`,
			`SELECT login AS username, pass AS password FROM u WHERE note <> 'a\' AND login = $1`, ""},
		{"pg dollar quote", DriverPostgres,
			"SELECT login AS username, pass AS password FROM u WHERE note <> $q$ {username} $q$ AND login = {username}", "",
			"inside a dollar-quoted string"},
		{"pg quoted identifier", DriverPostgres,
			`SELECT "Login" AS username, "PassWord" AS "password" FROM u WHERE "Login" = {username}`,
			`SELECT "Login" AS username, "PassWord" AS "password" FROM u WHERE "Login" = $1`, ""},
		{"pg ? is an operator", DriverPostgres,
			"SELECT login AS username, pass AS password FROM u WHERE meta ? 'x' AND login = {username}",
			"SELECT login AS username, pass AS password FROM u WHERE meta ? 'x' AND login = $1", ""},
		{"pg cast", DriverPostgres,
			"SELECT id::text AS id, login AS username, pass AS password FROM u WHERE login = {username}::text",
			"SELECT id::text AS id, login AS username, pass AS password FROM u WHERE login = $1::text", ""},
		{"trailing semicolon", DriverPostgres,
			"SELECT login AS username, pass AS password FROM u WHERE login = {username}; -- done",
			"SELECT login AS username, pass AS password FROM u WHERE login = $1; -- done", ""},
		{"mysql double quotes are a string", DriverMySQL,
			`SELECT login AS username, pass AS password FROM u WHERE login = "{username}"`, "", "inside the quoted literal"},
		{"mysql backslash escape", DriverMySQL,
			`SELECT login AS username, pass AS password FROM u WHERE note <> 'a\' {username}' AND login = {username}`, "",
			"inside the quoted literal"},
		{"mysql hash comment", DriverMySQL,
			"SELECT login AS username, pass AS password FROM u # {username}\nWHERE login = {username}",
			"SELECT login AS username, pass AS password FROM u # {username}\nWHERE login = ?", ""},
		{"mysql backtick identifier", DriverMySQL,
			"SELECT `login` AS username, `password` FROM u WHERE `login` = {username}",
			"SELECT `login` AS username, `password` FROM u WHERE `login` = ?", ""},
		{"mysql --x is not a comment", DriverMySQL,
			"SELECT login AS username, pass AS password, 1--1 AS id FROM u WHERE login = {username}",
			"SELECT login AS username, pass AS password, 1--1 AS id FROM u WHERE login = ?", ""},
		{"mysql ? marker", DriverMySQL,
			"SELECT login AS username, pass AS password FROM u WHERE login = ?", "", "parameter marker ?"},
		{"sqlite brackets", DriverSQLite,
			"SELECT [login] AS username, [pass] AS [password] FROM u WHERE [login] = {username}",
			"SELECT [login] AS username, [pass] AS [password] FROM u WHERE [login] = ?", ""},
		{"sqlite placeholder in identifier", DriverSQLite,
			"SELECT login AS username, pass AS password FROM u WHERE [{username}] = 1", "", "inside the quoted identifier"},
		{"unterminated literal", DriverSQLite,
			"SELECT login AS username, pass AS password FROM u WHERE login = {username} AND x = 'oops", "", "unterminated"},
		{"leading comment and parenthesis", DriverPostgres,
			"/* users */ (SELECT login AS username, pass AS password FROM u WHERE login = {username})",
			"/* users */ (SELECT login AS username, pass AS password FROM u WHERE login = $1)", ""},
		{"with", DriverSQLite,
			"WITH x AS (SELECT * FROM u) SELECT login AS username, pass AS password FROM x WHERE login = {username}",
			"WITH x AS (SELECT * FROM u) SELECT login AS username, pass AS password FROM x WHERE login = ?", ""},
		{"update", DriverSQLite, "UPDATE u SET pass = 'x' WHERE login = {username}", "", "must be a SELECT"},
		{"ilike", DriverPostgres,
			"SELECT login AS username, pass AS password FROM u WHERE email ILIKE {username}", "", "after ILIKE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, err := compileQuery("user_query", c.query, "", dialects[c.driver].syntax, userQueryPlaceholders...)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimRight(strings.TrimSpace(c.want), ";"); q.text != want && q.text != strings.TrimSuffix(want, "; -- done") {
				t.Errorf("text\n got %q\nwant %q", q.text, c.want)
			}
		})
	}
}

func TestPasswordColumnVisibility(t *testing.T) {
	for _, c := range []struct {
		query string
		lacks bool
	}{
		{"SELECT login AS username, pass AS password FROM u WHERE login = {username}", false},
		{`SELECT login AS username, pass AS "password" FROM u WHERE login = {username}`, false},
		{"SELECT * FROM u WHERE login = {username}", false}, // cannot tell
		{"SELECT u.* FROM u WHERE login = {username}", false},
		{"SELECT login AS username, pass FROM u WHERE login = {username}", true},
		{"SELECT login AS username, 'password' AS pw FROM u WHERE login = {username}", true},
	} {
		q, err := compileQuery("user_query", c.query, "", dialects[DriverPostgres].syntax, userQueryPlaceholders...)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.mayLackColumn("password"); got != c.lacks {
			t.Errorf("%s: lacks password %v, want %v", c.query, got, c.lacks)
		}
	}
}

func TestPrefixIsSubstitutedAsConfiguration(t *testing.T) {
	uq, _, err := checkQueries(DriverMySQL, "SELECT user_login AS username, user_pass AS password FROM {prefix}users WHERE user_login = {username}", "", "wp_")
	if err != nil {
		t.Fatal(err)
	}
	if uq.text != "SELECT user_login AS username, user_pass AS password FROM wp_users WHERE user_login = ?" {
		t.Errorf("%q", uq.text)
	}
	if err := checkTablePrefix("wp_; DROP"); err == nil {
		t.Error("a prefix with SQL in it was accepted")
	}
}
