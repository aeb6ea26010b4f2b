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
	PresetGeneric   = "generic"
	PresetWordPress = "wordpress"
	PresetJoomla    = "joomla"
	PresetDrupal7   = "drupal7"
	PresetDrupal    = "drupal"
	PresetDjango    = "django"
	PresetWHMCS     = "whmcs"
)

// preset is what one application's schema implies. Explicit options
// override every field.
type preset struct {
	userQuery   string // default user_query ("" = the operator must write one)
	groupsQuery string // default groups_query ("" = none)
	prefix      string // default table_prefix, substituted for {prefix}
	// prefixRequired: the application has no usual prefix (Joomla picks a
	// random one at installation), so table_prefix must be given.
	prefixRequired bool
	hashes         []passhash.Format
	// main is the format the application writes today: unknown users are
	// verified against a dummy hash of it, at its usual cost.
	main passhash.Format
	// trimPassword: the application trims the password before hashing and
	// checking it (WordPress); otherwise it is used byte for byte.
	trimPassword bool
	// emailLogin: the person may type the username or the e-mail. When the
	// typed value contains @ and user_query returns several rows, the one
	// row whose e-mail equals it (exactly, else ignoring case) wins.
	emailLogin bool
	// groupValues turns one groups_query value into group names (WordPress:
	// the roles of a PHP-serialized capabilities array); nil: the value is
	// the name.
	groupValues func(string) ([]string, error)
}

// The application presets follow each application's own schema and login
// code (the tests that build every schema cite their sources). The queries
// are portable SQL (lower(), CASE, scalar subqueries) so that a preset
// works on every database its application runs on; e-mail is compared
// with lower() on both sides, whatever the column's collation.
const (
	// WordPress 4.4–6.8: wp-admin/includes/schema.php. wp_authenticate
	// takes user_login or user_email; roles are the keys of the
	// PHP-serialized {prefix}capabilities meta value.
	wordpressUserQuery = `SELECT u.ID AS id, u.user_login AS username, u.user_pass AS password, u.user_email AS email,
	u.display_name AS full_name,
	(SELECT m.meta_value FROM {prefix}usermeta m WHERE m.user_id = u.ID AND m.meta_key = 'first_name' ORDER BY m.umeta_id LIMIT 1) AS first_name,
	(SELECT m.meta_value FROM {prefix}usermeta m WHERE m.user_id = u.ID AND m.meta_key = 'last_name' ORDER BY m.umeta_id LIMIT 1) AS last_name
FROM {prefix}users u
WHERE u.user_login = {username} OR lower(u.user_email) = lower({username})`
	wordpressGroupsQuery = `SELECT m.meta_value FROM {prefix}usermeta m WHERE m.user_id = {id} AND m.meta_key = '{prefix}capabilities'`

	// Joomla 4.0–5.3: installation/sql/mysql/base.sql. block = 1 is a
	// blocked (or not yet activated) account; groups are usergroup titles.
	joomlaUserQuery = `SELECT u.id AS id, u.username AS username, u.password AS password, u.email AS email,
	u.name AS full_name, u.block AS disabled
FROM {prefix}users u
WHERE u.username = {username} OR lower(u.email) = lower({username})`
	joomlaGroupsQuery = `SELECT g.title FROM {prefix}user_usergroup_map m JOIN {prefix}usergroups g ON g.id = m.group_id WHERE m.user_id = {id} ORDER BY g.lft`

	// Drupal 7: modules/user/user.install (users, users_roles, role). uid 0
	// is the anonymous user; status 0 is blocked. Every account also has
	// the authenticated role (rid 2), which Drupal adds at load time rather
	// than storing; its name comes from the role table.
	drupal7UserQuery = `SELECT u.uid AS id, u.name AS username, u.pass AS password, u.mail AS email,
	CASE WHEN u.status = 0 THEN 1 ELSE 0 END AS disabled
FROM {prefix}users u
WHERE u.uid <> 0 AND (lower(u.name) = lower({username}) OR lower(u.mail) = lower({username}))`
	drupal7GroupsQuery = `SELECT r.name FROM {prefix}role r WHERE r.rid = 2 OR r.rid IN (SELECT ur.rid FROM {prefix}users_roles ur WHERE ur.uid = {id}) ORDER BY r.weight, r.name`

	// Drupal 8–11: the user entity's tables (users_field_data, one row per
	// translation: default_langcode = 1 is the account; user__roles holds
	// role machine names). As Drupal's getRoles() does, "authenticated"
	// comes first for every account.
	drupalUserQuery = `SELECT u.uid AS id, u.name AS username, u.pass AS password, u.mail AS email,
	CASE WHEN u.status = 0 THEN 1 ELSE 0 END AS disabled
FROM {prefix}users_field_data u
WHERE u.uid <> 0 AND u.default_langcode = 1 AND (lower(u.name) = lower({username}) OR lower(u.mail) = lower({username}))`
	drupalGroupsQuery = `SELECT 'authenticated' UNION ALL SELECT r.roles_target_id FROM {prefix}user__roles r WHERE r.entity_id = {id} AND r.deleted = 0`

	// Django 1.10–5.2: django/contrib/auth/migrations (auth_user,
	// auth_user_groups, auth_group). The username is compared exactly, as
	// ModelBackend does; is_active false is disabled.
	djangoUserQuery = `SELECT u.id AS id, u.username AS username, u.password AS password, u.email AS email,
	u.first_name AS first_name, u.last_name AS last_name,
	CASE WHEN u.is_active THEN 0 ELSE 1 END AS disabled
FROM auth_user u
WHERE u.username = {username} OR lower(u.email) = lower({username})`
	djangoGroupsQuery = `SELECT g.name FROM auth_user_groups ug JOIN auth_group g ON g.id = ug.group_id WHERE ug.user_id = {id} ORDER BY g.name`

	// WHMCS 8: a user (tblusers, login by e-mail) belongs to client
	// accounts through tblusers_clients. Company, phone and group come from
	// one of them: an open one before a Closed one, the one the user owns
	// before others, then the oldest link. A user whose every client is
	// Closed is disabled; a user with no client yet is not.
	whmcsClient = `(SELECT uc.client_id FROM tblusers_clients uc JOIN tblclients cc ON cc.id = uc.client_id
		WHERE uc.auth_user_id = u.id ORDER BY CASE WHEN cc.status = 'Closed' THEN 1 ELSE 0 END, uc.owner DESC, uc.id LIMIT 1)`
	whmcsUserQuery = `SELECT u.id AS id, u.email AS username, u.password AS password, u.email AS email,
	u.first_name AS first_name, u.last_name AS last_name, c.companyname AS organization, c.phonenumber AS phone,
	CASE WHEN c.status = 'Closed' THEN 1 ELSE 0 END AS disabled
FROM tblusers u LEFT JOIN tblclients c ON c.id = ` + whmcsClient + `
WHERE lower(u.email) = lower({username})`
	whmcsGroupsQuery = `SELECT g.groupname FROM tblusers u JOIN tblclients c ON c.id = ` + whmcsClient + `
	JOIN tblclientgroups g ON g.id = c.groupid WHERE u.id = {id}`
)

// presets are keyed by the name the preset option takes.
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
	// wp_check_password (6.8): $wp$ (6.8+), $P$ phpass (≤ 6.7), any
	// password_verify hash (bcrypt from plugins), and a value of 32
	// characters or fewer as plain md5 (pre-2.5 accounts).
	PresetWordPress: {
		userQuery: wordpressUserQuery, groupsQuery: wordpressGroupsQuery, prefix: "wp_",
		hashes:       []passhash.Format{passhash.WordPress, passhash.Phpass, passhash.Bcrypt, passhash.MD5},
		main:         passhash.WordPress,
		trimPassword: true, emailLogin: true, groupValues: wordpressRoles,
	},
	// Joomla's UserHelper::verifyPassword (4.x, 5.x): bcrypt (the default),
	// argon2id/argon2i (an option), $P$ phpass (3.2–3.x), md5 "hash:salt"
	// (1.5–2.5) and unsalted md5 (1.0).
	PresetJoomla: {
		userQuery: joomlaUserQuery, groupsQuery: joomlaGroupsQuery, prefixRequired: true,
		hashes: []passhash.Format{passhash.Bcrypt, passhash.Argon2id, passhash.Argon2i, passhash.Phpass,
			passhash.MD5SaltAfter, passhash.MD5},
		main: passhash.Bcrypt, emailLogin: true,
	},
	// Drupal 7's user_check_password: $S$, U$S$ (Drupal 6 md5 rehashed),
	// $P$/$H$ (phpass, imported accounts).
	PresetDrupal7: {
		userQuery: drupal7UserQuery, groupsQuery: drupal7GroupsQuery,
		hashes: []passhash.Format{passhash.Drupal7, passhash.Phpass},
		main:   passhash.Drupal7, emailLogin: true,
	},
	// Drupal 10.1+ writes bcrypt (password_hash); $S$ from 8–10.0 and the
	// phpass forms are checked by its PhpassHashedPassword service.
	PresetDrupal: {
		userQuery: drupalUserQuery, groupsQuery: drupalGroupsQuery,
		hashes: []passhash.Format{passhash.Bcrypt, passhash.Drupal7, passhash.Phpass},
		main:   passhash.Bcrypt, emailLogin: true,
	},
	// Django's default PASSWORD_HASHERS: pbkdf2_sha256 (default),
	// pbkdf2_sha1, argon2, bcrypt_sha256, bcrypt, scrypt.
	PresetDjango: {
		userQuery: djangoUserQuery, groupsQuery: djangoGroupsQuery,
		hashes: []passhash.Format{passhash.Django},
		main:   passhash.Django, emailLogin: true,
	},
	// WHMCS 8 writes bcrypt; md5(salt + password):salt is from before 6.3
	// (carried into tblusers by the 8.0 migration).
	PresetWHMCS: {
		userQuery: whmcsUserQuery, groupsQuery: whmcsGroupsQuery,
		hashes: []passhash.Format{passhash.Bcrypt, passhash.MD5SaltBefore},
		main:   passhash.Bcrypt, emailLogin: true,
	},
}

// checkPresetPrefix refuses a preset that needs table_prefix without one.
// Only queries that use {prefix} need it.
func checkPresetPrefix(name, prefix, userQuery, groupsQuery string) error {
	uses := strings.Contains(userQuery, "{prefix}") || strings.Contains(groupsQuery, "{prefix}")
	if presets[name].prefixRequired && prefix == "" && uses {
		return fmt.Errorf("preset %s needs table_prefix (the application chose it at installation; Joomla: $dbprefix in configuration.php)", name)
	}
	return nil
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
