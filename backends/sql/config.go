package sql

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/kayako-loginshare/caddy-loginshare/backends/sql/passhash"
	"github.com/kayako-loginshare/caddy-loginshare/internal/caddyopts"
)

// Defaults of the options that have one.
const (
	defaultPoolSize        = 8
	defaultQueryTimeout    = 5 * time.Second
	defaultConnMaxLifetime = 30 * time.Minute
)

// Preset names.
const (
	PresetGeneric = "generic"
)

// preset is what one application's schema implies. Explicit options
// override every field.
type preset struct {
	userQuery   string // default user_query ("" = the operator must write one)
	groupsQuery string // default groups_query ("" = none)
	prefix      string // default table_prefix, substituted for {prefix}
	hashes      []passhash.Format
	// main is the format the application writes today: unknown users are
	// verified against a dummy hash of it, at its usual cost.
	main passhash.Format
	// trimPassword: the application trims the password before hashing and
	// checking it (WordPress); otherwise it is used byte for byte.
	trimPassword bool
}

// presets are keyed by the name the preset option takes. The application
// presets of the specification (wordpress, joomla, drupal7, drupal, django,
// whmcs) are rows of this table: each fills the queries for its schema.
var presets = map[string]preset{
	// generic: the operator writes user_query (and groups_query). The
	// default formats are the salted ones a current application writes and
	// that are recognised by their prefix alone; legacy digests (md5, sha1),
	// application formats and plain text are accepted only when listed.
	PresetGeneric: {
		hashes: []passhash.Format{passhash.Bcrypt, passhash.Argon2id, passhash.Argon2i,
			passhash.SHA512Crypt, passhash.SHA256Crypt},
		main: passhash.Bcrypt,
	},
}

// presetNames lists the presets for messages: generic first, then the
// applications in alphabetical order.
func presetNames() []string {
	names := []string{PresetGeneric}
	for n := range presets {
		if n != PresetGeneric {
			names = append(names, n)
		}
	}
	sort.Strings(names[1:])
	return names
}

// Drivers.
const (
	DriverPostgres = "postgres"
	DriverMySQL    = "mysql"
	DriverSQLite   = "sqlite"
)

// Placeholders each query knows.
var (
	userQueryPlaceholders   = []string{"username"}
	groupsQueryPlaceholders = []string{"id", "username"}
)

// Every rule below is called from UnmarshalCaddyfile (through
// caddyopts.Check, so a mistake names its file and line) and from Provision
// (so JSON configs are held to the same rules).

// checkDriver accepts the drivers compiled into this binary.
func checkDriver(v string) error {
	if err := caddyopts.OneOf("driver", v, DriverPostgres, DriverMySQL, DriverSQLite); err != nil {
		return err
	}
	if dialects[v] == nil {
		return fmt.Errorf("driver %q is not compiled into this binary", v)
	}
	return nil
}

func checkPreset(v string) error {
	if _, ok := presets[v]; !ok {
		return caddyopts.OneOf("preset", v, presetNames()...)
	}
	return nil
}

// checkTablePrefix allows identifier characters only: the prefix is put
// into the queries as text.
func checkTablePrefix(v string) error {
	for _, c := range v {
		if c != '_' && (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return fmt.Errorf("table_prefix %q: only letters, digits and _ are allowed", v)
		}
	}
	return nil
}

// checkDSNText rejects an empty dsn; the resolved value is checked by the
// driver at provision.
func checkDSNText(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("dsn must not be empty")
	}
	return nil
}

// checkHashes parses the format names (none twice).
func checkHashes(names []string) ([]passhash.Format, error) {
	seen := map[passhash.Format]bool{}
	var out []passhash.Format
	for _, n := range names {
		f, err := passhash.ParseFormat(n)
		if err != nil {
			return nil, fmt.Errorf("hashes: %w", err)
		}
		if seen[f] {
			return nil, fmt.Errorf("hashes: %s listed twice", f)
		}
		seen[f] = true
		out = append(out, f)
	}
	return out, nil
}

// checkQueries compiles both queries for driver (the same checks the
// Caddyfile parser runs once the block is read) and checks what can be
// seen of them without I/O.
func checkQueries(driver, userQuery, groupsQuery, prefix string) (uq, gq *compiledQuery, err error) {
	d := dialects[driver]
	if d == nil {
		return nil, nil, checkDriver(driver)
	}
	if strings.TrimSpace(userQuery) == "" {
		return nil, nil, errNoQuery
	}
	if uq, err = compileQuery("user_query", userQuery, prefix, d.syntax, userQueryPlaceholders...); err != nil {
		return nil, nil, err
	}
	if !uq.uses["username"] {
		return nil, nil, errors.New("user_query: must use {username} (the typed username, bound as a parameter)")
	}
	if uq.mayLackColumn("password") {
		return nil, nil, errors.New("user_query: selects no password column (name the stored hash's column AS password)")
	}
	if strings.TrimSpace(groupsQuery) == "" {
		return uq, nil, nil
	}
	if gq, err = compileQuery("groups_query", groupsQuery, prefix, d.syntax, groupsQueryPlaceholders...); err != nil {
		return nil, nil, err
	}
	if gq.uses["id"] && uq.mayLackColumn("id") {
		return nil, nil, errors.New("groups_query uses {id}, but user_query selects no id column (add one, e.g. users.user_id AS id)")
	}
	return uq, gq, nil
}

// checkPrefixUsed refuses a table_prefix that no query uses: it would do
// nothing, which is not what whoever wrote it expects.
func checkPrefixUsed(prefix, userQuery, groupsQuery string) error {
	if prefix != "" && !strings.Contains(userQuery, "{prefix}") && !strings.Contains(groupsQuery, "{prefix}") {
		return fmt.Errorf("table_prefix %q is set but no query uses {prefix}", prefix)
	}
	return nil
}

func checkPositive(opt string, n int) error {
	if n < 0 {
		return fmt.Errorf("%s must be positive", opt)
	}
	return nil
}

func checkDuration(opt string, d caddy.Duration) error {
	if d < 0 {
		return fmt.Errorf("%s must not be negative", opt)
	}
	return nil
}
