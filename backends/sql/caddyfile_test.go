package sql

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func parse(input string) (*SQL, error) {
	d := caddyfile.NewTestDispenser(input)
	s := new(SQL)
	return s, s.UnmarshalCaddyfile(d)
}

func TestCaddyfileFullSyntax(t *testing.T) {
	s, err := parse(`sql {
		name    shop
		driver  postgres
		dsn     {env.SHOP_DSN}
		preset  generic
		table_prefix shop_
		user_query   "SELECT id, login AS username, pass AS password FROM {prefix}users WHERE login = {username}"
		groups_query "SELECT name FROM {prefix}groups WHERE user_id = {id}"
		hashes  bcrypt argon2id
		hashes  md5
		pool_size 4
		query_timeout 2s
		conn_max_lifetime 1h
	}`)
	if err != nil {
		t.Fatal(err)
	}
	want := &SQL{
		Driver: "postgres", DSN: "{env.SHOP_DSN}", Preset: "generic", TablePrefix: "shop_",
		UserQuery:   "SELECT id, login AS username, pass AS password FROM {prefix}users WHERE login = {username}",
		GroupsQuery: "SELECT name FROM {prefix}groups WHERE user_id = {id}",
		Hashes:      []string{"bcrypt", "argon2id", "md5"},
		PoolSize:    4, QueryTimeout: caddy.Duration(2 * time.Second), ConnMaxLifetime: caddy.Duration(time.Hour),
	}
	want.Name = "shop"
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
	// JSON carries the placeholders, never a resolved secret.
	b, _ := json.Marshal(s)
	if !strings.Contains(string(b), `"dsn":"{env.SHOP_DSN}"`) || !strings.Contains(string(b), `"name":"shop"`) {
		t.Errorf("JSON %s", b)
	}
}

func TestCaddyfileQueryBeforeDriverIsCheckedAtTheEnd(t *testing.T) {
	_, err := parse(`sql {
		user_query "SELECT login AS username, pass AS password FROM users WHERE login = ?"
		dsn x
		driver mysql
	}`)
	if err == nil || !strings.Contains(err.Error(), "parameter marker ?") || !strings.Contains(err.Error(), "user_query at Testfile:2") {
		t.Fatalf("error %v", err)
	}
	if _, err := parse(`sql {
		user_query "SELECT login AS username, pass AS password FROM users WHERE login = {username}"
		dsn x
		driver mysql
	}`); err != nil {
		t.Fatal(err)
	}
}

func TestCaddyfileErrorsNameTheLine(t *testing.T) {
	const ok = `"SELECT login AS username, pass AS password FROM users WHERE login = {username}"`
	for _, c := range []struct {
		name, input, want string
		line              int
	}{
		{"argument after sql", "sql extra {\n}", "wrong argument count", 1},
		{"unknown option", "sql {\n driver postgres\n colour blue\n}", `unknown subdirective "colour"`, 3},
		{"driver twice", "sql {\n driver postgres\n driver mysql\n}", "driver given more than once", 3},
		{"unknown driver", "sql {\n driver oracle\n}", `driver "oracle": want postgres, mysql or sqlite`, 2},
		{"driver without value", "sql {\n driver\n}", "wrong argument count", 2},
		{"driver with two values", "sql {\n driver postgres mysql\n}", "wrong argument count", 2},
		{"empty dsn", "sql {\n driver postgres\n dsn \"\"\n}", "dsn must not be empty", 3},
		{"dsn twice", "sql {\n dsn a\n dsn b\n}", "dsn given more than once", 3},
		{"unknown preset", "sql {\n preset wordpres\n}", `preset "wordpres": want generic`, 2},
		{"bad prefix", "sql {\n table_prefix wp-\n}", "only letters, digits and _", 2},
		{"unknown hash", "sql {\n hashes bcrypt rot13\n}", `unknown password hash format "rot13"`, 2},
		{"hash twice", "sql {\n hashes bcrypt\n hashes md5 bcrypt\n}", "bcrypt listed twice", 3},
		{"hashes empty", "sql {\n hashes\n}", "wrong argument count", 2},
		{"pool_size zero", "sql {\n pool_size 0\n}", "not a positive whole number", 2},
		{"pool_size text", "sql {\n pool_size many\n}", "not a positive whole number", 2},
		{"pool_size twice", "sql {\n pool_size 1\n pool_size 2\n}", "pool_size given more than once", 3},
		{"timeout zero", "sql {\n query_timeout 0s\n}", "query_timeout must be positive", 2},
		{"timeout negative", "sql {\n query_timeout -1s\n}", "must not be negative", 2},
		{"timeout garbage", "sql {\n query_timeout soon\n}", "is not a duration", 2},
		{"lifetime twice", "sql {\n conn_max_lifetime 1m\n conn_max_lifetime 2m\n}", "given more than once", 3},
		{"name empty", "sql {\n name \"\"\n}", "name must not be empty", 2},
		{"quoted placeholder", "sql {\n driver postgres\n user_query \"SELECT login AS username, pass AS password FROM u WHERE login = '{username}'\"\n}",
			"inside the quoted literal", 3},
		{"no username", "sql {\n driver postgres\n user_query \"SELECT login AS username, pass AS password FROM u\"\n}", "must use {username}", 3},
		{"no password column", "sql {\n driver sqlite\n user_query \"SELECT login AS username, pass FROM u WHERE login = {username}\"\n}",
			"selects no password column", 3},
		{"not a select", "sql {\n driver mysql\n user_query \"DELETE FROM u WHERE login = {username}\"\n}", "must be a SELECT", 3},
		{"two statements", "sql {\n driver postgres\n user_query \"SELECT login AS username, pass AS password FROM u WHERE login = {username}; DROP TABLE u\"\n}",
			"single statement", 3},
		{"unknown placeholder", "sql {\n driver postgres\n user_query \"SELECT login AS username, pass AS password FROM u WHERE login = {user}\"\n}",
			"unknown placeholder {user}", 3},
		{"numbered marker", "sql {\n driver postgres\n user_query \"SELECT login AS username, pass AS password FROM u WHERE login = $1\"\n}",
			"instead of the parameter marker $1", 3},
		{"like", "sql {\n driver postgres\n user_query \"SELECT login AS username, pass AS password FROM u WHERE login LIKE {username}\"\n}",
			"after LIKE", 3},
		{"groups {id} without id", "sql {\n driver postgres\n user_query " + ok + "\n groups_query \"SELECT name FROM g WHERE uid = {id}\"\n}",
			"selects no id column", 4},
		{"groups unknown placeholder", "sql {\n driver postgres\n user_query " + ok + "\n groups_query \"SELECT name FROM g WHERE uid = {uid}\"\n}",
			"unknown placeholder {uid} (groups_query knows {id} and {username})", 4},
		{"missing driver", "sql {\n dsn x\n user_query " + ok + "\n}", "driver is required", 4},
		{"missing dsn", "sql {\n driver postgres\n user_query " + ok + "\n}", "dsn is required", 4},
		{"missing user_query", "sql {\n driver postgres\n dsn x\n}", "user_query is required with preset generic", 4},
		{"prefix unused", "sql {\n driver postgres\n dsn x\n table_prefix wp_\n user_query " + ok + "\n}", "no query uses {prefix}", 6},
		{"sqlite memory", "sql {\n driver sqlite\n dsn x\n user_query " + ok + "\n}", "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(c.input)
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
			if line := "Testfile:" + strconv.Itoa(c.line); !strings.Contains(err.Error(), line) {
				t.Errorf("error %q does not name %s", err, line)
			}
		})
	}
}
