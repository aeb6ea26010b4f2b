package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/kayako-loginshare/caddy-loginshare/internal/background"
	"github.com/kayako-loginshare/caddy-loginshare/internal/caddyopts"
	"github.com/kayako-loginshare/caddy-loginshare/internal/throttle"
)

func init() {
	caddy.RegisterModule(new(Module))
	// go-redis prints its own lines (dial failures during an outage, pool
	// notices) on stderr by default; the store already logs one WARN per
	// outage, so its lines go to Caddy's log at DEBUG.
	redis.SetLogger(zapLogging{})
}

type zapLogging struct{}

func (zapLogging) Printf(_ context.Context, format string, v ...any) {
	caddy.Log().Named("loginshare.redis").Debug(fmt.Sprintf(format, v...))
}

// Module is the throttle store in Redis, `throttle { store redis { … } }`:
// every Caddy instance configured with the same Redis and key_prefix counts
// failures and bans together.
type Module struct {
	ClientConfig
	// KeyPrefix starts every Redis key. Default: "loginshare:"
	KeyPrefix string `json:"key_prefix,omitempty"`
	// KeySecret keys the HMAC that names the keys ({env.*}/{file.*}
	// allowed). Default: a key derived from key_prefix and the zone.
	KeySecret string `json:"key_secret,omitempty"`
	// Timeout bounds each Redis round trip of a login. Default: 250ms
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// OnError is local (default), open or closed: what a login gets while
	// Redis does not answer.
	OnError string `json:"on_error,omitempty"`

	logger   *zap.Logger
	conn     ClientConfig // placeholders resolved
	secret   []byte
	poolKey  string
	addrs    []string // for log lines: no password
	client   redis.UniversalClient
	released atomic.Bool
	bg       background.Probe
}

// CaddyModule returns the Caddy module information.
func (*Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "loginshare.throttle.stores.redis",
		New: func() caddy.Module { return new(Module) },
	}
}

// clients holds the Redis clients shared across config reloads, keyed by a
// digest of the resolved connection settings.
var clients = caddy.NewUsagePool()

type clientEntry struct{ redis.UniversalClient }

func (c clientEntry) Destruct() error { return c.Close() }

// ProbeDelay lets `caddy validate` and `caddy adapt --validate`, which end
// the config right after provisioning, finish before the probe dials.
var ProbeDelay = 2 * time.Second

// Provision resolves placeholders, checks the settings and takes a share of
// the pooled client. It does no network I/O: a background probe WARNs when
// Redis does not answer.
func (m *Module) Provision(ctx caddy.Context) error {
	m.logger = ctx.Logger()
	if err := m.check(); err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	resolve := func(s string) string { return strings.TrimSpace(repl.ReplaceKnown(s, "")) }
	m.conn = m.ClientConfig
	m.conn.URL = resolve(m.URL)
	m.conn.Password = resolve(m.Password)
	if m.URL != "" && m.conn.URL == "" {
		return errors.New("redis url is empty after resolving placeholders (is the environment variable or file there?)")
	}
	if m.Password != "" && m.conn.Password == "" {
		return errors.New("redis password is empty after resolving placeholders (is the environment variable or file there?)")
	}
	if m.KeySecret != "" {
		s := resolve(m.KeySecret)
		if s == "" {
			return errors.New("redis key_secret is empty after resolving placeholders (is the environment variable or file there?)")
		}
		m.secret = []byte(s)
	}
	if m.Timeout == 0 {
		m.Timeout = caddy.Duration(DefaultTimeout)
	}
	m.conn.Timeout = time.Duration(m.Timeout)
	m.addrs = m.conn.Addresses
	if m.conn.URL != "" {
		o, err := redis.ParseURL(m.conn.URL)
		if err != nil {
			return errors.New("redis url is not a valid redis:// or rediss:// URL")
		}
		m.addrs = []string{o.Addr}
	}
	if m.conn.Password == "" && !strings.Contains(m.conn.URL, "@") {
		m.logger.Warn("redis store without a password: anyone who reaches Redis can read and lift bans", zap.Strings("addresses", m.addrs))
	}

	key, err := json.Marshal(struct {
		C ClientConfig
		T time.Duration
	}{m.conn, m.conn.Timeout})
	if err != nil {
		return err
	}
	sum := sha256.Sum256(key)
	m.poolKey = hex.EncodeToString(sum[:])
	c, err := m.acquire()
	if err != nil {
		return err
	}
	m.client = c

	m.bg.Start(ctx, ProbeDelay, m.probe)
	return nil
}

// acquire takes one share of the pooled client (made, without dialing, on
// first use).
func (m *Module) acquire() (redis.UniversalClient, error) {
	v, _, err := clients.LoadOrNew(m.poolKey, func() (caddy.Destructor, error) {
		c, err := NewClient(m.conn)
		if err != nil {
			return nil, err
		}
		return clientEntry{c}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(clientEntry).UniversalClient, nil
}

// check validates what needs no placeholder resolved.
func (m *Module) check() error {
	if !ValidOnError(m.OnError) {
		return fmt.Errorf("redis on_error %q: want local, open or closed", m.OnError)
	}
	if m.Timeout < 0 {
		return errors.New("redis timeout must be positive")
	}
	if m.URL != "" && len(m.Addresses) > 0 {
		return errors.New("redis: url and addresses are exclusive")
	}
	if m.URL == "" && len(m.Addresses) == 0 {
		return errors.New("redis: url or addresses required")
	}
	if m.PoolSize < 0 {
		return errors.New("redis pool_size must be positive")
	}
	return nil
}

func (m *Module) probe(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := m.client.Ping(pctx).Err(); err != nil && ctx.Err() == nil {
		m.logger.Warn("redis throttle store does not answer; logins use on_error until it does",
			zap.Strings("addresses", m.addrs), zap.String("on_error", m.onError()), zap.String("error", redact(err.Error(), m.conn.Password)))
	}
}

func (m *Module) onError() string {
	if m.OnError == "" {
		return OnErrorLocal
	}
	return m.OnError
}

// redact removes a secret from a message, in case a library quotes it.
func redact(msg, secret string) string {
	if secret == "" {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "[redacted]")
}

// Cleanup stops the probe and gives back this config's share of the client.
func (m *Module) Cleanup() error {
	m.bg.Stop()
	if m.client != nil && m.released.CompareAndSwap(false, true) {
		_, err := clients.Delete(m.poolKey)
		return err
	}
	return nil
}

// StateKey names what the zone's state depends on beyond the JSON: the
// resolved connection settings and key secret, as a digest. A reload that
// changes only an environment variable (a rotated password) then gets a new
// store on the new client instead of keeping the old one.
func (m *Module) StateKey() string {
	sum := sha256.Sum256([]byte(m.poolKey + "|" + string(m.secret)))
	return hex.EncodeToString(sum[:16])
}

// NewStore implements throttle.Provider. The store holds a share of the
// client of its own, given back by its Close, since a zone's state outlives
// the config that made it.
func (m *Module) NewStore(zone string, cfg throttle.Config, o throttle.StoreOptions) (throttle.Store, error) {
	c, err := m.acquire()
	if err != nil {
		return nil, err
	}
	s := New(c, cfg, Options{
		Zone: zone, KeyPrefix: m.KeyPrefix, KeySecret: m.secret,
		Timeout: time.Duration(m.Timeout), OnError: m.OnError,
		Fallback: throttle.New(cfg), Lease: o.Lease,
		Logger: o.Logger, OnOutage: o.OnOutage,
	})
	return &pooledStore{Store: s, key: m.poolKey}, nil
}

// pooledStore is a Store holding a share of the pooled client.
type pooledStore struct {
	*Store
	key    string
	closed atomic.Bool
}

// Close gives back the store's share of the client.
func (p *pooledStore) Close() error {
	if p.closed.CompareAndSwap(false, true) {
		_, err := clients.Delete(p.key)
		return err
	}
	return nil
}

// UnmarshalCaddyfile reads
//
//	store redis {
//		url        redis://host:port/db | rediss://…
//		addresses  <host:port>...        # instead of url: Cluster seeds or Sentinels
//		cluster                          # Cluster mode with a single seed
//		sentinel_master <name>
//		username   <acl user>
//		password   <password>
//		tls {
//			ca_file     <pem>
//			server_name <name>
//			client_cert <cert.pem> <key.pem>
//		}
//		pool_size  <n>
//		key_prefix <prefix>              # default loginshare:
//		key_secret <secret>
//		timeout    <duration>            # default 250ms
//		on_error   local|open|closed     # default local
//	}
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := caddyopts.Seen{}
	for d.NextBlock(0) {
		opt := d.Val()
		if err := seen.Once(d, opt); err != nil {
			return err
		}
		var err error
		switch opt {
		case "url":
			if m.URL, err = caddyopts.NonEmptyString(d, opt); err != nil {
				return err
			}
			if !strings.HasPrefix(m.URL, "{") && !strings.HasPrefix(m.URL, "redis://") && !strings.HasPrefix(m.URL, "rediss://") {
				return d.Errf("redis url must start with redis:// or rediss:// (or be a placeholder)")
			}
		case "addresses":
			m.Addresses = d.RemainingArgs()
			if len(m.Addresses) == 0 {
				return d.ArgErr()
			}
		case "cluster":
			if d.NextArg() {
				return d.ArgErr()
			}
			m.Cluster = true
		case "sentinel_master":
			m.SentinelMaster, err = caddyopts.NonEmptyString(d, opt)
		case "username":
			m.Username, err = caddyopts.NonEmptyString(d, opt)
		case "password":
			m.Password, err = caddyopts.NonEmptyString(d, opt)
		case "key_prefix":
			m.KeyPrefix, err = caddyopts.NonEmptyString(d, opt)
		case "key_secret":
			m.KeySecret, err = caddyopts.NonEmptyString(d, opt)
		case "pool_size":
			m.PoolSize, err = caddyopts.PositiveInt(d)
		case "timeout":
			var t time.Duration
			t, err = caddyopts.PositiveDuration(d, opt)
			m.Timeout = caddy.Duration(t)
		case "on_error":
			if m.OnError, err = caddyopts.String(d); err == nil {
				err = caddyopts.Check(d, caddyopts.OneOf("on_error", m.OnError, OnErrorLocal, OnErrorOpen, OnErrorClosed))
			}
		case "tls":
			err = m.unmarshalTLS(d)
		default:
			return d.Errf("unknown redis store option %q", opt)
		}
		if err != nil {
			return err
		}
	}
	if m.URL != "" && len(m.Addresses) > 0 {
		return d.Err("redis: url and addresses are exclusive")
	}
	if m.URL == "" && len(m.Addresses) == 0 {
		return d.Err("redis: url or addresses required")
	}
	return nil
}

func (m *Module) unmarshalTLS(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	t := new(TLS)
	seen := caddyopts.Seen{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if err := seen.Once(d, "tls "+opt); err != nil {
			return err
		}
		var err error
		switch opt {
		case "ca_file":
			t.CAFile, err = caddyopts.NonEmptyString(d, opt)
		case "server_name":
			t.ServerName, err = caddyopts.NonEmptyString(d, opt)
		case "client_cert":
			if !d.Args(&t.ClientCert, &t.ClientKey) || d.NextArg() {
				return d.Errf("client_cert wants <cert.pem> <key.pem>")
			}
		default:
			return d.Errf("unknown redis tls option %q", opt)
		}
		if err != nil {
			return err
		}
	}
	m.TLS = t
	return nil
}

var (
	_ caddy.Provisioner     = (*Module)(nil)
	_ caddy.CleanerUpper    = (*Module)(nil)
	_ caddyfile.Unmarshaler = (*Module)(nil)
	_ throttle.Provider     = (*Module)(nil)
)
