// Package caddymodule is the Caddy glue of caddy-loginshare: the HTTP handler
// http.handlers.loginshare, its Caddyfile directive, request guards, group
// mapping, throttling, metrics and the audit log.
package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/caddyopts"
	"github.com/kayako-loginshare/caddy-loginshare/internal/throttle"
)

// Defaults of the Caddyfile contract.
const (
	DefaultUserPath        = "/loginshare/user"
	DefaultStaffPath       = "/loginshare/staff"
	DefaultTimeout         = 10 * time.Second
	DefaultFailureDelay    = 250 * time.Millisecond
	DefaultFailureJitter   = 100 * time.Millisecond
	DefaultMaxFieldBytes   = 1024
	DefaultMaxBody         = 16 << 10
	DefaultMaxConcurrent   = 64
	DefaultMessageInvalid  = "Invalid username or password"
	DefaultMessageUnavail  = "Authentication service unavailable"
	DefaultMessageDenied   = "Access denied"
	DefaultUserGroup       = "Registered"
	maxTimeout             = 90 * time.Second // Kayako gives up after 100 s
	minSafeFailureDelay    = 100 * time.Millisecond
	defaultThrottlePerUser = 5
	defaultThrottlePerIP   = 20
	defaultThrottleWindow  = 10 * time.Minute
	defaultThrottleBan     = 15 * time.Minute
	defaultThrottleMaxKeys = 100000
)

// DefaultStaffInterfaces are the staff interfaces accepted when
// staff_interfaces is not configured. `admin` is deliberately absent: Kayako
// falls back to the local password for the Admin CP, so refusing it never locks
// an administrator out, while accepting it would let the directory make admins.
var DefaultStaffInterfaces = []string{"staff", "winapp", "staffapi", "mobile", "intranet"}

func init() {
	caddy.RegisterModule(new(Handler))
}

// Handler answers Kayako's User and Staff LoginShare callbacks. Requests to
// other paths pass to the next handler untouched.
type Handler struct {
	// Path of Kayako's "User LoginShare URL". Default: /loginshare/user
	UserPath string `json:"user_path,omitempty"`
	// Path of Kayako's "Staff LoginShare URL". Default: /loginshare/staff
	StaffPath string `json:"staff_path,omitempty"`

	// Addresses or CIDR ranges allowed to call the endpoints, compared with
	// Caddy's client IP (so `trusted_proxies` applies). Default: anyone, with a
	// WARN at provision.
	AllowFrom []string `json:"allow_from,omitempty"`
	// If set, the URL must carry ?key=<secret> (compared in constant time).
	// Use {env.NAME} or {file./abs/path}: resolved at provision, never logged.
	Secret string `json:"secret,omitempty"`

	// Staff interfaces accepted on the staff endpoint (exact, lowercase).
	// Default: staff winapp staffapi mobile intranet (not admin).
	StaffInterfaces []string `json:"staff_interfaces,omitempty"`

	// What to do with a staff password that is exactly 40 hexadecimal digits
	// on the staff/admin interfaces: Kayako's staff "remember me" sends the
	// SHA-1 stored in its cookie instead of the password, which can never
	// succeed and, sent to Active Directory, counts against the lockout
	// threshold. "refuse" answers the ordinary failure without asking a
	// backend (and without counting it in the throttle); "try" sends it on
	// like any password (for sites whose staff have such passwords).
	// Default: refuse
	RememberMeHashes string `json:"remember_me_hashes,omitempty"`

	// Budget for the whole request, backends included. Default: 10s (max 90s).
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// Floor on the answer time of every failure, from the start of the request.
	// Default: 250ms
	FailureDelay caddy.Duration `json:"failure_delay,omitempty"`
	// Uniform random jitter added to FailureDelay. Default: 100ms
	FailureJitter caddy.Duration `json:"failure_jitter,omitempty"`
	// Longest accepted username, password, ipaddress or interface, in bytes.
	// Default: 1024
	MaxFieldBytes int `json:"max_field_bytes,omitempty"`
	// Largest accepted request body in bytes; larger gets 413. Default: 16KiB
	MaxBody int64 `json:"max_body,omitempty"`
	// Logins running backend work at once; others wait within their deadline,
	// then answer "unavailable". Default: 64
	MaxConcurrent int `json:"max_concurrent,omitempty"`

	// Message for invalid credentials and every refusal that must not say why.
	// Default: "Invalid username or password"
	MessageInvalid string `json:"message_invalid,omitempty"`
	// Message when no backend could answer. Default: "Authentication service unavailable"
	MessageUnavailable string `json:"message_unavailable,omitempty"`
	// Message for refused callers and staff interfaces. Default: "Access denied"
	MessageDenied string `json:"message_denied,omitempty"`

	// Brute-force protection. Default: on, per_user 5 per 10m, per_ip 20 per
	// 10m, ban 15m, max_keys 100000.
	Throttle *ThrottleConfig `json:"throttle,omitempty"`

	// Directory group → Kayako user group title. Omitted: everyone gets
	// "Registered". Present but empty: everyone is refused.
	UserGroups *Mapping `json:"user_groups,omitempty"`
	// Directory group → Kayako staff team title. Omitted or empty: the staff
	// endpoint refuses everyone.
	StaffTeams *Mapping `json:"staff_teams,omitempty"`

	// Backends, tried in order, for every endpoint without a chain of its
	// own. Modules in namespace loginshare.backends.
	BackendsRaw []json.RawMessage `json:"backends,omitempty" caddy:"namespace=loginshare.backends inline_key=backend"`
	// The user endpoint's own chain; when set, it replaces Backends there
	// (customers from the shop's database, say, never asking the directory).
	UserBackendsRaw []json.RawMessage `json:"user_backends,omitempty" caddy:"namespace=loginshare.backends inline_key=backend"`
	// The staff endpoint's own chain; when set, it replaces Backends there.
	StaffBackendsRaw []json.RawMessage `json:"staff_backends,omitempty" caddy:"namespace=loginshare.backends inline_key=backend"`

	userChain   []backends.Named
	staffChain  []backends.Named
	userPrompt  bool // every backend of userChain is backends.Prompt
	staffPrompt bool
	allow       []netip.Prefix
	secret      []byte
	interfaces  map[string]bool
	userMap     *compiledMapping
	staffMap    *compiledMapping
	throttle    throttle.Store
	throttleKey string
	zone        string
	zoneClaim   *zoneClaim
	sem         chan struct{}
	logger      *zap.Logger
	audit       *zap.Logger
	metrics     *metrics
}

// ThrottleConfig configures brute-force regulation. Failures are counted per
// normalised username and per end-user ipaddress (the POSTed field).
type ThrottleConfig struct {
	// Off disables throttling (with a WARN at provision).
	Off bool `json:"off,omitempty"`
	// Zone names the throttle state this handler shares with every handler
	// naming the same zone (one site under two host names, say); their
	// throttle settings must be equal. Default: a zone of its own for each
	// distinct combination of user_path, staff_path, allow_from, secret,
	// backend chains and throttle settings, so unrelated sites never share
	// counters or bans.
	Zone string `json:"zone,omitempty"`
	// Failures per username within PerUserWindow before a ban. 0 disables. Default: 5
	PerUser *int `json:"per_user,omitempty"`
	// Default: 10m
	PerUserWindow caddy.Duration `json:"per_user_window,omitempty"`
	// Failures per end-user IP (IPv6 per /64) within PerIPWindow. 0 disables. Default: 20
	PerIP *int `json:"per_ip,omitempty"`
	// Default: 10m
	PerIPWindow caddy.Duration `json:"per_ip_window,omitempty"`
	// How long a ban lasts; the backend is not contacted meanwhile. Default: 15m
	Ban caddy.Duration `json:"ban,omitempty"`
	// Bound on tracked keys (counters and bans each) of the memory store and
	// of a shared store's fallback. Default: 100000
	MaxKeys int `json:"max_keys,omitempty"`
	// StoreRaw is where the state lives: memory (default, this instance
	// only) or redis (shared by every instance using the same Redis).
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=loginshare.throttle.stores inline_key=backend"`
}

// Mapping is an ordered list of group → title lines; the first line that any
// of the person's groups satisfies wins, Default applies when none does.
type Mapping struct {
	// Lines in file order.
	Map []MappingLine `json:"map,omitempty"`
	// Title used when no line matches; empty means refuse.
	Default string `json:"default,omitempty"`
}

// MappingLine maps one group to one Kayako title. A group containing "=" is a
// DN compared as a DN; any other group is a name compared case-insensitively.
type MappingLine struct {
	Group string `json:"group"`
	Title string `json:"title"`
}

// CaddyModule returns the Caddy module information.
func (*Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.loginshare",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision applies defaults, resolves secrets, loads the backends and shared
// state. It performs no network I/O.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.audit = h.logger.Named("audit")

	if h.UserPath == "" {
		h.UserPath = DefaultUserPath
	}
	if h.StaffPath == "" {
		h.StaffPath = DefaultStaffPath
	}
	for _, p := range []struct {
		opt string
		v   *string
	}{{"user_path", &h.UserPath}, {"staff_path", &h.StaffPath}} {
		if err := checkPath(p.opt, *p.v); err != nil {
			return err
		}
		*p.v = path.Clean(*p.v)
	}
	if h.UserPath == h.StaffPath {
		return fmt.Errorf("user_path and staff_path are both %q; Kayako needs two distinct URLs", h.UserPath)
	}
	if h.Timeout == 0 {
		h.Timeout = caddy.Duration(DefaultTimeout)
	}
	if h.Timeout < 0 || time.Duration(h.Timeout) > maxTimeout {
		return fmt.Errorf("timeout %s must be positive and at most %s (Kayako gives up after 100s)", time.Duration(h.Timeout), maxTimeout)
	}
	if h.FailureDelay == 0 {
		h.FailureDelay = caddy.Duration(DefaultFailureDelay)
	}
	if h.FailureJitter == 0 {
		h.FailureJitter = caddy.Duration(DefaultFailureJitter)
	}
	if h.FailureDelay < 0 || h.FailureJitter < 0 {
		return errors.New("failure_delay and failure_jitter must not be negative")
	}
	// Each is compared on its own first: their sum could overflow.
	if h.FailureDelay >= h.Timeout || h.FailureJitter >= h.Timeout ||
		time.Duration(h.FailureDelay+h.FailureJitter) >= time.Duration(h.Timeout) {
		return fmt.Errorf("failure_delay (%s) + failure_jitter (%s) must be shorter than timeout (%s)",
			time.Duration(h.FailureDelay), time.Duration(h.FailureJitter), time.Duration(h.Timeout))
	}
	if time.Duration(h.FailureDelay) < minSafeFailureDelay {
		h.logger.Warn("failure_delay is below 100ms: answer times may tell an unknown user from a wrong password",
			zap.Duration("failure_delay", time.Duration(h.FailureDelay)))
	}
	if h.MaxFieldBytes == 0 {
		h.MaxFieldBytes = DefaultMaxFieldBytes
	}
	if h.MaxBody == 0 {
		h.MaxBody = DefaultMaxBody
	}
	if h.MaxConcurrent == 0 {
		h.MaxConcurrent = DefaultMaxConcurrent
	}
	if h.MaxFieldBytes < 0 || h.MaxBody < 0 || h.MaxConcurrent < 0 {
		return errors.New("max_field_bytes, max_body and max_concurrent must be positive")
	}
	if int64(h.MaxFieldBytes) > h.MaxBody {
		return fmt.Errorf("max_field_bytes (%d) is larger than max_body (%d)", h.MaxFieldBytes, h.MaxBody)
	}
	if h.MessageInvalid == "" {
		h.MessageInvalid = DefaultMessageInvalid
	}
	if h.MessageUnavailable == "" {
		h.MessageUnavailable = DefaultMessageUnavail
	}
	if h.MessageDenied == "" {
		h.MessageDenied = DefaultMessageDenied
	}
	for _, m := range []string{h.MessageInvalid, h.MessageUnavailable, h.MessageDenied} {
		if err := checkNoPercent("message", m); err != nil {
			return err
		}
	}

	// Caller restrictions.
	for _, a := range h.AllowFrom {
		p, err := parsePrefix(a)
		if err != nil {
			return fmt.Errorf("allow_from: %w", err)
		}
		h.allow = append(h.allow, p)
	}
	if h.Secret != "" {
		s := caddy.NewReplacer().ReplaceAll(h.Secret, "")
		if s == "" {
			return errors.New("secret resolved to an empty value; check the {env.*} or {file.*} placeholder")
		}
		h.secret = []byte(s)
	}
	if len(h.allow) == 0 && h.secret == nil {
		h.logger.Warn("LoginShare endpoint is open to anyone: without allow_from or secret, whoever can reach it can guess passwords; set allow_from to Kayako's address",
			zap.String("user_path", h.UserPath), zap.String("staff_path", h.StaffPath))
	}

	if h.RememberMeHashes != "" {
		if err := checkRememberMe(h.RememberMeHashes); err != nil {
			return err
		}
	}

	ifaces := h.StaffInterfaces
	if len(ifaces) == 0 {
		ifaces = DefaultStaffInterfaces
	}
	h.interfaces = make(map[string]bool, len(ifaces))
	for _, i := range ifaces {
		h.interfaces[i] = true
	}

	var err error
	if h.userMap, err = compileMapping(h.UserGroups); err != nil {
		return fmt.Errorf("user_groups: %w", err)
	}
	if h.staffMap, err = compileMapping(h.StaffTeams); err != nil {
		return fmt.Errorf("staff_teams: %w", err)
	}
	if h.staffMap == nil || h.staffMap.empty() {
		h.logger.Info("staff_teams is not configured: the staff endpoint refuses everyone")
	} else if len(h.staffMap.lines) == 0 && h.staffMap.def != "" {
		h.logger.Warn("staff_teams has only a default: every account in the directory becomes staff",
			zap.String("team", h.staffMap.def))
	}

	if err := h.provisionThrottle(ctx); err != nil {
		return err
	}
	h.sem = make(chan struct{}, h.MaxConcurrent)

	if h.metrics, err = registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}

	return h.loadChains(ctx)
}

// loadChains loads the backend chains of both endpoints and names them.
func (h *Handler) loadChains(ctx caddy.Context) error {
	needShared := len(h.UserBackendsRaw) == 0 || len(h.StaffBackendsRaw) == 0
	if !needShared && len(h.BackendsRaw) > 0 {
		h.logger.Warn("backend blocks are not used: both endpoints have their own chain (user_backend and staff_backend)")
	}
	names := map[string]int{}
	load := func(field string) ([]backends.Named, error) {
		mods, err := ctx.LoadModule(h, field)
		if err != nil {
			return nil, fmt.Errorf("loading backends: %w", err)
		}
		var chain []backends.Named
		for i, m := range mods.([]any) {
			b, ok := m.(backends.Backend)
			if !ok {
				return nil, fmt.Errorf("backend %d (%T) does not implement backends.Backend", i, m)
			}
			name, err := backendName(m, names)
			if err != nil {
				return nil, err
			}
			if sn, ok := m.(interface{ SetBackendName(string) }); ok {
				sn.SetBackendName(name)
			}
			chain = append(chain, backends.Named{Name: name, Backend: timed(name, b)})
		}
		return chain, nil
	}
	var shared []backends.Named
	var err error
	if needShared && len(h.BackendsRaw) > 0 {
		if shared, err = load("BackendsRaw"); err != nil {
			return err
		}
	}
	h.userChain, h.staffChain = shared, shared
	if len(h.UserBackendsRaw) > 0 {
		if h.userChain, err = load("UserBackendsRaw"); err != nil {
			return err
		}
	}
	if len(h.StaffBackendsRaw) > 0 {
		if h.staffChain, err = load("StaffBackendsRaw"); err != nil {
			return err
		}
	}
	h.userPrompt, h.staffPrompt = backends.AllPrompt(h.userChain), backends.AllPrompt(h.staffChain)
	for _, chain := range [][]backends.Named{h.userChain, h.staffChain} {
		for _, nb := range chain {
			if t, ok := unwrapTimed(nb.Backend).(interface{ OperationTimeout() time.Duration }); ok && t.OperationTimeout() > time.Duration(h.Timeout) {
				h.logger.Warn("a backend's request_timeout is longer than the handler's timeout: a slow server is answered unavailable before it can answer",
					zap.String("backend", nb.Name), zap.Duration("request_timeout", t.OperationTimeout()), zap.Duration("timeout", time.Duration(h.Timeout)))
			}
		}
	}
	return nil
}

// backendName is the backend's configured name, or its module name (ldap,
// sql, static) followed by #2, #3 … for repeats. Names are unique within a
// handler: audit lines, metrics and stories tell backends apart by them.
func backendName(m any, seen map[string]int) (string, error) {
	if n, ok := m.(backends.Namer); ok && n.BackendName() != "" {
		name := n.BackendName()
		if seen[name] > 0 {
			return "", fmt.Errorf("backend name %q is used twice; names must be unique within a loginshare handler", name)
		}
		seen[name]++
		return name, nil
	}
	base := strings.TrimPrefix(string(m.(caddy.Module).CaddyModule().ID), "loginshare.backends.")
	name := base
	for i := 2; seen[name] > 0; i++ {
		name = fmt.Sprintf("%s#%d", base, i)
	}
	seen[name]++
	return name, nil
}

// Validate checks the provisioned handler. An endpoint needs a chain only if
// it can accept anyone: a staff endpoint without staff_teams, or a user
// endpoint whose user_groups is present but empty, refuses everyone anyway.
func (h *Handler) Validate() error {
	if len(h.userChain) == 0 && h.userMap.acceptsAnyone() {
		return errors.New("no backend for the user endpoint: add a `backend ldap { … }`, `backend sql { … }`, `backend static { … }` or `user_backend …` block")
	}
	if len(h.staffChain) == 0 && h.staffMap != nil && !h.staffMap.empty() {
		return errors.New("no backend for the staff endpoint, which staff_teams lets people into: add a `backend …` or `staff_backend …` block")
	}
	return nil
}

// Cleanup releases shared state. It tolerates a half-provisioned handler.
// It leaves h.throttle alone: after a reload's grace period, requests of the
// old config may still be running and reading it.
func (h *Handler) Cleanup() error {
	if h.zoneClaim != nil {
		releaseZone(h.zoneClaim)
		h.zoneClaim = nil
	}
	if h.throttleKey != "" {
		key := h.throttleKey
		h.throttleKey = ""
		_, err := throttleStores.Delete(key)
		return err
	}
	return nil
}

// checkPath is the rule for user_path and staff_path.
func checkPath(opt, v string) error {
	if !strings.HasPrefix(v, "/") {
		return fmt.Errorf("%s %q must start with /", opt, v)
	}
	return nil
}

// checkRememberMe is the rule for remember_me_hashes.
func checkRememberMe(v string) error {
	return caddyopts.OneOf("remember_me_hashes", v, "refuse", "try")
}

// checkNoPercent refuses a '%' in text Kayako shows: its staff panel may
// pass a message or title through sprintf.
func checkNoPercent(what, v string) error {
	if strings.Contains(v, "%") {
		return fmt.Errorf("%s %q must not contain %% (Kayako may use it as a format string)", what, v)
	}
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR range", s)
		}
		// Client IPs are compared unmapped, so ::ffff:10.0.0.0/104 must become 10.0.0.0/8.
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR range", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
