package loginsharecmd

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/spf13/cobra"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/caddymodule"
)

// probeBudget bounds a whole --probe run; each backend's own dial and request
// timeouts bound each server.
const probeBudget = 2 * time.Minute

func newTestCommand(sio stdio, exit func(int) error) *cobra.Command {
	c := &cobra.Command{
		Use:   "test --config <file>",
		Short: "Runs one login through this plugin's own configuration and tells its story",
		Long: `
Loads a Caddy config (a Caddyfile or JSON; --envfile as caddy run has it, so
{env.*} and {$*} resolve as they will under the service manager), provisions
its loginshare handler, only that one, without starting any server or the
admin API, and runs one login through the handler's own code path: the
staff interface check, backends, group mapping and the document, with the
throttle off for this run (nobody gets banned, no ban refuses the test).

It prints the login's story step by step: which backend and server answered,
the entry or row found, the attributes read, the groups and how they were
found, which mapping line matched or why none did; then the outcome class
with its reason, the Kayako title and the XML document Kayako would receive.
Passwords and secrets (bind_password, a DSN's password) appear in no output.

With several loginshare handlers in the config, --host picks the site (as
its host matchers would) and --path the handler whose user_path or
staff_path it is; a --path that is a staff_path makes it a staff login.

The password is read from the terminal without echo, or as one line from
standard input when that is not a terminal; it is never a flag. --username
is asked for when missing and a terminal is there.

--probe logs nobody in: it asks every backend of the handler that can be
probed to reach each of its servers now (LDAP: connection, TLS, the service
bind with bind_password, the root DSE; SQL: a ping) and prints one line per
server. Backends without servers (static) say "no probe".

Exit status: 0 the login succeeded (with --probe: every server answered);
1 a definite failure (invalid credentials, unknown user, disabled, not
authorised...); 2 unavailable (a directory down or refusing the service
account) or a configuration error; 3 usage error.
`,
		Example: `  caddy loginshare test --config /etc/caddy/Caddyfile --username jdoe
  caddy loginshare test --config Caddyfile --envfile /etc/caddy/env --staff -u jdoe --host helpdesk.example.com
  printf '%s\n' "$PASSWORD" | caddy loginshare test --config caddy.json -u jdoe --json
  caddy loginshare test --config Caddyfile --probe`,
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := c.Flags()
	f.StringP("config", "c", "", "the Caddy config file (Caddyfile or JSON)")
	f.StringP("adapter", "a", "", "the config adapter (default: caddyfile for files named Caddyfile*, else JSON)")
	f.StringSlice("envfile", nil, "environment file(s) to load first, as caddy run --envfile does")
	f.Bool("staff", false, "a staff login (the staff endpoint) instead of a user login")
	f.StringP("username", "u", "", "the username (asked for when missing and a terminal is there)")
	f.String("interface", "staff", "the staff interface Kayako sends: staff, admin, winapp, staffapi… (with --staff)")
	f.String("host", "", "the site's host name, to pick a handler when the config has several")
	f.String("path", "", "the handler's user_path or staff_path, to pick a handler when the config has several")
	f.Bool("json", false, "print one JSON object instead of text")
	f.Bool("probe", false, "check that every server of the handler's backends answers (no login)")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		return exit(testLogin(cmd, args, sio))
	}
	return c
}

type testOptions struct {
	config, adapter string
	envfiles        []string
	staff, json     bool
	probe           bool
	username, iface string
	host, path      string
}

// testLogin runs `caddy loginshare test` and returns its exit status.
func testLogin(cmd *cobra.Command, args []string, sio stdio) int {
	f := cmd.Flags()
	var o testOptions
	o.config, _ = f.GetString("config")
	o.adapter, _ = f.GetString("adapter")
	o.envfiles, _ = f.GetStringSlice("envfile")
	o.staff, _ = f.GetBool("staff")
	o.json, _ = f.GetBool("json")
	o.probe, _ = f.GetBool("probe")
	o.username, _ = f.GetString("username")
	o.iface, _ = f.GetString("interface")
	o.host, _ = f.GetString("host")
	o.path, _ = f.GetString("path")
	switch {
	case len(args) > 0:
		return usage(sio, cmd, "unexpected argument %q (the config is given with --config)", args[0])
	case o.config == "":
		return usage(sio, cmd, "--config is required")
	case o.probe && (f.Changed("username") || o.staff || f.Changed("interface")):
		return usage(sio, cmd, "--probe logs nobody in: drop --username, --staff and --interface")
	case f.Changed("interface") && !o.staff:
		return usage(sio, cmd, "--interface is sent only with staff logins: add --staff")
	}

	rep := &testReport{opts: o}
	broken := func(format string, a ...any) int {
		rep.configErr = fmt.Sprintf(format, a...)
		return rep.print(sio, cmd, exitBroken)
	}
	for _, ef := range o.envfiles {
		if err := loadEnvFile(ef); err != nil {
			return broken("%v", err)
		}
	}
	js, adapter, warnings, err := loadConfig(o.config, o.adapter)
	if err != nil {
		return broken("%v", err)
	}
	rep.adapter, rep.warnings = adapter, warnings
	sites, err := findSites(js)
	if err != nil {
		return broken("%v", err)
	}
	if len(sites) == 0 {
		return broken("the config has no loginshare handler")
	}
	s, err := choose(sites, o.host, o.path)
	var ce chooseError
	if errors.As(err, &ce) {
		fmt.Fprintf(sio.err, "%s: %v", cmd.CommandPath(), err)
		return exitUsage
	}
	rep.site = &s
	rep.secrets = secretsOf(s.raw)

	rep.endpoint = "user"
	if o.staff {
		rep.endpoint = "staff"
	}
	if o.path != "" && !o.probe {
		switch cp := path.Clean(o.path); {
		case cp == s.staffPath && !o.staff:
			rep.endpoint = "staff" // the path says so
		case cp == s.userPath && o.staff:
			return usage(sio, cmd, "--path %s is the user endpoint but --staff asks for a staff login", o.path)
		}
	}

	// Provision this handler only: no server, no admin API, no other app.
	capture := captureStderr()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	var cleanupOnce sync.Once
	cleanup := func() {
		cleanupOnce.Do(func() {
			c := capture
			if c == nil {
				c = captureStderr()
			}
			cancel() // runs the modules' Cleanup: pools closed, background probes stopped
			rep.logs = append(rep.logs, c.stop()...)
			capture = nil
		})
	}
	defer cleanup()
	mod, err := ctx.LoadModuleByID("http.handlers.loginshare", s.raw)
	rep.logs = append(rep.logs, capture.stop()...)
	capture = nil
	if err != nil {
		cleanup()
		return broken("provisioning the handler: %v", err)
	}
	h := mod.(*caddymodule.Handler)

	if o.probe {
		rep.probes = probeAll(ctx, h)
		cleanup()
		code := exitLogin
		for _, p := range rep.probes {
			if p.prober && p.err != nil {
				code = exitBroken
			}
		}
		return rep.print(sio, cmd, code)
	}

	username, password, ok := readCredentials(cmd, sio, o.username)
	if !ok {
		return exitUsage
	}
	rep.password = password
	c := backends.Credentials{Username: username, Password: password, IPAddress: "127.0.0.1"}
	if rep.endpoint == "staff" {
		c.Interface = o.iface
	}
	rep.username = username
	if class, reason := fieldChecks(h, c); class != "" {
		// ServeHTTP refuses these before Login, in its form checks.
		rep.result = caddymodule.LoginResult{Endpoint: rep.endpoint, Username: username, Outcome: class,
			Reason: reason + " (refused by the form checks, before any backend)"}
		cleanup()
		return rep.print(sio, cmd, exitFor(class))
	}

	rec := &recorder{}
	capture = captureStderr()
	lctx := backends.WithTrace(caddymodule.WithoutThrottle(ctx), rec)
	rep.result = h.Login(lctx, rep.endpoint, c)
	rep.steps = rec.all()
	cleanup()
	return rep.print(sio, cmd, exitFor(rep.result.Outcome))
}

// fieldChecks are the handler's form checks that Login leaves to ServeHTTP:
// what Kayako could send that the endpoint refuses before any backend.
func fieldChecks(h *caddymodule.Handler, c backends.Credentials) (backends.Class, string) {
	for _, f := range []struct{ name, v string }{{"username", c.Username}, {"password", c.Password}, {"interface", c.Interface}} {
		switch {
		case len(f.v) > h.MaxFieldBytes:
			return backends.BadRequest, "field " + f.name + " longer than max_field_bytes"
		case strings.IndexByte(f.v, 0) >= 0:
			return backends.BadRequest, "NUL byte in field " + f.name
		case !utf8.ValidString(f.v):
			return backends.BadRequest, "invalid UTF-8 in field " + f.name
		}
	}
	if strings.TrimSpace(c.Password) == "" {
		return backends.BadRequest, "empty password"
	}
	return "", ""
}

// exitFor is the exit status of an outcome class.
func exitFor(class backends.Class) int {
	switch class {
	case backends.OK:
		return exitLogin
	case backends.Unavailable, backends.AmbiguousUser:
		// ambiguous_user is a configuration error: the filter matches
		// several entries.
		return exitBroken
	}
	return exitRefused
}

// recorder collects a login's story.
type recorder struct {
	mu    sync.Mutex
	steps []backends.Step
}

func (r *recorder) Record(s backends.Step) {
	r.mu.Lock()
	r.steps = append(r.steps, s)
	r.mu.Unlock()
}

func (r *recorder) all() []backends.Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]backends.Step(nil), r.steps...)
}

// probeLine is one server's probe answer, or a backend without a probe.
type probeLine struct {
	backend   string
	module    string
	endpoints string // "user", "staff" or "user and staff"
	prober    bool
	server    string
	detail    string
	err       error
}

// probeAll probes every backend of the handler's chains once, in chain
// order (user chain first), a backend both endpoints share only once.
func probeAll(ctx context.Context, h *caddymodule.Handler) []probeLine {
	user, staff := h.Chains()
	type entry struct {
		nb        backends.Named
		endpoints []string
	}
	var order []*entry
	seen := map[string]*entry{}
	for _, ch := range []struct {
		endpoint string
		chain    []backends.Named
	}{{"user", user}, {"staff", staff}} {
		for _, nb := range ch.chain {
			if e, ok := seen[nb.Name]; ok {
				e.endpoints = append(e.endpoints, ch.endpoint)
				continue
			}
			e := &entry{nb: nb, endpoints: []string{ch.endpoint}}
			seen[nb.Name] = e
			order = append(order, e)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, probeBudget)
	defer cancel()
	var out []probeLine
	for _, e := range order {
		base := probeLine{backend: e.nb.Name, endpoints: strings.Join(e.endpoints, " and ")}
		if m, ok := e.nb.Backend.(caddy.Module); ok {
			base.module = strings.TrimPrefix(string(m.CaddyModule().ID), "loginshare.backends.")
		}
		p, ok := e.nb.Backend.(backends.Prober)
		if !ok {
			out = append(out, base)
			continue
		}
		base.prober = true
		results := p.Probe(pctx)
		if len(results) == 0 {
			l := base
			l.err = errors.New("the backend reported no server to probe")
			out = append(out, l)
		}
		for _, r := range results {
			l := base
			l.server, l.detail, l.err = r.Server, r.Detail, r.Err
			out = append(out, l)
		}
	}
	return out
}
