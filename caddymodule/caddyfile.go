package caddymodule

import (
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/kayako-loginshare/caddy-loginshare/internal/caddyopts"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("loginshare", parseCaddyfile)
	// Before basic_auth: a site-wide basic_auth must not block Kayako's
	// callback, and handle/route blocks that wrap Kayako come later.
	httpcaddyfile.RegisterDirectiveOrder("loginshare", httpcaddyfile.Before, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	loginshare [<matcher>] {
//		user_path        <path>            # default /loginshare/user
//		staff_path       <path>            # default /loginshare/staff
//		allow_from       <ip|cidr...>      # repeatable; default anyone (WARN)
//		secret           <value>           # URL must carry ?key=<value>
//		staff_interfaces <name...>         # default staff winapp staffapi mobile intranet
//		remember_me_hashes refuse|try      # default refuse
//		timeout          <duration>        # default 10s
//		failure_delay    <duration>        # default 250ms
//		failure_jitter   <duration>        # default 100ms
//		max_field_bytes  <n>               # default 1024
//		max_body         <size>            # default 16KiB
//		max_concurrent   <n>               # default 64
//		message_invalid     <text>
//		message_unavailable <text>
//		message_denied      <text>
//		messages {                         # the same three, as a block
//			invalid <text>
//			unavailable <text>
//			denied <text>
//		}
//		throttle off | {
//			per_user <n> [<window>]        # default 5 10m
//			per_ip   <n> [<window>]        # default 20 10m
//			ban      <duration>            # default 15m
//			max_keys <n>                   # default 100000
//			zone     <name>                # share state with handlers naming it
//			store memory | redis { ... }   # default memory; redis: shared by instances
//		}
//		user_groups {
//			<group DN or name> <usergroup title>
//			default <title>
//		}
//		staff_teams {
//			<group DN or name> <team title>
//			default <title>
//		}
//		backend <name> {                   # repeatable, tried in order
//			name <text>                    # every backend: its name in logs and metrics
//			...                            # the backend's own options
//		}
//		user_backend  <name> { ... }       # repeatable: the user endpoint's own chain
//		staff_backend <name> { ... }       # repeatable: the staff endpoint's own chain
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := caddyopts.Seen{}
	once := func(name string) error { return seen.Once(d, name) }
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "user_path", "staff_path", "secret", "remember_me_hashes",
			"message_invalid", "message_unavailable", "message_denied":
			if err := once(opt); err != nil {
				return err
			}
			v, err := caddyopts.String(d)
			if err != nil {
				return err
			}
			switch opt {
			case "user_path", "staff_path":
				if err := caddyopts.Check(d, checkPath(opt, v)); err != nil {
					return err
				}
				if opt == "user_path" {
					h.UserPath = v
				} else {
					h.StaffPath = v
				}
			case "secret":
				if v == "" {
					return d.Err("secret must not be empty")
				}
				h.Secret = v
			case "remember_me_hashes":
				if err := caddyopts.Check(d, checkRememberMe(v)); err != nil {
					return err
				}
				h.RememberMeHashes = v
			default:
				if err := h.setMessage(d, strings.TrimPrefix(opt, "message_"), v); err != nil {
					return err
				}
			}

		case "messages":
			if d.NextArg() {
				return d.ArgErr()
			}
			for d.NextBlock(1) {
				kind := d.Val()
				var v string
				if !d.Args(&v) || d.NextArg() {
					return d.ArgErr()
				}
				if err := once("message_" + kind); err != nil {
					return err
				}
				if err := h.setMessage(d, kind, v); err != nil {
					return err
				}
			}

		case "allow_from":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			for _, a := range args {
				if _, err := parsePrefix(a); err != nil {
					return d.Errf("allow_from: %v", err)
				}
			}
			h.AllowFrom = append(h.AllowFrom, args...)

		case "staff_interfaces":
			if err := once(opt); err != nil {
				return err
			}
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			for _, a := range args {
				if a != strings.ToLower(a) || strings.TrimSpace(a) == "" {
					return d.Errf("staff interface %q must be lowercase, as Kayako sends it", a)
				}
			}
			h.StaffInterfaces = args

		case "timeout", "failure_delay", "failure_jitter":
			if err := once(opt); err != nil {
				return err
			}
			dur, err := caddyopts.Duration(d)
			if err != nil {
				return err
			}
			switch opt {
			case "timeout":
				if dur <= 0 {
					return d.Errf("timeout must be positive")
				}
				h.Timeout = caddy.Duration(dur)
			case "failure_delay", "failure_jitter":
				// In JSON 0 means "not set", i.e. the default: accepting 0
				// here would silently give 250ms / 100ms instead.
				if dur <= 0 {
					return d.Errf("%s must be positive (0 would mean the default)", opt)
				}
				if opt == "failure_delay" {
					h.FailureDelay = caddy.Duration(dur)
				} else {
					h.FailureJitter = caddy.Duration(dur)
				}
			}

		case "max_field_bytes", "max_concurrent":
			if err := once(opt); err != nil {
				return err
			}
			n, err := caddyopts.PositiveInt(d)
			if err != nil {
				return err
			}
			if opt == "max_field_bytes" {
				h.MaxFieldBytes = n
			} else {
				h.MaxConcurrent = n
			}

		case "max_body":
			if err := once(opt); err != nil {
				return err
			}
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			n, err := humanize.ParseBytes(v)
			if err != nil || n == 0 || n > 1<<30 {
				return d.Errf("max_body %q is not a size between 1B and 1GiB", v)
			}
			h.MaxBody = int64(n)

		case "throttle":
			if err := once(opt); err != nil {
				return err
			}
			t, err := parseThrottle(d)
			if err != nil {
				return err
			}
			h.Throttle = t

		case "user_groups", "staff_teams":
			if err := once(opt); err != nil {
				return err
			}
			m, err := parseMapping(d)
			if err != nil {
				return err
			}
			if opt == "user_groups" {
				h.UserGroups = m
			} else {
				h.StaffTeams = m
			}

		case "backend", "user_backend", "staff_backend":
			if !d.NextArg() {
				return d.ArgErr()
			}
			name := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "loginshare.backends."+name)
			if err != nil {
				return err
			}
			var warnings []caddyconfig.Warning
			raw := caddyconfig.JSONModuleObject(unm, "backend", name, &warnings)
			switch opt {
			case "backend":
				h.BackendsRaw = append(h.BackendsRaw, raw)
			case "user_backend":
				h.UserBackendsRaw = append(h.UserBackendsRaw, raw)
			default:
				h.StaffBackendsRaw = append(h.StaffBackendsRaw, raw)
			}

		default:
			return d.Errf("unknown loginshare option %q", opt)
		}
	}
	return nil
}

func (h *Handler) setMessage(d *caddyfile.Dispenser, kind, v string) error {
	if strings.TrimSpace(v) == "" {
		return d.Errf("message %s must not be empty", kind)
	}
	if err := caddyopts.Check(d, checkNoPercent("message "+kind, v)); err != nil {
		return err
	}
	switch kind {
	case "invalid":
		h.MessageInvalid = v
	case "unavailable":
		h.MessageUnavailable = v
	case "denied":
		h.MessageDenied = v
	default:
		return d.Errf("unknown message %q (want invalid, unavailable or denied)", kind)
	}
	return nil
}

func parseThrottle(d *caddyfile.Dispenser) (*ThrottleConfig, error) {
	t := new(ThrottleConfig)
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return nil, d.Errf("throttle takes `off` or a block, not %q", d.Val())
		}
		if d.NextBlock(1) {
			return nil, d.Err("throttle off takes no block")
		}
		t.Off = true
		return t, nil
	}
	seen := map[string]bool{}
	for d.NextBlock(1) {
		opt := d.Val()
		if seen[opt] {
			return nil, d.Errf("throttle %s given more than once", opt)
		}
		seen[opt] = true
		switch opt {
		case "per_user", "per_ip":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return nil, d.ArgErr()
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 0 {
				return nil, d.Errf("throttle %s: %q is not a count ≥ 0", opt, args[0])
			}
			var window time.Duration
			if len(args) == 2 {
				window, err = caddy.ParseDuration(args[1])
				if err != nil || window <= 0 {
					return nil, d.Errf("throttle %s: %q is not a positive duration", opt, args[1])
				}
			}
			if opt == "per_user" {
				t.PerUser, t.PerUserWindow = &n, caddy.Duration(window)
			} else {
				t.PerIP, t.PerIPWindow = &n, caddy.Duration(window)
			}
		case "ban":
			dur, err := caddyopts.Duration(d)
			if err != nil {
				return nil, err
			}
			if dur <= 0 {
				return nil, d.Err("throttle ban must be positive")
			}
			t.Ban = caddy.Duration(dur)
		case "max_keys":
			n, err := caddyopts.PositiveInt(d)
			if err != nil {
				return nil, err
			}
			t.MaxKeys = n
		case "store":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			name := d.Val()
			if _, err := caddy.GetModule("loginshare.throttle.stores." + name); err != nil {
				return nil, d.Errf("unknown throttle store %q (want memory or redis)", name)
			}
			unm, err := caddyfile.UnmarshalModule(d, "loginshare.throttle.stores."+name)
			if err != nil {
				return nil, err
			}
			var warnings []caddyconfig.Warning
			t.StoreRaw = caddyconfig.JSONModuleObject(unm, "backend", name, &warnings)
		case "zone":
			z, err := caddyopts.String(d)
			if err != nil {
				return nil, err
			}
			if err := caddyopts.Check(d, checkZoneName(z)); err != nil {
				return nil, err
			}
			t.Zone = z
		default:
			return nil, d.Errf("unknown throttle option %q", opt)
		}
	}
	return t, nil
}

func parseMapping(d *caddyfile.Dispenser) (*Mapping, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	m := &Mapping{}
	for d.NextBlock(1) {
		key := d.Val()
		var title string
		if !d.Args(&title) || d.NextArg() {
			return nil, d.Errf("want `<group> <title>` (quote titles with spaces)")
		}
		if strings.TrimSpace(title) == "" {
			return nil, d.Err("title must not be empty")
		}
		if key == "default" {
			if m.Default != "" {
				return nil, d.Err("default given more than once")
			}
			m.Default = title
			continue
		}
		if _, err := compileLine(key, title); err != nil {
			return nil, caddyopts.Check(d, err)
		}
		m.Map = append(m.Map, MappingLine{Group: key, Title: title})
	}
	return m, nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
