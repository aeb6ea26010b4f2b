package ldap

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddyserver/caddy/v2"
)

var (
	serverUpDesc = prometheus.NewDesc("caddy_loginshare_server_up",
		"1 when the directory server answered the last time it was used or probed, 0 after a transport failure.",
		[]string{"backend", "server"}, nil)
	poolConnsDesc = prometheus.NewDesc("caddy_loginshare_pool_connections",
		"Directory connections by pool (search: service-bound, bind: user binds) and state (idle, in_use).",
		[]string{"backend", "server", "pool", "state"}, nil)
	poolWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy",
		Subsystem: "loginshare",
		Name:      "pool_wait_seconds",
		Help:      "Time a login waited for a free directory connection (only waits are observed).",
		Buckets:   []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"backend"})
)

// collector exports the state of every live server set once per set, so two
// sites sharing a pool never produce duplicate series, and sums sets that
// end up with equal labels (two pools of one backend name to one server).
type collector struct{}

var theCollector collector

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- serverUpDesc
	ch <- poolConnsDesc
}

func (collector) Collect(ch chan<- prometheus.Metric) {
	type upKey struct{ backend, server string }
	type poolKey struct{ backend, server, pool, state string }
	up := map[upKey]float64{}
	conns := map[poolKey]float64{}
	pools.Range(func(_, v any) bool {
		set, ok := v.(*serverSet)
		if !ok {
			return true
		}
		name := set.label()
		if name == "" {
			return true
		}
		for _, s := range set.servers {
			k := upKey{name, s.url}
			v := 1.0
			if s.failedAt.Load() != 0 {
				v = 0
			}
			if old, seen := up[k]; !seen || v < old {
				up[k] = v
			}
			for _, p := range []struct {
				name string
				p    *pool
			}{{"search", s.search}, {"bind", s.bind}} {
				idle, inUse := p.p.counts()
				conns[poolKey{name, s.url, p.name, "idle"}] += float64(idle)
				conns[poolKey{name, s.url, p.name, "in_use"}] += float64(inUse)
			}
		}
		return true
	})
	for k, v := range up {
		ch <- prometheus.MustNewConstMetric(serverUpDesc, prometheus.GaugeValue, v, k.backend, k.server)
	}
	for k, v := range conns {
		ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, v, k.backend, k.server, k.pool, k.state)
	}
}

// registerMetrics puts the package's collectors on a config's registry
// (Caddy gives every config load a new one).
func registerMetrics(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{theCollector, poolWait} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// users are the backends sharing a server set, for its metric label.
type users struct {
	mu sync.Mutex
	m  map[*LDAP]struct{}
}

func (u *users) add(l *LDAP) {
	u.mu.Lock()
	if u.m == nil {
		u.m = map[*LDAP]struct{}{}
	}
	u.m[l] = struct{}{}
	u.mu.Unlock()
}

func (u *users) remove(l *LDAP) {
	u.mu.Lock()
	delete(u.m, l)
	u.mu.Unlock()
}

// label is the backend names using the set, sorted and joined with "+":
// usually one name; two sites sharing one pool show both.
func (set *serverSet) label() string {
	set.users.mu.Lock()
	names := make([]string, 0, len(set.users.m))
	for l := range set.users.m {
		n := l.BackendName()
		if n == "" {
			n = "ldap"
		}
		names = append(names, n)
	}
	set.users.mu.Unlock()
	slices.Sort(names)
	return strings.Join(slices.Compact(names), "+")
}

// counts returns the idle and checked-out connections.
func (p *pool) counts() (idle, inUse int) {
	p.mu.Lock()
	idle = len(p.idle)
	p.mu.Unlock()
	return idle, len(p.slots)
}

// observeWait records a wait for a pool slot.
func (set *serverSet) observeWait(d time.Duration) {
	if set == nil {
		return
	}
	poolWait.WithLabelValues(set.label()).Observe(d.Seconds())
}

// SetBackendName overrides backends.Base's: the name is read by metric
// scrapes of a pool this backend may already share with a running config,
// so it is written under the lock those scrapes take.
func (l *LDAP) SetBackendName(name string) {
	if l.set == nil {
		l.Base.SetBackendName(name)
		return
	}
	l.set.users.mu.Lock()
	l.Base.SetBackendName(name)
	l.set.users.mu.Unlock()
}
