package sql

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/kayako-loginshare/caddy-loginshare/internal/dbtest"
)

// --- WordPress (MariaDB) ---
//
// Schema: WordPress 6.8, wp-admin/includes/schema.php, wp_get_db_schema()
// ('global' tables: $wpdb->users and $wpdb->usermeta, single site), with
// the charset and collation WordPress creates them with.
// Hashes: wp_hash_password of 6.8 ($wp$2y$, run by PHP), phpass $P$ (what
// WordPress ≤ 6.7 wrote), a bcrypt $2y$ written by a plugin (6.8 checks it
// with password_verify) and plain md5 (pre-2.5, still accepted by
// wp_check_password for values of 32 characters or fewer).
// Roles: the PHP-serialized wp_capabilities meta value.

const wordpressSchema = `CREATE TABLE wp_users (
  ID bigint(20) unsigned NOT NULL auto_increment,
  user_login varchar(60) NOT NULL default '',
  user_pass varchar(255) NOT NULL default '',
  user_nicename varchar(50) NOT NULL default '',
  user_email varchar(100) NOT NULL default '',
  user_url varchar(100) NOT NULL default '',
  user_registered datetime NOT NULL default '0000-00-00 00:00:00',
  user_activation_key varchar(255) NOT NULL default '',
  user_status int(11) NOT NULL default '0',
  display_name varchar(250) NOT NULL default '',
  PRIMARY KEY  (ID),
  KEY user_login_key (user_login),
  KEY user_nicename (user_nicename),
  KEY user_email (user_email)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
CREATE TABLE wp_usermeta (
  umeta_id bigint(20) unsigned NOT NULL auto_increment,
  user_id bigint(20) unsigned NOT NULL default '0',
  meta_key varchar(255) default NULL,
  meta_value longtext,
  PRIMARY KEY  (umeta_id),
  KEY user_id (user_id),
  KEY meta_key (meta_key(191))
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci`

type wpUser struct {
	id                          int
	login, email, pass, display string
	first, last, caps           string
}

// wpCaps serializes a capabilities array as WordPress does.
func wpCaps(kv ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "a:%d:{", len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, `s:%d:"%s";b:%s;`, len(kv[i]), kv[i], kv[i+1])
	}
	b.WriteString("}")
	return b.String()
}

var (
	wpOnce sync.Once
	wpDB   struct {
		m     *dbtest.MariaDB
		db    string
		dsn   string
		err   string
		ready bool
	}
)

// wordpressDatabase builds the WordPress database once per binary and
// returns its reader DSN (SELECT on wp_users and wp_usermeta only).
func wordpressDatabase(t *testing.T) (*dbtest.MariaDB, string, string) {
	t.Helper()
	m := dbtest.StartMariaDB(t)
	dbMu.Lock()
	defer dbMu.Unlock()
	if wpDB.ready {
		return wpDB.m, wpDB.db, wpDB.dsn
	}
	db := m.CreateDatabase(t, "fixture_wp")
	m.Exec(t, db, wordpressSchema)
	users := []wpUser{
		{1, "ada", "ada@example.org", wordpress68Of(t, Password), "Ada Admin", "Ada", "Admin", wpCaps("administrator", "1")},
		{2, "bob", "Bob@Example.org", phpassOf("$P$", "Wp0123ab", Password), "Bob B.", "Bob", "Brown", wpCaps("subscriber", "1", "editor", "0")},
		{3, "carl", "carl@example.org", md5Of(Password), "carl", "", "", "a:0:{}"},
		{4, "dina", "dina@example.org", bcryptOf(t, Password), "Dina", "", "", wpCaps("subscriber", "1")},
		// WordPress trims before hashing: the stored hash is of the
		// trimmed password, and a login with spaces around it succeeds.
		{5, "tess", "tess@example.org", wordpress68Of(t, "  "+Password+"\t"), "Tess", "", "", wpCaps("subscriber", "1")},
		// A login that is an address, and another person with that address:
		// the e-mail match wins when the typed value contains @.
		{6, "pat@example.org", "pat.other@example.org", bcryptOf(t, "not the password"), "Pat Login", "", "", wpCaps("subscriber", "1")},
		{7, "patricia", "Pat@Example.org", wordpress68Of(t, Password), "Patricia", "", "", wpCaps("administrator", "1")},
		// A serialized value that a regular expression over the text would
		// misread: the role key itself contains `";b:1;`.
		{8, "eve", "eve@example.org", wordpress68Of(t, Password), "Eve", "", "", wpCaps(`x";b:1;s:13:"administrator";b:1;s:1:"y`, "0")},
	}
	var rows, meta []string
	for _, u := range users {
		rows = append(rows, fmt.Sprintf("(%d, %s, %s, %s, %s, %s)", u.id, mysqlQuote(u.login), mysqlQuote(u.pass),
			mysqlQuote(u.email), mysqlQuote(u.display), mysqlQuote(strings.ToLower(u.login))))
		for _, kv := range [][2]string{{"first_name", u.first}, {"last_name", u.last}, {"wp_capabilities", u.caps}, {"wp_user_level", "0"}} {
			meta = append(meta, fmt.Sprintf("(%d, %s, %s)", u.id, mysqlQuote(kv[0]), mysqlQuote(kv[1])))
		}
	}
	m.Exec(t, db, "INSERT INTO wp_users (ID, user_login, user_pass, user_email, display_name, user_nicename) VALUES "+strings.Join(rows, ", "))
	m.Exec(t, db, "INSERT INTO wp_usermeta (user_id, meta_key, meta_value) VALUES "+strings.Join(meta, ", "))
	wpDB.m, wpDB.db, wpDB.dsn, wpDB.ready = m, db, mariadbReader(t, m, db, "wp_users", "wp_usermeta"), true
	return wpDB.m, wpDB.db, wpDB.dsn
}

func wordpressFixture(t *testing.T) presetFixture {
	m, db, dsn := wordpressDatabase(t)
	return presetFixture{
		preset: "wordpress", driver: DriverMySQL, dsn: dsn,
		userGroups: "\t\t\tadministrator \"VIP Customers\"\n\t\t\tsubscriber Customers",
		staffTeams: "\t\t\tadministrator Support",
		rows:       func(t testing.TB) int { return countRows(t, m.DB(t, db), "wp_users") },
		cases: []presetCase{
			{name: "6.8 hash", user: "ada", pw: Password, group: "VIP Customers", team: "Support", fullName: "Ada Admin", email: "ada@example.org"},
			{name: "wrong password", user: "ada", pw: "wrong", msg: msgInvalid},
			{name: "unknown", user: "nobody", pw: Password, msg: msgInvalid},
			{name: "by e-mail", user: "ada@example.org", pw: Password, group: "VIP Customers"},
			{name: "e-mail differing in case", user: "bob@example.org", pw: Password, group: "Customers", fullName: "Bob B.", email: "Bob@Example.org"},
			{name: "phpass (≤ 6.7)", user: "bob", pw: Password, group: "Customers"},
			{name: "false capability is no role", user: "bob", pw: Password, group: "Customers"},
			{name: "plain md5 (pre-2.5)", user: "carl", pw: Password, group: "Registered"},
			{name: "plugin bcrypt", user: "dina", pw: Password, group: "Customers"},
			{name: "trimmed password", user: "tess", pw: Password, group: "Customers"},
			{name: "password with spaces around it", user: "tess", pw: " " + Password + "\n", group: "Customers"},
			{name: "md5 gets no trim leniency beyond WordPress's", user: "carl", pw: Password + "x", msg: msgInvalid},
			{name: "e-mail wins over a login that is an address", user: "pat@example.org", pw: Password, group: "VIP Customers", fullName: "Patricia"},
			{name: "exact e-mail", user: "Pat@Example.org", pw: Password, group: "VIP Customers", fullName: "Patricia"},
			{name: "serialized key with quotes", user: "eve", pw: Password, group: "Registered"},
		},
	}
}

// --- Joomla (MariaDB) ---
//
// Schema: Joomla 5.3, installation/sql/mysql/base.sql: #__users,
// #__usergroups (with its default rows) and #__user_usergroup_map, under a
// random prefix as the installer makes one.
// Hashes: password_hash bcrypt (the default since 3.2; 4 and 5 write it),
// argon2id and argon2i (4.x's options, PHP's own), phpass $P$ (3.2–3.x
// wrote it), md5(password + salt):salt (1.5–2.5) and plain md5 (1.0); all
// checked by UserHelper::verifyPassword in 5.x.

const joomlaSchema = "CREATE TABLE `#__users` (\n" +
	"  `id` int NOT NULL AUTO_INCREMENT,\n" +
	"  `name` varchar(400) NOT NULL DEFAULT '',\n" +
	"  `username` varchar(150) NOT NULL DEFAULT '',\n" +
	"  `email` varchar(100) NOT NULL DEFAULT '',\n" +
	"  `password` varchar(100) NOT NULL DEFAULT '',\n" +
	"  `block` tinyint NOT NULL DEFAULT 0,\n" +
	"  `sendEmail` tinyint DEFAULT 0,\n" +
	"  `registerDate` datetime NOT NULL,\n" +
	"  `lastvisitDate` datetime,\n" +
	"  `activation` varchar(100) NOT NULL DEFAULT '',\n" +
	"  `params` text NOT NULL,\n" +
	"  `lastResetTime` datetime COMMENT 'Date of last password reset',\n" +
	"  `resetCount` int NOT NULL DEFAULT 0 COMMENT 'Count of password resets since lastResetTime',\n" +
	"  `otpKey` varchar(1000) NOT NULL DEFAULT '' COMMENT 'Two factor authentication encrypted keys',\n" +
	"  `otep` varchar(1000) NOT NULL DEFAULT '' COMMENT 'One time emergency passwords',\n" +
	"  `requireReset` tinyint NOT NULL DEFAULT 0 COMMENT 'Require user to reset password on next login',\n" +
	"  `authProvider` varchar(100) NOT NULL DEFAULT '' COMMENT 'Name of used authentication plugin',\n" +
	"  PRIMARY KEY (`id`),\n" +
	"  KEY `idx_name` (`name`(100)),\n" +
	"  KEY `idx_block` (`block`),\n" +
	"  UNIQUE KEY `idx_username` (`username`),\n" +
	"  KEY `email` (`email`)\n" +
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 DEFAULT COLLATE=utf8mb4_unicode_ci;\n" +
	"CREATE TABLE `#__usergroups` (\n" +
	"  `id` int unsigned NOT NULL AUTO_INCREMENT COMMENT 'Primary Key',\n" +
	"  `parent_id` int unsigned NOT NULL DEFAULT 0 COMMENT 'Adjacency List Reference Id',\n" +
	"  `lft` int NOT NULL DEFAULT 0 COMMENT 'Nested set lft.',\n" +
	"  `rgt` int NOT NULL DEFAULT 0 COMMENT 'Nested set rgt.',\n" +
	"  `title` varchar(100) NOT NULL DEFAULT '',\n" +
	"  PRIMARY KEY (`id`),\n" +
	"  UNIQUE KEY `idx_usergroup_parent_title_lookup` (`parent_id`,`title`),\n" +
	"  KEY `idx_usergroup_title_lookup` (`title`),\n" +
	"  KEY `idx_usergroup_adjacency_lookup` (`parent_id`),\n" +
	"  KEY `idx_usergroup_nested_set_lookup` (`lft`,`rgt`) USING BTREE\n" +
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 DEFAULT COLLATE=utf8mb4_unicode_ci;\n" +
	"INSERT INTO `#__usergroups` (`id`, `parent_id`, `lft`, `rgt`, `title`) VALUES\n" +
	"(1, 0, 1, 18, 'Public'), (2, 1, 8, 15, 'Registered'), (3, 2, 9, 14, 'Author'), (4, 3, 10, 13, 'Editor'),\n" +
	"(5, 4, 11, 12, 'Publisher'), (6, 1, 4, 7, 'Manager'), (7, 6, 5, 6, 'Administrator'), (8, 1, 16, 17, 'Super Users'),\n" +
	"(9, 1, 2, 3, 'Guest');\n" +
	"CREATE TABLE `#__user_usergroup_map` (\n" +
	"  `user_id` int unsigned NOT NULL DEFAULT 0 COMMENT 'Foreign Key to #__users.id',\n" +
	"  `group_id` int unsigned NOT NULL DEFAULT 0 COMMENT 'Foreign Key to #__usergroups.id',\n" +
	"  PRIMARY KEY (`user_id`,`group_id`)\n" +
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 DEFAULT COLLATE=utf8mb4_unicode_ci"

func joomlaFixture(t *testing.T) presetFixture {
	const prefix = "x7k2q_"
	m := dbtest.StartMariaDB(t)
	db := m.CreateDatabase(t, "fixture_joomla")
	m.Exec(t, db, strings.ReplaceAll(joomlaSchema, "#__", prefix))
	type ju struct {
		id                    int
		name, user, mail, pwd string
		block                 int
		groups                []int
	}
	users := []ju{
		{1, "Jo Super", "jo", "Jo@Example.org", bcryptOf(t, Password), 0, []int{8}},
		{2, "Ann Argon", "ann", "ann@example.org", argon2idOf(t, Password), 0, []int{2}},
		{3, "Ari Argon", "ari", "ari@example.org", phpHash(t, `password_hash($p, PASSWORD_ARGON2I, ["memory_cost" => 1024, "time_cost" => 1, "threads" => 1])`, Password), 0, []int{2}},
		{4, "Phil Three", "phil", "phil@example.org", phpassOf("$P$", "J3salt00", Password), 0, []int{2, 3}},
		{5, "Old Fifteen", "old", "old@example.org", saltedMD5(Password, "Zx9salt", "Zx9salt"), 0, []int{2}},
		{6, "Older One", "older", "older@example.org", md5Of(Password), 0, []int{2}},
		{7, "Blocked", "blocked", "blocked@example.org", bcryptOf(t, Password), 1, []int{2}},
	}
	var rows, maps []string
	for _, u := range users {
		rows = append(rows, fmt.Sprintf("(%d, %s, %s, %s, %s, %d, NOW(), '{}')", u.id, mysqlQuote(u.name), mysqlQuote(u.user),
			mysqlQuote(u.mail), mysqlQuote(u.pwd), u.block))
		for _, g := range u.groups {
			maps = append(maps, fmt.Sprintf("(%d, %d)", u.id, g))
		}
	}
	m.Exec(t, db, "INSERT INTO "+prefix+"users (id, name, username, email, password, block, registerDate, params) VALUES "+strings.Join(rows, ", "))
	m.Exec(t, db, "INSERT INTO "+prefix+"user_usergroup_map (user_id, group_id) VALUES "+strings.Join(maps, ", "))
	dsn := mariadbReader(t, m, db, prefix+"users", prefix+"user_usergroup_map", prefix+"usergroups")
	return presetFixture{
		preset: "joomla", driver: DriverMySQL, dsn: dsn, extra: "\t\t\ttable_prefix " + prefix,
		userGroups: "\t\t\t\"Super Users\" \"VIP Customers\"\n\t\t\tAuthor Authors\n\t\t\tRegistered Customers",
		staffTeams: "\t\t\t\"Super Users\" Support",
		rows:       func(t testing.TB) int { return countRows(t, m.DB(t, db), prefix+"users") },
		cases: []presetCase{
			{name: "bcrypt", user: "jo", pw: Password, group: "VIP Customers", team: "Support", fullName: "Jo Super", email: "Jo@Example.org"},
			{name: "wrong password", user: "jo", pw: "wrong", msg: msgInvalid},
			{name: "unknown", user: "nobody", pw: Password, msg: msgInvalid},
			{name: "by e-mail", user: "ann@example.org", pw: Password, group: "Customers"},
			{name: "e-mail differing in case", user: "jo@example.org", pw: Password, group: "VIP Customers"},
			{name: "argon2id", user: "ann", pw: Password, group: "Customers"},
			{name: "argon2i", user: "ari", pw: Password, group: "Customers"},
			{name: "phpass (3.x)", user: "phil", pw: Password, group: "Authors"},
			{name: "md5 salted (1.5–2.5)", user: "old", pw: Password, group: "Customers"},
			{name: "md5 (1.0)", user: "older", pw: Password, group: "Customers"},
			{name: "blocked", user: "blocked", pw: Password, msg: msgInvalid},
			{name: "password not trimmed", user: "jo", pw: " " + Password, msg: msgInvalid},
		},
	}
}

// --- Drupal 7 (PostgreSQL) ---
//
// Schema: Drupal 7.x, modules/user/user.install user_schema() (users,
// users_roles, role), as Drupal's PostgreSQL driver creates it (unsigned
// ints as CHECK (x >= 0), tiny ints as smallint, blob as bytea), with the
// anonymous row uid 0 and the standard profile's roles.
// Hashes: $S$ (user_hash_password), U$S$ (md5 accounts from Drupal 6), and
// phpass $H$/$P$ (imported accounts), all checked by user_check_password.

const drupal7Schema = `CREATE TABLE users (
  uid integer NOT NULL DEFAULT 0 CHECK (uid >= 0),
  name varchar(60) NOT NULL DEFAULT '',
  pass varchar(128) NOT NULL DEFAULT '',
  mail varchar(254) DEFAULT '',
  theme varchar(255) NOT NULL DEFAULT '',
  signature varchar(255) NOT NULL DEFAULT '',
  signature_format varchar(255) NULL DEFAULT NULL,
  created integer NOT NULL DEFAULT 0,
  access integer NOT NULL DEFAULT 0,
  login integer NOT NULL DEFAULT 0,
  status smallint NOT NULL DEFAULT 0,
  timezone varchar(32) NULL DEFAULT NULL,
  language varchar(12) NOT NULL DEFAULT '',
  picture integer NOT NULL DEFAULT 0,
  init varchar(254) DEFAULT '',
  data bytea NULL,
  PRIMARY KEY (uid),
  CONSTRAINT users_name_key UNIQUE (name)
);
CREATE INDEX users_access_idx ON users (access);
CREATE INDEX users_created_idx ON users (created);
CREATE INDEX users_mail_idx ON users (mail);
CREATE INDEX users_picture_idx ON users (picture);
CREATE TABLE role (
  rid serial CHECK (rid >= 0),
  name varchar(64) NOT NULL DEFAULT '',
  weight integer NOT NULL DEFAULT 0,
  PRIMARY KEY (rid),
  CONSTRAINT role_name_key UNIQUE (name)
);
CREATE INDEX role_name_weight_idx ON role (name, weight);
CREATE TABLE users_roles (
  uid integer NOT NULL DEFAULT 0 CHECK (uid >= 0),
  rid integer NOT NULL DEFAULT 0 CHECK (rid >= 0),
  PRIMARY KEY (uid, rid)
);
CREATE INDEX users_roles_rid_idx ON users_roles (rid);
INSERT INTO role (rid, name, weight) VALUES (1, 'anonymous user', 0), (2, 'authenticated user', 1), (3, 'administrator', 2), (4, 'customer', 3);
INSERT INTO users (uid, name, pass, mail, status) VALUES (0, '', '', '', 0)`

func drupal7Fixture(t *testing.T) presetFixture {
	p := dbtest.StartPostgres(t)
	db := p.CreateDatabase(t, "fixture_d7")
	p.Exec(t, db, drupal7Schema)
	type du struct {
		uid              int
		name, mail, pass string
		status           int
		roles            []int
	}
	users := []du{
		{1, "admin", "Admin@Example.org", drupal7Of("D7salt01", Password), 1, []int{3}},
		{2, "dee", "dee@example.org", drupal7FromMD5("D6salt02", Password), 1, []int{4}},
		{3, "hal", "hal@example.org", phpassOf("$H$", "Hsalt003", Password), 1, []int{4}},
		{4, "pip", "pip@example.org", phpassOf("$P$", "Psalt004", Password), 1, nil},
		{5, "blocked", "blocked@example.org", drupal7Of("D7salt05", Password), 0, []int{4}},
		{6, "Zoë Ångström", "zoe@example.org", drupal7Of("D7salt06", Password), 1, []int{4}},
	}
	for _, u := range users {
		p.Exec(t, db, "INSERT INTO users (uid, name, pass, mail, status, init) VALUES ($1, $2, $3, $4, $5, $4)", u.uid, u.name, u.pass, u.mail, u.status)
		for _, r := range u.roles {
			p.Exec(t, db, "INSERT INTO users_roles (uid, rid) VALUES ($1, $2)", u.uid, r)
		}
	}
	dsn := postgresReader(t, p, db, "users", "users_roles", "role")
	return presetFixture{
		preset: "drupal7", driver: DriverPostgres, dsn: dsn,
		userGroups: "\t\t\tadministrator \"VIP Customers\"\n\t\t\tcustomer Customers\n\t\t\t\"authenticated user\" Members",
		staffTeams: "\t\t\tadministrator Support",
		rows:       func(t testing.TB) int { return countRows(t, p.DB(t, db), "users") },
		cases: []presetCase{
			{name: "$S$", user: "admin", pw: Password, group: "VIP Customers", team: "Support", email: "Admin@Example.org"},
			{name: "wrong password", user: "admin", pw: "wrong", msg: msgInvalid},
			{name: "unknown", user: "nobody", pw: Password, msg: msgInvalid},
			{name: "anonymous row is nobody", user: "", pw: "", msg: msgInvalid},
			{name: "by e-mail", user: "dee@example.org", pw: Password, group: "Customers"},
			{name: "e-mail differing in case", user: "admin@example.org", pw: Password, group: "VIP Customers"},
			{name: "name differing in case", user: "DEE", pw: Password, group: "Customers"},
			{name: "U$S$ (Drupal 6 md5)", user: "dee", pw: Password, group: "Customers"},
			{name: "phpass $H$", user: "hal", pw: Password, group: "Customers"},
			{name: "phpass $P$, authenticated role only", user: "pip", pw: Password, group: "Members"},
			{name: "blocked", user: "blocked", pw: Password, msg: msgInvalid},
			// As stored: lower() folds non-ASCII letters only under the
			// database's own locale (the test server's is C).
			{name: "odd UTF-8 name", user: "Zoë Ångström", pw: Password, group: "Customers"},
		},
	}
}

// --- Drupal 8+ (PostgreSQL) ---
//
// Schema: Drupal 10.x/11.x user entity tables as SqlContentEntityStorage
// creates them from core/modules/user/src/Entity/User.php
// baseFieldDefinitions() and UserStorageSchema (users, users_field_data
// with one row per translation, user__roles).
// Hashes: bcrypt (10.1+, PHP password_hash via PhpPassword), $S$ (8.0–10.0,
// PhpassHashedPassword) and phpass $P$ (migrated accounts, same service).

const drupalSchema = `CREATE TABLE users (
  uid serial CHECK (uid >= 0),
  uuid varchar(128) NOT NULL,
  langcode varchar(12) NOT NULL,
  PRIMARY KEY (uid),
  CONSTRAINT user_field__uuid__value UNIQUE (uuid)
);
CREATE TABLE users_field_data (
  uid integer NOT NULL CHECK (uid >= 0),
  langcode varchar(12) NOT NULL,
  preferred_langcode varchar(12) NULL,
  preferred_admin_langcode varchar(12) NULL,
  name varchar(60) NOT NULL,
  pass varchar(255) NULL,
  mail varchar(254) NULL,
  timezone varchar(32) NULL,
  status smallint NULL,
  created integer NOT NULL,
  changed integer NULL,
  access integer NOT NULL,
  login integer NULL,
  init varchar(254) NULL,
  default_langcode smallint NOT NULL,
  PRIMARY KEY (uid, langcode),
  CONSTRAINT user__name UNIQUE (name, langcode)
);
CREATE INDEX user_field__mail ON users_field_data (mail);
CREATE INDEX user_field__created ON users_field_data (created);
CREATE INDEX user_field__access ON users_field_data (access);
CREATE TABLE user__roles (
  bundle varchar(128) NOT NULL DEFAULT '',
  deleted smallint NOT NULL DEFAULT 0,
  entity_id integer NOT NULL CHECK (entity_id >= 0),
  revision_id integer NOT NULL CHECK (revision_id >= 0),
  langcode varchar(32) NOT NULL DEFAULT '',
  delta integer NOT NULL CHECK (delta >= 0),
  roles_target_id varchar(255) NOT NULL,
  PRIMARY KEY (entity_id, deleted, delta, langcode)
);
CREATE INDEX user__roles__bundle ON user__roles (bundle);
CREATE INDEX user__roles__revision_id ON user__roles (revision_id);
CREATE INDEX user__roles__roles_target_id ON user__roles (roles_target_id);
INSERT INTO users (uid, uuid, langcode) VALUES (0, 'a0000000-0000-4000-8000-000000000000', 'en');
INSERT INTO users_field_data (uid, langcode, name, pass, mail, status, created, access, default_langcode)
VALUES (0, 'en', '', NULL, NULL, 0, 0, 0, 1)`

func drupalFixture(t *testing.T) presetFixture {
	p := dbtest.StartPostgres(t)
	db := p.CreateDatabase(t, "fixture_d10")
	p.Exec(t, db, drupalSchema)
	type du struct {
		uid              int
		name, mail, pass string
		status           int
		roles            []string
		translated       bool
	}
	users := []du{
		{1, "admin", "Admin@Example.org", bcryptOf(t, Password), 1, []string{"administrator"}, false},
		{2, "eve", "eve@example.org", drupal7Of("D8salt02", Password), 1, []string{"customer", "editor"}, true},
		{3, "pat", "pat@example.org", phpassOf("$P$", "Psalt003", Password), 1, nil, false},
		{4, "blocked", "blocked@example.org", bcryptOf(t, Password), 0, []string{"customer"}, false},
	}
	for _, u := range users {
		p.Exec(t, db, "INSERT INTO users (uid, uuid, langcode) VALUES ($1, $2, 'en')", u.uid, fmt.Sprintf("a0000000-0000-4000-8000-%012d", u.uid))
		p.Exec(t, db, `INSERT INTO users_field_data (uid, langcode, preferred_langcode, name, pass, mail, status, created, changed, access, login, init, default_langcode)
VALUES ($1, 'en', 'en', $2, $3, $4, $5, 1700000000, 1700000000, 0, 0, $4, 1)`, u.uid, u.name, u.pass, u.mail, u.status)
		if u.translated {
			// A translation of the account: a second row, not a second person.
			p.Exec(t, db, `INSERT INTO users_field_data (uid, langcode, preferred_langcode, name, pass, mail, status, created, changed, access, login, init, default_langcode)
VALUES ($1, 'de', 'de', $2, $3, $4, $5, 1700000000, 1700000000, 0, 0, $4, 0)`, u.uid, u.name, u.pass, u.mail, u.status)
		}
		for i, r := range u.roles {
			p.Exec(t, db, "INSERT INTO user__roles (bundle, deleted, entity_id, revision_id, langcode, delta, roles_target_id) VALUES ('user', 0, $1, $1, 'en', $2, $3)", u.uid, i, r)
		}
	}
	dsn := postgresReader(t, p, db, "users_field_data", "user__roles")
	return presetFixture{
		preset: "drupal", driver: DriverPostgres, dsn: dsn,
		userGroups: "\t\t\tadministrator \"VIP Customers\"\n\t\t\tcustomer Customers\n\t\t\tauthenticated Members",
		staffTeams: "\t\t\tadministrator Support\n\t\t\teditor Editors",
		rows:       func(t testing.TB) int { return countRows(t, p.DB(t, db), "users_field_data") },
		cases: []presetCase{
			{name: "bcrypt (10.1+)", user: "admin", pw: Password, group: "VIP Customers", team: "Support", email: "Admin@Example.org"},
			{name: "wrong password", user: "admin", pw: "wrong", msg: msgInvalid},
			{name: "unknown", user: "nobody", pw: Password, msg: msgInvalid},
			{name: "by e-mail", user: "eve@example.org", pw: Password, group: "Customers", team: "Editors"},
			{name: "e-mail differing in case", user: "ADMIN@example.org", pw: Password, group: "VIP Customers"},
			{name: "$S$ (8–10.0), translated account", user: "eve", pw: Password, group: "Customers"},
			{name: "phpass, authenticated only", user: "pat", pw: Password, group: "Members"},
			{name: "blocked", user: "blocked", pw: Password, msg: msgInvalid},
		},
	}
}

// --- Django (PostgreSQL) ---
//
// Schema: Django 5.2, django/contrib/auth/migrations 0001_initial through
// 0012 (username and first_name of 150 characters, email of 254) as the
// PostgreSQL backend creates them (identity columns since 4.1).
// Hashes: Django's documented "algorithm$…" encodings: pbkdf2_sha256 (the
// default; a small iteration count keeps the test fast, the count is part
// of the value), pbkdf2_sha1, argon2 (argon2-cffi's PHC string, which PHP
// writes identically), bcrypt_sha256 ($2b$ over the hex SHA-256) and an
// unusable password ("!…", set_unusable_password).

const djangoSchema = `CREATE TABLE auth_group (
  id integer NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
  name varchar(150) NOT NULL UNIQUE
);
CREATE TABLE auth_user (
  id integer NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
  password varchar(128) NOT NULL,
  last_login timestamp with time zone NULL,
  is_superuser boolean NOT NULL,
  username varchar(150) NOT NULL UNIQUE,
  first_name varchar(150) NOT NULL,
  last_name varchar(150) NOT NULL,
  email varchar(254) NOT NULL,
  is_staff boolean NOT NULL,
  is_active boolean NOT NULL,
  date_joined timestamp with time zone NOT NULL
);
CREATE TABLE auth_user_groups (
  id integer NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
  user_id integer NOT NULL REFERENCES auth_user (id) DEFERRABLE INITIALLY DEFERRED,
  group_id integer NOT NULL REFERENCES auth_group (id) DEFERRABLE INITIALLY DEFERRED,
  CONSTRAINT auth_user_groups_user_id_group_id_94350c0c_uniq UNIQUE (user_id, group_id)
);
CREATE INDEX auth_user_groups_user_id_6a12ed8b ON auth_user_groups (user_id);
CREATE INDEX auth_user_groups_group_id_97559544 ON auth_user_groups (group_id);
CREATE INDEX auth_user_username_6821ab7c_like ON auth_user (username varchar_pattern_ops);
INSERT INTO auth_group (id, name) VALUES (1, 'customers'), (2, 'support staff')`

func djangoFixture(t *testing.T) presetFixture {
	p := dbtest.StartPostgres(t)
	db := p.CreateDatabase(t, "fixture_django")
	p.Exec(t, db, djangoSchema)
	argon := "argon2" + argon2idOf(t, Password)
	bsha := "bcrypt_sha256$" + strings.Replace(phpHash(t, `password_hash(hash('sha256', $p), PASSWORD_BCRYPT, ["cost" => 4])`, Password), "$2y$", "$2b$", 1)
	type dj struct {
		id                            int
		user, pass, first, last, mail string
		active                        bool
		groups                        []int
	}
	users := []dj{
		{1, "guido", djangoPBKDF2(t, "pbkdf2_sha256", 1000, "aSaltOfDjango", Password), "Guido", "Rossum", "Guido@Example.org", true, []int{2}},
		{2, "ada", argon, "Ada", "L", "ada@example.org", true, []int{1}},
		{3, "bea", bsha, "Bea", "B", "bea@example.org", true, []int{1}},
		{4, "old", djangoPBKDF2(t, "pbkdf2_sha1", 1000, "oldSalt", Password), "Old", "Timer", "old@example.org", true, []int{1}},
		{5, "gone", djangoPBKDF2(t, "pbkdf2_sha256", 1000, "goneSalt", Password), "Gone", "", "gone@example.org", false, []int{1}},
		{6, "nopw", "!Qm7sHc1XnY0wDa3uJgR2zLkP9vTbNeF5oIiA8yC", "No", "Password", "nopw@example.org", true, nil},
		// Django does not make e-mails unique: two that differ in case.
		{7, "twin.upper", djangoPBKDF2(t, "pbkdf2_sha256", 1000, "twinSalt1", Password), "Twin", "Upper", "Same@Example.org", true, nil},
		{8, "twin.lower", djangoPBKDF2(t, "pbkdf2_sha256", 1000, "twinSalt2", Password), "Twin", "Lower", "same@example.org", true, []int{1}},
	}
	for _, u := range users {
		p.Exec(t, db, `INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
VALUES ($1, $2, false, $3, $4, $5, $6, false, $7, now())`, u.id, u.pass, u.user, u.first, u.last, u.mail, u.active)
		for _, g := range u.groups {
			p.Exec(t, db, "INSERT INTO auth_user_groups (user_id, group_id) VALUES ($1, $2)", u.id, g)
		}
	}
	dsn := postgresReader(t, p, db, "auth_user", "auth_user_groups", "auth_group")
	return presetFixture{
		preset: "django", driver: DriverPostgres, dsn: dsn,
		userGroups: "\t\t\t\"support staff\" \"VIP Customers\"\n\t\t\tcustomers Customers",
		staffTeams: "\t\t\t\"support staff\" Support",
		rows:       func(t testing.TB) int { return countRows(t, p.DB(t, db), "auth_user") },
		cases: []presetCase{
			{name: "pbkdf2_sha256", user: "guido", pw: Password, group: "VIP Customers", team: "Support", fullName: "Guido Rossum", email: "Guido@Example.org"},
			{name: "wrong password", user: "guido", pw: "wrong", msg: msgInvalid},
			{name: "unknown", user: "nobody", pw: Password, msg: msgInvalid},
			{name: "username is case-sensitive, as in ModelBackend", user: "Guido", pw: Password, msg: msgInvalid},
			{name: "by e-mail", user: "ada@example.org", pw: Password, group: "Customers"},
			{name: "e-mail differing in case", user: "guido@example.org", pw: Password, group: "VIP Customers"},
			{name: "argon2", user: "ada", pw: Password, group: "Customers"},
			{name: "bcrypt_sha256", user: "bea", pw: Password, group: "Customers"},
			{name: "pbkdf2_sha1 (legacy)", user: "old", pw: Password, group: "Customers"},
			{name: "inactive", user: "gone", pw: Password, msg: msgInvalid},
			{name: "unusable password", user: "nopw", pw: Password, msg: msgInvalid},
			{name: "exact e-mail among case twins", user: "same@example.org", pw: Password, group: "Customers", fullName: "Twin Lower"},
			{name: "exact e-mail among case twins, other", user: "Same@Example.org", pw: Password, group: "Registered", fullName: "Twin Upper"},
			// ambiguous_user: Kayako is told "invalid", the log says ERROR.
			{name: "case twins, neither exact: ambiguous", user: "SAME@EXAMPLE.ORG", pw: Password, msg: msgInvalid},
		},
	}
}

// --- WHMCS 8 (MariaDB) ---
//
// Schema: WHMCS 8.x's tblusers, tblusers_clients, tblclients and
// tblclientgroups, as WHMCS's developer documentation describes them
// (Database Schema, "Users" and "Clients"; WHMCS is not open source, so
// this is from its published column list, not its installer). tblclients
// keeps the columns the preset reads and those every row needs; card and
// bank columns are left out.
// Hashes: bcrypt (password_hash, 6.3+), md5(salt + password):salt (< 6.3,
// carried into tblusers by the 8.0 migration).

const whmcsSchema = `CREATE TABLE tblusers (
  id int(10) unsigned NOT NULL AUTO_INCREMENT,
  first_name varchar(255) NOT NULL DEFAULT '',
  last_name varchar(255) NOT NULL DEFAULT '',
  email varchar(255) NOT NULL DEFAULT '',
  password varchar(255) NOT NULL DEFAULT '',
  language varchar(32) NOT NULL DEFAULT '',
  second_factor varchar(255) NOT NULL DEFAULT '',
  second_factor_config text,
  remember_token varchar(100) NOT NULL DEFAULT '',
  reset_token varchar(100) NOT NULL DEFAULT '',
  security_question_id int(10) unsigned NOT NULL DEFAULT 0,
  security_question_answer varchar(255) NOT NULL DEFAULT '',
  last_ip varchar(64) NOT NULL DEFAULT '',
  last_hostname varchar(255) NOT NULL DEFAULT '',
  last_login timestamp NULL DEFAULT NULL,
  email_verification_token varchar(100) NOT NULL DEFAULT '',
  email_verification_token_expiry timestamp NULL DEFAULT NULL,
  email_verified_at timestamp NULL DEFAULT NULL,
  reset_token_expiry timestamp NULL DEFAULT NULL,
  created_at timestamp NULL DEFAULT NULL,
  updated_at timestamp NULL DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY tblusers_email_unique (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE tblusers_clients (
  id int(10) unsigned NOT NULL AUTO_INCREMENT,
  auth_user_id int(10) unsigned NOT NULL DEFAULT 0,
  client_id int(10) unsigned NOT NULL DEFAULT 0,
  invite_id int(10) unsigned NOT NULL DEFAULT 0,
  owner tinyint(1) NOT NULL DEFAULT 0,
  permissions text,
  last_login timestamp NULL DEFAULT NULL,
  created_at timestamp NULL DEFAULT NULL,
  updated_at timestamp NULL DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY tblusers_clients_auth_user_id_client_id_unique (auth_user_id, client_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE tblclientgroups (
  id int(10) NOT NULL AUTO_INCREMENT,
  groupname varchar(45) NOT NULL,
  groupcolour varchar(45) DEFAULT NULL,
  discountpercent decimal(10,2) unsigned DEFAULT 0.00,
  susptermexempt text,
  separateinvoices text,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE tblclients (
  id int(10) NOT NULL AUTO_INCREMENT,
  uuid varchar(255) NOT NULL DEFAULT '',
  firstname text NOT NULL,
  lastname text NOT NULL,
  companyname text NOT NULL,
  email text NOT NULL,
  address1 text NOT NULL,
  address2 text NOT NULL,
  city text NOT NULL,
  state text NOT NULL,
  postcode text NOT NULL,
  country text NOT NULL,
  phonenumber text NOT NULL,
  tax_id varchar(128) NOT NULL DEFAULT '',
  password text NOT NULL,
  authmodule text NOT NULL,
  authdata text NOT NULL,
  currency int(10) NOT NULL DEFAULT 0,
  credit decimal(16,2) NOT NULL DEFAULT 0.00,
  datecreated date NOT NULL,
  notes text NOT NULL,
  groupid int(10) NOT NULL DEFAULT 0,
  lastlogin datetime DEFAULT NULL,
  status enum('Active','Inactive','Closed') NOT NULL DEFAULT 'Active',
  language text NOT NULL,
  email_verified tinyint(1) NOT NULL DEFAULT 0,
  created_at timestamp NULL DEFAULT NULL,
  updated_at timestamp NULL DEFAULT NULL,
  PRIMARY KEY (id),
  KEY email (email(64))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
INSERT INTO tblclientgroups (id, groupname, groupcolour) VALUES (1, 'Wholesale', '#cccccc'), (2, 'VIP', '#ffcc00')`

func whmcsFixture(t *testing.T) presetFixture {
	m := dbtest.StartMariaDB(t)
	db := m.CreateDatabase(t, "fixture_whmcs")
	m.Exec(t, db, whmcsSchema)
	client := func(id int, company, phone, status string, group int) string {
		return fmt.Sprintf("(%d, 'uuid-%d', '', '', %s, '', '', '', '', '', '', '', %s, '', '', '', CURDATE(), '', %d, %s, '')",
			id, id, mysqlQuote(company), mysqlQuote(phone), group, mysqlQuote(status))
	}
	m.Exec(t, db, `INSERT INTO tblclients (id, uuid, firstname, lastname, companyname, email, address1, address2, city, state, postcode, country,
 phonenumber, password, authmodule, authdata, datecreated, notes, groupid, status, language) VALUES `+strings.Join([]string{
		client(1, "Acme Ltd", "+44 20 7946 0000", "Active", 2),
		client(2, "Closed Co", "+44 20 7946 0001", "Closed", 1),
		client(3, "Old Inc", "+44 20 7946 0002", "Closed", 1),
		client(4, "Wholesale Partner", "+44 20 7946 0003", "Inactive", 1),
	}, ", "))
	type wu struct {
		id                     int
		first, last, mail, pwd string
	}
	users := []wu{
		{1, "Will", "Owner", "Will@Example.org", bcryptOf(t, Password)},
		{2, "Mel", "Legacy", "mel@example.org", saltedMD5("Wh5a", Password, "Wh5a")},
		{3, "Cid", "Closed", "cid@example.org", bcryptOf(t, Password)},
		{4, "Nia", "New", "nia@example.org", bcryptOf(t, Password)},
	}
	for _, u := range users {
		m.Exec(t, db, "INSERT INTO tblusers (id, first_name, last_name, email, password) VALUES (?, ?, ?, ?, ?)", u.id, u.first, u.last, u.mail, u.pwd)
	}
	// Will owns Acme and also belongs to Closed Co (linked first); Mel
	// works for Acme and Wholesale Partner (Inactive, owned); Cid's only
	// clients are closed; Nia has none yet.
	m.Exec(t, db, `INSERT INTO tblusers_clients (id, auth_user_id, client_id, owner, permissions) VALUES
(1, 1, 2, 0, ''), (2, 1, 1, 1, ''), (3, 2, 1, 0, 'tickets'), (4, 2, 4, 1, ''), (5, 3, 3, 1, ''), (6, 3, 2, 0, '')`)
	dsn := mariadbReader(t, m, db, "tblusers", "tblusers_clients", "tblclients", "tblclientgroups")
	return presetFixture{
		preset: "whmcs", driver: DriverMySQL, dsn: dsn,
		userGroups: "\t\t\tVIP \"VIP Customers\"\n\t\t\tWholesale Resellers",
		staffTeams: "\t\t\tVIP \"Account Managers\"",
		rows:       func(t testing.TB) int { return countRows(t, m.DB(t, db), "tblusers") },
		cases: []presetCase{
			{name: "bcrypt, owned open client", user: "Will@Example.org", pw: Password, group: "VIP Customers", team: "Account Managers", fullName: "Will Owner", org: "Acme Ltd", email: "Will@Example.org"},
			{name: "wrong password", user: "Will@Example.org", pw: "wrong", msg: msgInvalid},
			{name: "unknown", user: "nobody@example.org", pw: Password, msg: msgInvalid},
			{name: "e-mail differing in case", user: "will@example.org", pw: Password, group: "VIP Customers", org: "Acme Ltd"},
			{name: "md5 salted (< 6.3), owned client is inactive not closed", user: "mel@example.org", pw: Password, group: "Resellers", org: "Wholesale Partner"},
			{name: "every client closed", user: "cid@example.org", pw: Password, msg: msgInvalid},
			{name: "no client yet", user: "nia@example.org", pw: Password, group: "Registered"},
			{name: "no login by name", user: "Will", pw: Password, msg: msgInvalid},
		},
	}
}
