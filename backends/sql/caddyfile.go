package sql

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/kayako-loginshare/caddy-loginshare/internal/caddyopts"
)

// UnmarshalCaddyfile sets up the backend from Caddyfile tokens; the first
// token is the module name. Syntax (defaults in comments):
//
//	sql {
//		name    <text>                      # in audit lines and metrics; default: sql, sql#2, …
//		driver  postgres | mysql | sqlite   # required
//		dsn     <data source name>          # required; use {env.NAME} or {file./abs/path}; never logged
//		preset  generic | wordpress | joomla | drupal7 | drupal | django | whmcs   # default generic
//		table_prefix <prefix>               # replaces {prefix} in the queries; letters, digits, _; default: the preset's (wordpress wp_; joomla: required)
//		user_query   "<SELECT …>"           # required with generic, else the preset's; {username} is a bound parameter
//		groups_query "<SELECT …>"           # optional; first column, one group per row; {id} {username}
//		hashes  <format> ...                # accepted stored formats; repeatable; default: the preset's
//		pool_size         8
//		query_timeout     5s
//		conn_max_lifetime 30m
//	}
//
// user_query's result columns are the mapping (id, username, password,
// email, email2…, first_name, last_name, full_name, phone, mobile,
// designation, organization, disabled, groups). For example:
//
//	backend sql {
//		driver postgres
//		dsn {env.SHOP_DSN}
//		user_query "SELECT id, login AS username, pass_hash AS password, email FROM customers WHERE login = {username} OR lower(email) = lower({username})"
//		groups_query "SELECT g.name FROM customer_groups cg JOIN groups g ON g.id = cg.group_id WHERE cg.customer_id = {id}"
//	}
//
// With an application preset, the DSN is the whole configuration:
//
//	backend sql {
//		driver mysql
//		dsn {env.WORDPRESS_DSN}
//		preset wordpress
//	}
//
// hashes accumulates when repeated; any other option given twice is an
// error, as is an unknown one. The queries are checked once the block is
// read, for the driver it names.
func (s *SQL) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := caddyopts.Seen{}
	// Queries are checked for the driver as soon as both are known; a
	// query written before the driver is checked at the end of the block,
	// whose error then names the query's own line too.
	var userAt, groupsAt string
	checked := false
	checkNow := func() error {
		if checked || s.Driver == "" || (s.UserQuery == "" && presets[s.presetOrDefault()].userQuery == "") {
			return nil
		}
		checked = true
		return s.checkCaddyfileQueries()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		switch opt {
		case "hashes":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			if _, err := checkHashes(append(append([]string(nil), s.Hashes...), args...)); err != nil {
				return caddyopts.Check(d, err)
			}
			s.Hashes = append(s.Hashes, args...)

		case "name", "driver", "dsn", "preset", "table_prefix", "user_query", "groups_query":
			if err := seen.Once(d, opt); err != nil {
				return err
			}
			v, err := caddyopts.NonEmptyString(d, opt)
			if err != nil {
				return err
			}
			switch opt {
			case "name":
				s.Name = v
			case "driver":
				err, s.Driver = checkDriver(v), v
			case "dsn":
				err, s.DSN = checkDSNText(v), v
			case "preset":
				err, s.Preset = checkPreset(v), v
				checked = false // check again, with its queries
			case "table_prefix":
				err, s.TablePrefix = checkTablePrefix(v), v
			case "user_query":
				s.UserQuery, userAt = v, position(d)
				checked = false
			case "groups_query":
				s.GroupsQuery, groupsAt = v, position(d)
				checked = false // check again, with it
			}
			if err := caddyopts.Check(d, err); err != nil {
				return err
			}
			if err := checkNow(); err != nil {
				if opt == "user_query" || opt == "groups_query" {
					return d.Errf("%v", err)
				}
				return d.Errf("%v (user_query at %s, groups_query at %s)", err, orNone(userAt), orNone(groupsAt))
			}

		case "pool_size":
			if err := seen.Once(d, opt); err != nil {
				return err
			}
			n, err := caddyopts.PositiveInt(d)
			if err != nil {
				return err
			}
			s.PoolSize = n

		case "query_timeout", "conn_max_lifetime":
			if err := seen.Once(d, opt); err != nil {
				return err
			}
			dur, err := caddyopts.PositiveDuration(d, opt)
			if err != nil {
				return err
			}
			if opt == "query_timeout" {
				s.QueryTimeout = caddyDuration(dur)
			} else {
				s.ConnMaxLifetime = caddyDuration(dur)
			}

		default:
			return d.Errf("unknown subdirective %q in sql backend", opt)
		}
	}
	if s.Driver == "" {
		return d.Err("sql backend: driver is required (postgres, mysql or sqlite)")
	}
	if s.DSN == "" {
		return d.Err("sql backend: dsn is required")
	}
	if s.UserQuery == "" && presets[s.presetOrDefault()].userQuery == "" {
		return d.Errf("sql backend: user_query is required with preset %s", s.presetOrDefault())
	}
	uq, gq := s.effectiveQueries()
	if err := checkPrefixUsed(s.TablePrefix, uq, gq); err != nil {
		return d.Errf("%v", err)
	}
	if err := checkPresetPrefix(s.presetOrDefault(), s.TablePrefix, uq, gq); err != nil {
		return d.Errf("%v", err)
	}
	if err := checkNow(); err != nil {
		return d.Errf("%v (user_query at %s, groups_query at %s)", err, orNone(userAt), orNone(groupsAt))
	}
	return nil
}

// checkCaddyfileQueries runs the query rules Provision runs, with the
// preset's defaults for what the block does not set.
func (s *SQL) checkCaddyfileQueries() error {
	p := presets[s.presetOrDefault()]
	uq, gq := s.effectiveQueries()
	prefix := s.TablePrefix
	if prefix == "" {
		prefix = p.prefix
	}
	_, _, err := checkQueries(s.Driver, uq, gq, prefix)
	return err
}

// effectiveQueries are the block's queries, or the preset's where it has
// none.
func (s *SQL) effectiveQueries() (userQuery, groupsQuery string) {
	p := presets[s.presetOrDefault()]
	userQuery, groupsQuery = s.UserQuery, s.GroupsQuery
	if userQuery == "" {
		userQuery = p.userQuery
	}
	if groupsQuery == "" {
		groupsQuery = p.groupsQuery
	}
	return userQuery, groupsQuery
}

func (s *SQL) presetOrDefault() string {
	if s.Preset == "" {
		return PresetGeneric
	}
	return s.Preset
}

func position(d *caddyfile.Dispenser) string { return fmt.Sprintf("%s:%d", d.File(), d.Line()) }

func orNone(at string) string {
	if at == "" {
		return "none"
	}
	return at
}

func caddyDuration(d time.Duration) caddy.Duration { return caddy.Duration(d) }
