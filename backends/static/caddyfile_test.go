package static

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

const (
	hashA = "$2a$04$abcdefghijklmnopqrstuu5Xn2r6q3yxC8aQ8n0s2kJb0G6eHd7x6"
	hashB = "JDJhJDA0JGFiYw=="
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  Backend
	}{
		{
			name:  "one user, no block, default hash",
			input: "static {\n user alice " + hashA + "\n}",
			want:  Backend{Users: []User{{Username: "alice", Password: hashA}}},
		},
		{
			name: "every option",
			input: `static {
				hash bcrypt
				user Alice ` + hashA + ` {
					full_name    "Alice Anders"
					first_name   Alice
					last_name    Anders
					email        alice@example.org a.anders@example.org
					email        aa@example.org
					groups       staff admins
					groups       "help desk"
					phone        "+1 555 0100"
					mobile       "+1 555 0101"
					designation  Engineer
					organization "Example Inc."
				}
				user bob ` + hashB + `
			}`,
			want: Backend{
				HashRaw: json.RawMessage(`{"algorithm":"bcrypt"}`),
				Users: []User{{
					Username:     "Alice",
					Password:     hashA,
					FullName:     "Alice Anders",
					FirstName:    "Alice",
					LastName:     "Anders",
					Emails:       []string{"alice@example.org", "a.anders@example.org", "aa@example.org"},
					Groups:       []string{"staff", "admins", "help desk"},
					Phone:        "+1 555 0100",
					Mobile:       "+1 555 0101",
					Designation:  "Engineer",
					Organization: "Example Inc.",
				}, {Username: "bob", Password: hashB}},
			},
		},
		{
			name:  "argon2id",
			input: "static {\n hash argon2id\n user carol $argon2id$v=19$m=47104,t=1,p=1$c2FsdA$a2V5\n}",
			want: Backend{
				HashRaw: json.RawMessage(`{"algorithm":"argon2id"}`),
				Users:   []User{{Username: "carol", Password: "$argon2id$v=19$m=47104,t=1,p=1$c2FsdA$a2V5"}},
			},
		},
		{
			name:  "empty block",
			input: "static {\n user alice " + hashA + " {\n }\n}",
			want:  Backend{Users: []User{{Username: "alice", Password: hashA}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Backend
			if err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input)); err != nil {
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			}
			if string(got.HashRaw) != string(tt.want.HashRaw) {
				t.Errorf("hash = %s, want %s", got.HashRaw, tt.want.HashRaw)
			}
			got.HashRaw, tt.want.HashRaw = nil, nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

type caddyfileError struct {
	name  string
	input string
	want  string // the message must also name the line
	line  int
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	tests := []caddyfileError{
		{"argument after static", "static extra {\n}", "wrong argument count", 1},
		{"unknown subdirective", "static {\n user a " + hashA + "\n realm x\n}", `unknown subdirective "realm"`, 3},
		{"hash twice", "static {\n hash bcrypt\n hash bcrypt\n}", "hash given twice", 3},
		{"hash without name", "static {\n hash\n}", "wrong argument count", 2},
		{"hash with two names", "static {\n hash bcrypt argon2id\n}", "wrong argument count", 2},
		{"unknown hash", "static {\n hash md5\n}", `unknown hash algorithm "md5"`, 2},
		{"empty hash name", "static {\n hash \"\"\n}", `unknown hash algorithm ""`, 2},
		{"user without hash", "static {\n user alice\n}", "wrong argument count", 2},
		{"user without anything", "static {\n user\n}", "wrong argument count", 2},
		{"user with extra argument", "static {\n user alice " + hashA + " extra\n}", "wrong argument count", 2},
		{"empty username", "static {\n user \"\" " + hashA + "\n}", "empty username", 2},
		{"empty hash", "static {\n user alice \"\"\n}", `user "alice": empty password hash`, 2},
		{"duplicate user", "static {\n user Alice " + hashA + "\n user bob " + hashA + "\n user aLiCe " + hashA + "\n}",
			`user "aLiCe" given twice (usernames are case-insensitive; first as "Alice")`, 4},
		{"unknown user option", "static {\n user alice " + hashA + " {\n  nickname Al\n }\n}", `user "alice": unknown subdirective "nickname"`, 3},
		{"email without value", "static {\n user alice " + hashA + " {\n  email\n }\n}", "wrong argument count", 3},
		{"groups without value", "static {\n user alice " + hashA + " {\n  groups\n }\n}", "wrong argument count", 3},
		{"empty email", "static {\n user alice " + hashA + " {\n  email a@example.org \"\"\n }\n}", `user "alice": empty email`, 3},
	}
	for _, opt := range []string{"full_name", "first_name", "last_name", "phone", "mobile", "designation", "organization"} {
		tests = append(tests,
			caddyfileError{opt + " twice", "static {\n user alice " + hashA + " {\n  " + opt + " x\n  " + opt + " y\n }\n}",
				`user "alice": ` + opt + " given twice", 4},
			caddyfileError{opt + " without value", "static {\n user alice " + hashA + " {\n  " + opt + "\n }\n}", "wrong argument count", 3},
			caddyfileError{opt + " with two values", "static {\n user alice " + hashA + " {\n  " + opt + " x y\n }\n}", "wrong argument count", 3},
			caddyfileError{opt + " empty", "static {\n user alice " + hashA + " {\n  " + opt + " \"\"\n }\n}", `user "alice": empty ` + opt, 3},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Backend
			err := b.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if loc := "Testfile:" + strconv.Itoa(tt.line); !strings.Contains(err.Error(), loc) {
				t.Errorf("error %q does not name %s", err, loc)
			}
		})
	}
}

// TestCaddyfileToProvisionedBackend goes the way the handler does: Caddyfile,
// JSON, a fresh module, Provision, a login.
func TestCaddyfileToProvisionedBackend(t *testing.T) {
	hash := bcryptHash(t, "pw", testCost)
	var b Backend
	d := caddyfile.NewTestDispenser("static {\n hash bcrypt\n user Alice " + hash + " {\n  groups staff\n }\n}")
	if err := b.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var fresh Backend
	if err := json.Unmarshal(raw, &fresh); err != nil {
		t.Fatal(err)
	}
	mustProvision(t, &fresh)

	id, err := login(&fresh, "ALICE", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if id.Username != "Alice" || len(id.Groups) != 1 || id.Groups[0].Name != "staff" || id.Groups[0].DN != "" {
		t.Errorf("identity %+v", id)
	}
}

// TestUnmarshalModuleFromTheHandlersPosition parses the way the handler does:
// positioned on the token "static" of `backend static { … }`.
func TestUnmarshalModuleFromTheHandlersPosition(t *testing.T) {
	d := caddyfile.NewTestDispenser("backend static {\n user alice " + hashA + " {\n  email a@example.org\n }\n}\nafter")
	d.Next()    // backend
	d.NextArg() // static
	unm, err := caddyfile.UnmarshalModule(d, "loginshare.backends.static")
	if err != nil {
		t.Fatal(err)
	}
	b := unm.(*Backend)
	want := []User{{Username: "alice", Password: hashA, Emails: []string{"a@example.org"}}}
	if !reflect.DeepEqual(b.Users, want) {
		t.Errorf("users %+v, want %+v", b.Users, want)
	}
	if !d.Next() || d.Val() != "after" {
		t.Errorf("the handler's dispenser is at %q, want the token after the block", d.Val())
	}

	d = caddyfile.NewTestDispenser("backend static {\n user alice " + hashA + "\n bogus\n}")
	d.Next()
	d.NextArg()
	if _, err := caddyfile.UnmarshalModule(d, "loginshare.backends.static"); err == nil || !strings.Contains(err.Error(), "Testfile:3") {
		t.Errorf("error %v does not name Testfile:3", err)
	}
}
