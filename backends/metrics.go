package backends

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// ServerSample is one server of one shared connection pool as a backend
// reports it at scrape time, for caddy_loginshare_server_up and
// caddy_loginshare_pool_connections.
type ServerSample struct {
	// Backend names every backend using the pool, joined with "+".
	Backend string
	// Server is the URL or driver://host; never a password.
	Server string
	Up     bool
	Pools  []PoolCount
}

// PoolCount is one pool's connections ("search", "bind", "sql").
type PoolCount struct {
	Pool        string
	Idle, InUse int
}

var (
	serverUpDesc = prometheus.NewDesc("caddy_loginshare_server_up",
		"1 when the server answered the last time it was used or probed, 0 after a transport failure.",
		[]string{"backend", "server"}, nil)
	poolConnsDesc = prometheus.NewDesc("caddy_loginshare_pool_connections",
		"Connections by pool (search: service-bound LDAP, bind: LDAP user binds, sql) and state (idle, in_use).",
		[]string{"backend", "server", "pool", "state"}, nil)

	sourcesMu sync.Mutex
	sources   []func(emit func(ServerSample))
)

// AddServerSource registers a backend package's pools with the one
// collector of server and pool metrics (call it from init). Every live pool
// is reported once, however many sites share it.
func AddServerSource(f func(emit func(ServerSample))) {
	sourcesMu.Lock()
	sources = append(sources, f)
	sourcesMu.Unlock()
}

// serverCollector merges every source's samples: a (backend, server) pair
// is up only if every pool reporting it is, and connection counts add up,
// so no two series ever carry equal labels.
type serverCollector struct{}

func (serverCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- serverUpDesc
	ch <- poolConnsDesc
}

func (serverCollector) Collect(ch chan<- prometheus.Metric) {
	type upKey struct{ backend, server string }
	type connKey struct{ backend, server, pool, state string }
	up := map[upKey]float64{}
	conns := map[connKey]float64{}
	emit := func(s ServerSample) {
		k := upKey{s.Backend, s.Server}
		v := 0.0
		if s.Up {
			v = 1
		}
		if old, seen := up[k]; !seen || v < old {
			up[k] = v
		}
		for _, p := range s.Pools {
			conns[connKey{s.Backend, s.Server, p.Pool, "idle"}] += float64(p.Idle)
			conns[connKey{s.Backend, s.Server, p.Pool, "in_use"}] += float64(p.InUse)
		}
	}
	sourcesMu.Lock()
	srcs := append([]func(func(ServerSample)){}, sources...)
	sourcesMu.Unlock()
	for _, src := range srcs {
		src(emit)
	}
	for k, v := range up {
		ch <- prometheus.MustNewConstMetric(serverUpDesc, prometheus.GaugeValue, v, k.backend, k.server)
	}
	for k, v := range conns {
		ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, v, k.backend, k.server, k.pool, k.state)
	}
}

// RegisterMetrics puts the server and pool collector, and any extra
// collectors of the caller, on a config's registry (Caddy gives every config
// load a new one). Registering twice on one registry is harmless.
func RegisterMetrics(reg *prometheus.Registry, extra ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range append([]prometheus.Collector{serverCollector{}}, extra...) {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}
