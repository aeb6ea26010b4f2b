package loginsharecmd

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/kayako-loginshare/caddy-loginshare/caddymodule"
)

// loadConfig reads a config file and adapts it to JSON, as `caddy run`
// decides: --adapter when given, the Caddyfile adapter for a file named
// Caddyfile* or *.caddyfile (not *.json), else JSON as it is.
func loadConfig(file, adapter string) (js []byte, used string, warnings []string, err error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, "", nil, fmt.Errorf("reading the config: %v", err)
	}
	base := strings.ToLower(filepath.Base(file))
	if adapter == "" && filepath.Ext(base) != ".json" &&
		(strings.HasPrefix(base, "caddyfile") || strings.HasSuffix(base, ".caddyfile")) {
		adapter = "caddyfile"
	}
	if adapter == "" {
		if err := json.Unmarshal(b, new(any)); err != nil {
			return nil, "", nil, fmt.Errorf("the config is not valid JSON (%v); a Caddyfile needs --adapter caddyfile unless its name starts with Caddyfile", err)
		}
		return b, "json", nil, nil
	}
	a := caddyconfig.GetAdapter(adapter)
	if a == nil {
		return nil, "", nil, fmt.Errorf("unknown config adapter %q", adapter)
	}
	js, warns, err := a.Adapt(b, map[string]any{"filename": file})
	if err != nil {
		return nil, "", nil, fmt.Errorf("adapting the config with %s: %v", adapter, err)
	}
	for _, w := range warns {
		msg := w.Message
		if w.Directive != "" {
			msg = w.Directive + ": " + msg
		}
		if w.File != "" {
			msg = fmt.Sprintf("%s:%d: %s", w.File, w.Line, msg)
		}
		warnings = append(warnings, msg)
	}
	return js, adapter, warnings, nil
}

// site is one loginshare handler found in a config, with where it sits.
type site struct {
	server    string   // the HTTP server's name (srv0 …)
	listen    []string // its listener addresses
	hosts     []string // the host matchers of the routes around it; none: any host
	userPath  string
	staffPath string
	raw       json.RawMessage // the handler's JSON without its "handler" key
}

// describe names the site without any of its settings' values.
func (s site) describe() string {
	hosts := "any host"
	if len(s.hosts) > 0 {
		hosts = "host " + strings.Join(s.hosts, ", ")
	}
	return fmt.Sprintf("server %s (%s), %s, user_path %s, staff_path %s",
		s.server, strings.Join(s.listen, " "), hosts, s.userPath, s.staffPath)
}

// Just enough of Caddy's HTTP app to walk its routes.
type (
	httpApp struct {
		Servers map[string]struct {
			Listen []string `json:"listen"`
			Routes []route  `json:"routes"`
		} `json:"servers"`
	}
	route struct {
		Match  []map[string]json.RawMessage `json:"match"`
		Handle []json.RawMessage            `json:"handle"`
	}
	handlerHead struct {
		Handler   string  `json:"handler"`
		Routes    []route `json:"routes"` // subroute
		UserPath  string  `json:"user_path"`
		StaffPath string  `json:"staff_path"`
	}
)

// findSites lists every loginshare handler of the config's HTTP servers,
// inside subroutes too, in server-name then route order.
func findSites(config []byte) ([]site, error) {
	var cfg struct {
		Apps struct {
			HTTP *httpApp `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(config, &cfg); err != nil {
		return nil, fmt.Errorf("reading the config's JSON: %v", err)
	}
	if cfg.Apps.HTTP == nil {
		return nil, nil
	}
	names := make([]string, 0, len(cfg.Apps.HTTP.Servers))
	for name := range cfg.Apps.HTTP.Servers {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []site
	for _, name := range names {
		srv := cfg.Apps.HTTP.Servers[name]
		var walk func(routes []route, hosts []string) error
		walk = func(routes []route, hosts []string) error {
			for _, r := range routes {
				h := hosts
				if rh := routeHosts(r); len(rh) > 0 {
					h = rh // the innermost host matcher decides
				}
				for _, raw := range r.Handle {
					var head handlerHead
					if err := json.Unmarshal(raw, &head); err != nil {
						return fmt.Errorf("server %s: a handler is not a JSON object: %v", name, err)
					}
					switch head.Handler {
					case "subroute":
						if err := walk(head.Routes, h); err != nil {
							return err
						}
					case "loginshare":
						var m map[string]json.RawMessage
						if err := json.Unmarshal(raw, &m); err != nil {
							return err
						}
						delete(m, "handler")
						clean, err := json.Marshal(m)
						if err != nil {
							return err
						}
						s := site{server: name, listen: srv.Listen, hosts: h, raw: clean,
							userPath: head.UserPath, staffPath: head.StaffPath}
						if s.userPath == "" {
							s.userPath = caddymodule.DefaultUserPath
						}
						if s.staffPath == "" {
							s.staffPath = caddymodule.DefaultStaffPath
						}
						out = append(out, s)
					}
				}
			}
			return nil
		}
		if err := walk(srv.Routes, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// routeHosts is every host named by the route's host matchers.
func routeHosts(r route) []string {
	var hosts []string
	for _, set := range r.Match {
		raw, ok := set["host"]
		if !ok {
			continue
		}
		var hs []string
		if json.Unmarshal(raw, &hs) == nil {
			hosts = append(hosts, hs...)
		}
	}
	return hosts
}

// hostMatches is Caddy's host matcher for one pattern: case-insensitive,
// a * standing for one whole label.
func hostMatches(pattern, host string) bool {
	pattern, host = strings.ToLower(pattern), strings.ToLower(strings.TrimSuffix(host, "."))
	if pattern == host {
		return true
	}
	if !strings.Contains(pattern, "*") {
		return false
	}
	pl, hl := strings.Split(pattern, "."), strings.Split(host, ".")
	if len(pl) != len(hl) {
		return false
	}
	for i := range pl {
		if pl[i] != "*" && pl[i] != hl[i] {
			return false
		}
	}
	return true
}

// chooseError is a selection the flags do not settle: a usage error.
type chooseError string

func (e chooseError) Error() string { return string(e) }

// choose picks the site --host and --path name. A site whose routes name
// the host beats one that serves any host, as a site block for the name
// beats a catch-all in Caddy.
func choose(sites []site, host, p string) (site, error) {
	cands := sites
	if host != "" {
		var named, any []site
		for _, s := range cands {
			if len(s.hosts) == 0 {
				any = append(any, s)
				continue
			}
			for _, h := range s.hosts {
				if hostMatches(h, host) {
					named = append(named, s)
					break
				}
			}
		}
		cands = named
		if len(cands) == 0 {
			cands = any
		}
	}
	if p != "" {
		cp := path.Clean(p)
		var keep []site
		for _, s := range cands {
			if s.userPath == cp || s.staffPath == cp {
				keep = append(keep, s)
			}
		}
		cands = keep
	}
	switch len(cands) {
	case 1:
		return cands[0], nil
	case 0:
		return site{}, chooseError(fmt.Sprintf("no loginshare handler matches%s; the config has:\n%s", selection(host, p), listSites(sites)))
	}
	return site{}, chooseError(fmt.Sprintf("%d loginshare handlers match%s; pick one with --host and/or --path:\n%s", len(cands), selection(host, p), listSites(cands)))
}

func selection(host, p string) string {
	var parts []string
	if host != "" {
		parts = append(parts, "--host "+host)
	}
	if p != "" {
		parts = append(parts, "--path "+p)
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}

func listSites(sites []site) string {
	var b strings.Builder
	for _, s := range sites {
		b.WriteString("  " + s.describe() + "\n")
	}
	return b.String()
}
