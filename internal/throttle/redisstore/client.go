package redisstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClientConfig is the connection part of `store redis { … }`, with
// placeholders already replaced by the caller. Exactly one of URL and
// Addresses is set.
type ClientConfig struct {
	// URL is redis://[user:password@]host:port/db or rediss:// (TLS).
	URL string `json:"url,omitempty"`
	// Addresses are Cluster seeds, or Sentinel addresses with SentinelMaster.
	Addresses []string `json:"addresses,omitempty"`
	// Cluster forces Cluster mode (needed for a single seed address);
	// two or more Addresses without SentinelMaster are a Cluster anyway.
	Cluster        bool   `json:"cluster,omitempty"`
	SentinelMaster string `json:"sentinel_master,omitempty"`
	Username       string `json:"username,omitempty"`
	Password       string `json:"password,omitempty"`
	TLS            *TLS   `json:"tls,omitempty"`
	// Timeout bounds dialing and each round trip (default DefaultTimeout).
	Timeout time.Duration `json:"-"`
	// PoolSize per node (default go-redis's, 10 per CPU).
	PoolSize int `json:"pool_size,omitempty"`
}

// TLS is the `tls { … }` block. A rediss:// URL or a TLS block turns TLS on.
type TLS struct {
	CAFile     string `json:"ca_file,omitempty"`
	ServerName string `json:"server_name,omitempty"`
	ClientCert string `json:"client_cert,omitempty"`
	ClientKey  string `json:"client_key,omitempty"`
}

// NewClient builds the client the store needs: ContextTimeoutEnabled (so
// Options.Timeout bounds every call), no retries (a retry would double the
// wait a login pays in an outage), timeouts of cfg.Timeout. It does not dial.
// Errors never contain the password.
func NewClient(cfg ClientConfig) (redis.UniversalClient, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	u := &redis.UniversalOptions{}
	switch {
	case cfg.URL != "" && len(cfg.Addresses) > 0:
		return nil, errors.New("redis: url and addresses are exclusive")
	case cfg.URL != "":
		o, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, errors.New("redis: url is not a valid redis:// or rediss:// URL")
		}
		u.Addrs, u.DB, u.Username, u.Password, u.TLSConfig = []string{o.Addr}, o.DB, o.Username, o.Password, o.TLSConfig
	case len(cfg.Addresses) > 0:
		u.Addrs = cfg.Addresses
	default:
		return nil, errors.New("redis: url or addresses required")
	}
	if cfg.Username != "" {
		u.Username = cfg.Username
	}
	if cfg.Password != "" {
		u.Password = cfg.Password
	}
	u.MasterName = cfg.SentinelMaster
	u.IsClusterMode = cfg.Cluster && cfg.SentinelMaster == ""
	if cfg.TLS != nil {
		tc, err := cfg.TLS.config()
		if err != nil {
			return nil, err
		}
		if u.TLSConfig != nil && tc.ServerName == "" {
			tc.ServerName = u.TLSConfig.ServerName
		}
		u.TLSConfig = tc
	}
	u.ContextTimeoutEnabled = true
	u.MaxRetries = -1
	u.DialTimeout, u.ReadTimeout, u.WriteTimeout = cfg.Timeout, cfg.Timeout, cfg.Timeout
	u.PoolTimeout = cfg.Timeout
	u.DialerRetries = 1 // one dial per call: the breaker, not the pool, waits out an outage
	u.PoolSize = cfg.PoolSize
	u.DisableIdentity = true
	return redis.NewUniversalClient(u), nil
}

func (t *TLS) config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redis tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis tls ca_file %s: no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if (t.ClientCert == "") != (t.ClientKey == "") {
		return nil, errors.New("redis tls client_cert: want a certificate and a key")
	}
	if t.ClientCert != "" {
		c, err := tls.LoadX509KeyPair(t.ClientCert, t.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("redis tls client_cert: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}
