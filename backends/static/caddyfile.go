package static

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"

	"github.com/kayako-loginshare/caddy-loginshare/internal/caddyopts"
)

// UnmarshalCaddyfile sets up the backend from Caddyfile tokens, starting at the
// token "static" (the handler's `backend static { … }`). Syntax:
//
//	static {
//		name <text>                  # its name in audit lines and metrics; default static
//		hash <algorithm>             # an http.authentication.hashes module; default bcrypt
//		user <username> <hash> {     # hash as `caddy hash-password` prints it (or its base64)
//			full_name    <name>
//			first_name   <name>
//			last_name    <name>
//			email        <address> [<address>...]   # accumulates; primary first
//			groups       <name> [<name>...]         # accumulates
//			phone        <number>
//			mobile       <number>
//			designation  <title>
//			organization <name>
//		}
//	}
//
// user may be repeated (usernames are case-insensitive and must be unique) and
// its block may be omitted. Any other option given twice is an error.
func (b *Backend) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume "static"
	if d.NextArg() {
		return d.ArgErr()
	}

	taken := make(map[string]string, len(b.Users))
	for _, u := range b.Users {
		taken[foldKey(u.Username)] = u.Username
	}
	var hashSet bool
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "hash":
			if hashSet {
				return d.Err("hash given twice")
			}
			hashSet = true
			var name string
			if !d.AllArgs(&name) {
				return d.ArgErr()
			}
			mod, err := caddy.GetModule("http.authentication.hashes." + name)
			if err != nil || name == "" {
				return d.Errf("unknown hash algorithm %q: not an http.authentication.hashes module", name)
			}
			inst := mod.New()
			if _, ok := inst.(caddyauth.Comparer); !ok {
				return d.Errf("hash algorithm %q cannot compare passwords", name)
			}
			b.HashRaw = caddyconfig.JSONModuleObject(inst, "algorithm", name, nil)

		case "name":
			if b.Name != "" {
				return d.Err("name given twice")
			}
			v, err := caddyopts.NonEmptyString(d, "name")
			if err != nil {
				return err
			}
			b.Name = v

		case "user":
			u, err := parseUser(d)
			if err != nil {
				return err
			}
			if prev, dup := taken[foldKey(u.Username)]; dup {
				return d.Errf("user %q given twice (usernames are case-insensitive; first as %q)", u.Username, prev)
			}
			taken[foldKey(u.Username)] = u.Username
			b.Users = append(b.Users, u)

		default:
			return d.Errf("unknown subdirective %q in static backend", d.Val())
		}
	}
	return nil
}

// parseUser reads `user <username> <hash> [{ … }]` with d on "user".
func parseUser(d *caddyfile.Dispenser) (User, error) {
	var u User
	if !d.AllArgs(&u.Username, &u.Password) {
		return u, d.ArgErr()
	}
	if u.Username == "" {
		return u, d.Err("empty username")
	}
	if u.Password == "" {
		return u, d.Errf("user %q: empty password hash", u.Username)
	}

	scalars := map[string]*string{
		"full_name":    &u.FullName,
		"first_name":   &u.FirstName,
		"last_name":    &u.LastName,
		"phone":        &u.Phone,
		"mobile":       &u.Mobile,
		"designation":  &u.Designation,
		"organization": &u.Organization,
	}
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		switch opt {
		case "email", "groups":
			vals := d.RemainingArgs()
			if len(vals) == 0 {
				return u, d.ArgErr()
			}
			for _, v := range vals {
				if v == "" {
					return u, d.Errf("user %q: empty %s", u.Username, opt)
				}
			}
			if opt == "email" {
				u.Emails = append(u.Emails, vals...)
			} else {
				u.Groups = append(u.Groups, vals...)
			}
		default:
			dst, ok := scalars[opt]
			if !ok {
				return u, d.Errf("user %q: unknown subdirective %q", u.Username, opt)
			}
			if seen[opt] {
				return u, d.Errf("user %q: %s given twice", u.Username, opt)
			}
			seen[opt] = true
			if !d.AllArgs(dst) {
				return u, d.ArgErr()
			}
			if *dst == "" {
				return u, d.Errf("user %q: empty %s", u.Username, opt)
			}
		}
	}
	return u, nil
}
