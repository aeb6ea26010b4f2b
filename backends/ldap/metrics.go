package ldap

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddyserver/caddy/v2"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
)

var (
	poolWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy",
		Subsystem: "loginshare",
		Name:      "pool_wait_seconds",
		Help:      "Time a login waited for a free directory connection (only waits are observed).",
		Buckets:   []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"backend"})
)

func init() { backends.AddServerSource(serverSamples) }

// serverSamples reports every live server set, once per set (two sites
// sharing one pool give one series, labelled with both backend names).
func serverSamples(emit func(backends.ServerSample)) {
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
			si, su := s.search.counts()
			bi, bu := s.bind.counts()
			emit(backends.ServerSample{Backend: name, Server: s.url, Up: s.failedAt.Load() == 0,
				Pools: []backends.PoolCount{{Pool: "search", Idle: si, InUse: su}, {Pool: "bind", Idle: bi, InUse: bu}}})
		}
		return true
	})
}

// registerMetrics puts the package's collectors on a config's registry
// (Caddy gives every config load a new one).
func registerMetrics(ctx caddy.Context) error {
	return backends.RegisterMetrics(ctx.GetMetricsRegistry(), poolWait)
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
