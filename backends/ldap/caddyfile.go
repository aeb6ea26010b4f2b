package ldap

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/kayako-loginshare/caddy-loginshare/internal/caddyopts"
)

// UnmarshalCaddyfile sets up the backend from Caddyfile tokens; the first
// token is the module name. Syntax (defaults in comments):
//
//	ldap {
//		name <text>                       # its name in audit lines and metrics; default ldap
//		servers ldaps://dc1.example.com ldaps://dc2.example.com   # ordered, repeatable; required
//		starttls                          # upgrade ldap:// URLs with StartTLS
//		insecure_plaintext                # required for ldap:// without StartTLS
//		tls {
//			ca_file     <pem>             # default: system roots
//			server_name <name>            # default: each server's host
//			client_cert <cert.pem> <key.pem>
//			insecure_skip_verify          # loud WARN
//		}
//		preset activedirectory | openldap | freeipa | lldap
//		bind_dn       <dn>                # service account; default: anonymous searches
//		bind_password <secret>            # {env.NAME} or {file./abs/path}, resolved at provisioning
//		base_dn       <dn>
//		user_base_dn  <dn>                # default: base_dn (freeipa, lldap: their user container)
//		user_filter   "(&(objectClass=person)(uid={username}))"   # default: preset's, else this
//		bind_dn_template "uid={username},ou=people,dc=example,dc=org"  # direct bind, no service account
//		attributes {
//			username     uid              # activedirectory: sAMAccountName
//			first_name   givenName
//			last_name    sn
//			full_name    cn               # activedirectory: displayName
//			email        mail             # several attributes, repeatable; activedirectory: mail proxyAddresses
//			phone        telephoneNumber
//			mobile       mobile
//			designation  title
//			organization o
//		}
//		groups memberof | search "<filter with {dn} or {username}>" | nested | none   # repeatable, merged
//		group_base_dn <dn>                # default: base_dn
//		group_name_attribute cn
//		username_transform none | strip_domain   # activedirectory: strip_domain
//		dial_timeout    3s
//		request_timeout 5s
//		pool_size       8
//		bind_pool_size  8
//		pool_acquire_timeout 2s
//		idle_timeout    5m
//		server_cooldown 30s
//	}
//
// servers, email and groups accumulate when repeated; any other option given
// twice is an error, as is an unknown one.
func (l *LDAP) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := caddyopts.Seen{}
	// Where each server URL was written, so a TLS-mode error found at the
	// end of the block still names the servers line.
	serverAt := map[string]string{}
	once := func(name string) error { return seen.Once(d, name) }
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "name":
			if err := once(opt); err != nil {
				return err
			}
			v, err := caddyopts.NonEmptyString(d, opt)
			if err != nil {
				return err
			}
			l.Name = v

		case "servers":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			for _, s := range args {
				// The TLS mode may come later in the block: check the URL
				// shape here, the ldap:// rule in Provision.
				if err := checkServerURL(s, true, true); err != nil {
					return caddyopts.Check(d, err)
				}
			}
			for _, s := range args {
				if _, ok := serverAt[s]; !ok {
					serverAt[s] = fmt.Sprintf("%s:%d", d.File(), d.Line())
				}
			}
			l.Servers = append(l.Servers, args...)

		case "starttls", "insecure_plaintext":
			if err := once(opt); err != nil {
				return err
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			if opt == "starttls" {
				l.StartTLS = true
			} else {
				l.InsecurePlaintext = true
			}

		case "tls":
			if err := once(opt); err != nil {
				return err
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			if err := l.unmarshalTLS(d); err != nil {
				return err
			}

		case "attributes":
			if err := once(opt); err != nil {
				return err
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			if err := l.unmarshalAttributes(d); err != nil {
				return err
			}

		case "groups":
			if !d.NextArg() {
				return d.ArgErr()
			}
			g := GroupLookup{Method: d.Val()}
			if g.Method == GroupsSearch {
				if !d.NextArg() {
					return d.Errf("groups search needs a filter with {dn} or {username}")
				}
				g.Filter = d.Val()
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			if err := checkGroupLookup(g); err != nil {
				return caddyopts.Check(d, err)
			}
			l.Groups = append(l.Groups, g)

		case "preset", "bind_dn", "bind_password", "base_dn", "user_base_dn", "user_filter", "bind_dn_template",
			"group_base_dn", "group_name_attribute", "username_transform":
			if err := once(opt); err != nil {
				return err
			}
			var v string
			if !d.Args(&v) || d.NextArg() {
				return caddyopts.ArgCount(d, opt) // never the token: it may be part of bind_password
			}
			if v == "" {
				return d.Errf("%s must not be empty", opt)
			}
			var err error
			switch opt {
			case "preset":
				err, l.Preset = checkPreset(v), v
			case "bind_dn":
				err, l.BindDN = checkDN(opt, v), v
			case "bind_password":
				l.BindPassword = v
			case "base_dn":
				err, l.BaseDN = checkDN(opt, v), v
			case "user_base_dn":
				err, l.UserBaseDN = checkDN(opt, v), v
			case "group_base_dn":
				err, l.GroupBaseDN = checkDN(opt, v), v
			case "user_filter":
				err, l.UserFilter = checkUserFilter(v), v
			case "bind_dn_template":
				err, l.BindDNTemplate = checkTemplate(v), v
			case "group_name_attribute":
				l.GroupNameAttribute = v
			case "username_transform":
				err, l.UsernameTransform = checkTransform(v), v
			}
			if err != nil {
				return caddyopts.Check(d, err)
			}

		case "dial_timeout", "request_timeout", "pool_acquire_timeout", "idle_timeout", "server_cooldown":
			if err := once(opt); err != nil {
				return err
			}
			dur, err := caddyopts.PositiveDuration(d, opt)
			if err != nil {
				return err
			}
			cd := caddy.Duration(dur)
			switch opt {
			case "dial_timeout":
				l.DialTimeout = cd
			case "request_timeout":
				l.RequestTimeout = cd
			case "pool_acquire_timeout":
				l.PoolAcquireTimeout = cd
			case "idle_timeout":
				l.IdleTimeout = cd
			case "server_cooldown":
				l.ServerCooldown = cd
			}

		case "pool_size", "bind_pool_size":
			if err := once(opt); err != nil {
				return err
			}
			n, err := caddyopts.PositiveInt(d)
			if err != nil {
				return err
			}
			if n > 1024 {
				return d.Errf("%s %d: want a number from 1 to 1024", opt, n)
			}
			if opt == "pool_size" {
				l.PoolSize = n
			} else {
				l.BindPoolSize = n
			}

		default:
			return d.Errf("unknown ldap option %q", opt)
		}
	}
	if l.BindDNTemplate != "" && (l.UserFilter != "" || l.BindDN != "") {
		return d.Err("bind_dn_template (direct bind) cannot be combined with user_filter or bind_dn")
	}
	for _, s := range l.Servers {
		if err := checkServerURL(s, l.StartTLS, l.InsecurePlaintext); err != nil {
			return fmt.Errorf("%s - Error during parsing: %v", serverAt[s], err)
		}
	}
	return nil
}

func (l *LDAP) unmarshalTLS(d *caddyfile.Dispenser) error {
	l.TLS = new(TLS)
	seen := caddyopts.Seen{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("tls %s given more than once", opt)
		}
		seen[opt] = true
		switch opt {
		case "ca_file", "server_name":
			var v string
			if !d.Args(&v) || d.NextArg() || v == "" {
				return d.ArgErr()
			}
			if opt == "ca_file" {
				l.TLS.CAFile = v
			} else {
				l.TLS.ServerName = v
			}
		case "client_cert":
			if !d.Args(&l.TLS.ClientCertFile, &l.TLS.ClientKeyFile) || d.NextArg() {
				return d.Errf("client_cert needs <cert.pem> <key.pem>")
			}
		case "insecure_skip_verify":
			if d.NextArg() {
				return d.ArgErr()
			}
			l.TLS.InsecureSkipVerify = true
		default:
			return d.Errf("unknown tls option %q", opt)
		}
	}
	return nil
}

func (l *LDAP) unmarshalAttributes(d *caddyfile.Dispenser) error {
	l.Attributes = new(Attributes)
	a := l.Attributes
	seen := caddyopts.Seen{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if opt == "email" {
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			a.Email = append(a.Email, args...)
			continue
		}
		if seen[opt] {
			return d.Errf("attributes %s given more than once", opt)
		}
		seen[opt] = true
		var v string
		if !d.Args(&v) || d.NextArg() || v == "" {
			return d.ArgErr()
		}
		switch opt {
		case "username":
			a.Username = v
		case "first_name":
			a.FirstName = v
		case "last_name":
			a.LastName = v
		case "full_name":
			a.FullName = v
		case "phone":
			a.Phone = v
		case "mobile":
			a.Mobile = v
		case "designation":
			a.Designation = v
		case "organization":
			a.Organization = v
		default:
			return d.Errf("unknown attributes option %q", opt)
		}
	}
	return nil
}

// Interface guard.
var _ caddyfile.Unmarshaler = (*LDAP)(nil)
