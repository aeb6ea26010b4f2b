// Package ldap is the LDAP / Active Directory backend of the LoginShare
// handler (Caddy module loginshare.backends.ldap): it finds the person with a
// service account, binds as them exactly once, reads their groups and builds a
// backends.Identity from the directory's canonical values.
//
// Connections are pooled per server (service-bound search connections and a
// separate pool used only for user binds) and shared across config reloads;
// servers are tried in order and skipped for server_cooldown after a transport
// failure. A wrong password is never tried on a second server.
package ldap

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/background"
)

func init() {
	caddy.RegisterModule(new(LDAP))
}

// LDAP authenticates people against an LDAP directory or Active Directory.
// Every field is optional except servers and base_dn (or bind_dn_template);
// a preset fills the filters and attribute names of a known directory.
type LDAP struct {
	backends.Base

	// Directory servers as ldaps://host[:port] or ldap://host[:port], tried
	// in this order; the next one is asked only after a transport failure
	// (refused, timeout, TLS error, busy, unavailable), never after a wrong
	// password. Required.
	Servers []string `json:"servers,omitempty"`

	// Upgrade ldap:// servers with StartTLS; a failed StartTLS never
	// continues in clear text. Default: false.
	StartTLS bool `json:"starttls,omitempty"`

	// Allow ldap:// servers without StartTLS (passwords in clear text).
	// Default: false, and ldap:// without starttls is a provisioning error.
	InsecurePlaintext bool `json:"insecure_plaintext,omitempty"`

	// TLS client settings for ldaps:// and StartTLS. Minimum TLS 1.2.
	TLS *TLS `json:"tls,omitempty"`

	// activedirectory, openldap, freeipa or lldap: default filters and
	// attributes of that directory; explicit options override them.
	// Default: none (generic inetOrgPerson defaults).
	Preset string `json:"preset,omitempty"`

	// DN of the service account that searches for users. Default: none
	// (searches run anonymously).
	BindDN string `json:"bind_dn,omitempty"`

	// Password of the service account. Use {env.NAME} or {file./abs/path}:
	// placeholders are resolved at provisioning and never written back. An
	// empty resolved password is a WARN and every login answers unavailable
	// (an empty-password bind would be anonymous). Default: none.
	BindPassword string `json:"bind_password,omitempty"`

	// Search base for users and groups. Required unless bind_dn_template is
	// used with groups memberof.
	BaseDN string `json:"base_dn,omitempty"`

	// Search base for users. Default: base_dn (freeipa:
	// cn=users,cn=accounts,<base_dn>; lldap: ou=people,<base_dn>).
	UserBaseDN string `json:"user_base_dn,omitempty"`

	// Filter that finds exactly one user; {username} is replaced by the
	// EscapeFilter'd username, once. Default: the preset's, else
	// (&(objectClass=person)(uid={username})).
	UserFilter string `json:"user_filter,omitempty"`

	// Direct-bind mode without a service account: the DN to bind as, with
	// {username} replaced by the EscapeDN'd username. Excludes user_filter
	// and bind_dn. Default: none (search-then-bind).
	BindDNTemplate string `json:"bind_dn_template,omitempty"`

	// Attribute names the identity is built from.
	Attributes *Attributes `json:"attributes,omitempty"`

	// Where group memberships come from; several lookups are merged.
	// Default: the preset's, else memberof.
	Groups []GroupLookup `json:"groups,omitempty"`

	// Search base for group searches. Default: base_dn.
	GroupBaseDN string `json:"group_base_dn,omitempty"`

	// Attribute holding a group's name when the first RDN of its DN is not
	// cn. Default: cn.
	GroupNameAttribute string `json:"group_name_attribute,omitempty"`

	// none, or strip_domain (DOMAIN\user becomes user; user@realm is kept
	// for the filter). Default: none (activedirectory: strip_domain).
	UsernameTransform string `json:"username_transform,omitempty"`

	// Budget for TCP connect, TLS handshake, StartTLS and the service bind
	// of a new connection. Default: 3s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// Budget for each LDAP operation (search, bind); the connection is
	// closed when it passes. Default: 5s.
	RequestTimeout caddy.Duration `json:"request_timeout,omitempty"`

	// Service-bound search connections per server. Default: 8.
	PoolSize int `json:"pool_size,omitempty"`

	// Connections per server used only for user binds. Default: 8.
	BindPoolSize int `json:"bind_pool_size,omitempty"`

	// How long a login waits for a free pooled connection. Default: 2s.
	PoolAcquireTimeout caddy.Duration `json:"pool_acquire_timeout,omitempty"`

	// Idle connections older than this are closed (keep it below AD's
	// MaxConnIdleTime of 900s). Default: 5m.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	// How long a server that failed is skipped. When every server is cooling
	// down all are tried, least recently failed first. Default: 30s.
	ServerCooldown caddy.Duration `json:"server_cooldown,omitempty"`

	logger        *zap.Logger
	set           *serverSet
	poolKey       string
	noPassword    bool     // bind_dn set but the resolved password is empty
	attrs         []string // what a user search reads
	attrsNoGroups []string // the same without memberOf, when the mapping needs no group
	adNested      bool
	probeAfter    time.Duration // 0: probeDelay; negative: no probe (tests)
	released      atomic.Bool   // Cleanup gave back this config's share of the pools
	bg            background.Probe
}

// CaddyModule returns the Caddy module information.
func (*LDAP) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "loginshare.backends.ldap",
		New: func() caddy.Module { return new(LDAP) },
	}
}

// pools holds the server sets (connection pools) shared across config
// reloads, keyed by every setting that shapes them.
var pools = caddy.NewUsagePool()

// probeDelay lets `caddy validate` and `caddy adapt --validate`, which cancel
// the context right after provisioning, finish before the probe dials.
var probeDelay = 2 * time.Second

// Provision applies the preset and defaults, resolves the service password,
// checks the configuration and gets the shared pools. It does no network I/O:
// reachability is checked by a background probe.
func (l *LDAP) Provision(ctx caddy.Context) error {
	return l.provision(ctx, ctx.Logger())
}

func (l *LDAP) provision(ctx context.Context, logger *zap.Logger) error {
	l.logger = logger
	if l.BindDNTemplate != "" && (l.UserFilter != "" || l.BindDN != "") {
		return errors.New("bind_dn_template (direct bind) cannot be combined with user_filter or bind_dn")
	}
	if err := l.applyPreset(); err != nil {
		return err
	}
	if err := l.check(); err != nil {
		return err
	}

	password := caddy.NewReplacer().ReplaceAll(l.BindPassword, "")
	if l.BindDN != "" && password == "" {
		l.noPassword = true
		l.logger.Warn("bind_password is empty after resolving placeholders; every login will answer unavailable (an empty-password bind would be anonymous)",
			zap.String("bind_dn", l.BindDN))
	}
	if l.BindDN == "" && l.BindDNTemplate == "" {
		l.logger.Warn("no bind_dn: user searches run anonymously")
	}
	if l.TLS != nil && l.TLS.InsecureSkipVerify {
		l.logger.Warn("tls insecure_skip_verify is set: the directory's certificate is not checked and anyone on the path can read every password")
	}
	l.warnTransport()
	l.attrs, l.attrsNoGroups = l.searchAttributes(true), l.searchAttributes(false)
	l.adNested = l.Preset == PresetActiveDirectory

	cfg, err := l.connSettings(password)
	if err != nil {
		return err
	}
	l.poolKey = cfg.key()
	val, _, err := pools.LoadOrNew(l.poolKey, func() (caddy.Destructor, error) {
		return newServerSet(cfg), nil
	})
	if err != nil {
		return err
	}
	l.set = val.(*serverSet)
	l.set.users.add(l)
	if cc, ok := ctx.(caddy.Context); ok {
		if err := registerMetrics(cc); err != nil {
			return err
		}
	}

	if l.probeAfter < 0 {
		return nil
	}
	delay := probeDelay
	if l.probeAfter > 0 {
		delay = l.probeAfter
	}
	l.bg.Start(ctx, delay, l.probe)
	return nil
}

// Validate is part of caddy.Validator; Provision already checked everything.
func (l *LDAP) Validate() error { return nil }

// Cleanup stops the probe and releases this config's share of the pools.
// It tolerates a half-provisioned module.
func (l *LDAP) Cleanup() error {
	l.bg.Stop()
	// l.set stays: logins still running on this config find its pools
	// closed and answer unavailable.
	if l.set != nil && l.released.CompareAndSwap(false, true) {
		l.set.users.remove(l)
		_, err := pools.Delete(l.poolKey)
		return err
	}
	return nil
}

// warnTransport names each server whose transport settings are risky or
// contradictory but allowed.
func (l *LDAP) warnTransport() {
	for _, s := range l.Servers {
		u, err := url.Parse(s)
		if err != nil {
			continue
		}
		switch {
		case u.Scheme == "ldap" && l.InsecurePlaintext && !l.StartTLS:
			l.logger.Warn("ldap:// with insecure_plaintext: every password crosses the network in clear text; use ldaps:// or starttls",
				zap.String("server", s))
		case u.Scheme == "ldaps" && l.StartTLS:
			l.logger.Warn("starttls has no effect on an ldaps:// server (it is TLS from the first byte); remove starttls or use ldap://",
				zap.String("server", s))
		}
	}
}

// OperationTimeout (request_timeout) is the longest a single directory operation may take; the
// handler warns when it exceeds the handler's whole-request timeout.
func (l *LDAP) OperationTimeout() time.Duration { return time.Duration(l.RequestTimeout) }

// ReturnsPromptly makes the backend backends.Prompt: every directory
// operation runs under a socket deadline no later than ctx's (and the socket
// is closed when ctx ends), dials and pool waits select on ctx, and nothing
// else blocks, so the handler asks it on the request's goroutine.
func (l *LDAP) ReturnsPromptly() {}

// check validates the configuration after the preset was applied.
func (l *LDAP) check() error {
	if len(l.Servers) == 0 {
		return errors.New("servers: at least one ldaps:// or ldap:// URL is required")
	}
	for _, s := range l.Servers {
		if err := checkServerURL(s, l.StartTLS, l.InsecurePlaintext); err != nil {
			return err
		}
	}
	for name, v := range map[string]string{"bind_dn": l.BindDN, "base_dn": l.BaseDN, "user_base_dn": l.UserBaseDN, "group_base_dn": l.GroupBaseDN} {
		if v != "" {
			if err := checkDN(name, v); err != nil {
				return err
			}
		}
	}
	needBase := false
	if l.BindDNTemplate != "" {
		if err := checkTemplate(l.BindDNTemplate); err != nil {
			return err
		}
	} else {
		if err := checkUserFilter(l.UserFilter); err != nil {
			return err
		}
		if l.UserBaseDN == "" {
			return errors.New("base_dn is required")
		}
	}
	if len(l.Groups) == 0 {
		return errors.New("groups: no lookup configured")
	}
	for _, g := range l.Groups {
		if err := checkGroupLookup(g); err != nil {
			return err
		}
		if g.Method == GroupsSearch || g.Method == GroupsNested {
			needBase = true
		}
	}
	if needBase && l.GroupBaseDN == "" {
		return errors.New("base_dn (or group_base_dn) is required for groups search and nested")
	}
	if err := checkTransform(l.UsernameTransform); err != nil {
		return err
	}
	if l.PoolSize < 1 || l.BindPoolSize < 1 {
		return errors.New("pool_size and bind_pool_size must be at least 1")
	}
	for name, d := range map[string]caddy.Duration{"dial_timeout": l.DialTimeout, "request_timeout": l.RequestTimeout,
		"pool_acquire_timeout": l.PoolAcquireTimeout, "idle_timeout": l.IdleTimeout, "server_cooldown": l.ServerCooldown} {
		if d < 0 {
			return fmt.Errorf("%s must not be negative", name)
		}
	}
	if l.TLS != nil && (l.TLS.ClientCertFile == "") != (l.TLS.ClientKeyFile == "") {
		return errors.New("tls client_cert needs both a certificate and a key file")
	}
	if l.Attributes.Username == "" {
		return errors.New("attributes username must not be empty")
	}
	return nil
}

// searchAttributes lists the attributes a user search asks for; memberOf
// only with groups, for logins whose mapping can use a group (an AD user's
// memberOf can be dozens of DNs to send and decode).
func (l *LDAP) searchAttributes(groups bool) []string {
	a := l.Attributes
	seen := map[string]bool{}
	var out []string
	add := func(names ...string) {
		for _, n := range names {
			if n != "" && !seen[strings.ToLower(n)] {
				seen[strings.ToLower(n)] = true
				out = append(out, n)
			}
		}
	}
	add(a.Username, a.FirstName, a.LastName, a.FullName, "cn")
	add(a.Email...)
	add(a.Phone, a.Mobile, a.Designation, a.Organization)
	for _, g := range l.Groups {
		if groups && (g.Method == GroupsMemberOf || g.Method == GroupsNested) {
			add("memberOf")
		}
	}
	return out
}

// connSettings is everything that shapes a server set: two configs with
// equal settings share one set (and its connections).
type connSettings struct {
	servers        []serverSettings
	bindDN         string
	password       string
	dialTimeout    time.Duration
	requestTimeout time.Duration
	acquireTimeout time.Duration
	idleTimeout    time.Duration
	cooldown       time.Duration
	poolSize       int
	bindPoolSize   int
	fingerprint    string // hash of the TLS material read from files
}

type serverSettings struct {
	url      string
	hostport string
	ldaps    bool
	starttls bool
	tls      *tls.Config
}

func (c *connSettings) key() string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	var urls []string
	for _, s := range c.servers {
		urls = append(urls, s.url)
		if s.tls != nil {
			urls = append(urls, s.tls.ServerName, fmt.Sprint(s.tls.InsecureSkipVerify, s.starttls))
		}
	}
	_ = enc.Encode([]any{urls, c.bindDN, c.password, c.dialTimeout, c.requestTimeout, c.acquireTimeout,
		c.idleTimeout, c.cooldown, c.poolSize, c.bindPoolSize, c.fingerprint})
	return "ldap:" + hex.EncodeToString(h.Sum(nil))
}

// connSettings reads the TLS material (files only, no network) and builds
// the per-server settings.
func (l *LDAP) connSettings(password string) (*connSettings, error) {
	cs := &connSettings{
		bindDN:         l.BindDN,
		password:       password,
		dialTimeout:    time.Duration(l.DialTimeout),
		requestTimeout: time.Duration(l.RequestTimeout),
		acquireTimeout: time.Duration(l.PoolAcquireTimeout),
		idleTimeout:    time.Duration(l.IdleTimeout),
		cooldown:       time.Duration(l.ServerCooldown),
		poolSize:       l.PoolSize,
		bindPoolSize:   l.BindPoolSize,
	}
	t := l.TLS
	if t == nil {
		t = new(TLS)
	}
	fp := sha256.New()
	var roots *x509.CertPool
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca_file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_file %s: no PEM certificate found", t.CAFile)
		}
		fp.Write(pem)
	}
	var certs []tls.Certificate
	if t.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.ClientCertFile, t.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client_cert %s %s: %w", t.ClientCertFile, t.ClientKeyFile, err)
		}
		certs = append(certs, cert)
		for _, c := range cert.Certificate {
			fp.Write(c)
		}
	}
	cs.fingerprint = hex.EncodeToString(fp.Sum(nil))
	for _, s := range l.Servers {
		u, err := url.Parse(s)
		if err != nil {
			return nil, err
		}
		ss := serverSettings{url: s, ldaps: u.Scheme == "ldaps", starttls: u.Scheme == "ldap" && l.StartTLS}
		port := u.Port()
		if port == "" {
			port = "389"
			if ss.ldaps {
				port = "636"
			}
		}
		ss.hostport = net.JoinHostPort(u.Hostname(), port)
		if ss.ldaps || ss.starttls {
			name := t.ServerName
			if name == "" {
				name = u.Hostname()
			}
			ss.tls = &tls.Config{
				ServerName:         name,
				MinVersion:         tls.VersionTLS12,
				RootCAs:            roots,
				Certificates:       certs,
				InsecureSkipVerify: t.InsecureSkipVerify,
			}
		}
		cs.servers = append(cs.servers, ss)
	}
	return cs, nil
}

// probe checks every server once, in the background, and logs what an
// operator must fix: an unreachable server, a TLS problem, a rejected
// service account.
func (l *LDAP) probe(ctx context.Context) {
	for _, s := range l.set.servers {
		if ctx.Err() != nil {
			return
		}
		if err := l.probeServer(ctx, s); err != nil {
			if ctx.Err() != nil {
				return
			}
			l.logger.Warn("LDAP server check failed", zap.String("server", s.url), zap.String("reason", err.Error()))
			continue
		}
		l.logger.Info("LDAP server reachable", zap.String("server", s.url), zap.Bool("service_account_checked", l.BindDN != "" && !l.noPassword))
	}
}

// probeServer checks one server and records its health for server_up.
func (l *LDAP) probeServer(ctx context.Context, s *server) error {
	err := l.set.probe(ctx, s, l.noPassword)
	switch {
	case err == nil:
		s.markOK()
	case isTransport(err) && ctx.Err() == nil:
		s.markFailed()
	}
	return err
}

// Probe implements backends.Prober: every server, in order, now.
func (l *LDAP) Probe(ctx context.Context) []backends.ProbeResult {
	if l.set == nil {
		return []backends.ProbeResult{{Err: errors.New("ldap backend not provisioned")}}
	}
	detail := "TCP"
	if l.TLS != nil || strings.HasPrefix(l.Servers[0], "ldaps://") || l.StartTLS {
		detail += ", TLS"
	}
	if l.BindDN != "" {
		detail += ", service bind as " + l.BindDN
	}
	detail += ", root DSE"
	out := make([]backends.ProbeResult, 0, len(l.set.servers))
	for _, s := range l.set.servers {
		err := l.probeServer(ctx, s)
		if err == nil && l.noPassword {
			err = errors.New("bind_password is empty after resolving placeholders: logins answer unavailable")
		}
		out = append(out, backends.ProbeResult{Server: s.url, Err: err, Detail: detail})
	}
	return out
}

// Interface guards.
var (
	_ caddy.Module       = (*LDAP)(nil)
	_ caddy.Provisioner  = (*LDAP)(nil)
	_ caddy.Validator    = (*LDAP)(nil)
	_ caddy.CleanerUpper = (*LDAP)(nil)
	_ backends.Backend   = (*LDAP)(nil)
	_ backends.Prompt    = (*LDAP)(nil)
	_ backends.Prober    = (*LDAP)(nil)
)
