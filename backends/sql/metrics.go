package sql

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddyserver/caddy/v2"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
)

// The SQL backend's series are the LDAP backend's names with pool="sql":
// caddy_loginshare_server_up{backend,server} and
// caddy_loginshare_pool_connections{backend,server,pool,state}. Both are
// read at scrape time from every live pool, once per pool (two sites whose
// backends share a pool give one series, labelled with both names), so a
// reload or a shared pool never duplicates a series.
var (
	serverUpDesc = prometheus.NewDesc("caddy_loginshare_server_up",
		// The help texts are the LDAP backend's, word for word: one
		// registry refuses two descriptions of one metric name.
		"1 when the directory server answered the last time it was used or probed, 0 after a transport failure.",
		[]string{"backend", "server"}, nil)
	poolConnsDesc = prometheus.NewDesc("caddy_loginshare_pool_connections",
		"Directory connections by pool (search: service-bound, bind: user binds) and state (idle, in_use).",
		[]string{"backend", "server", "pool", "state"}, nil)
)

// collector is an unchecked collector (it describes nothing): the LDAP
// backend's collector already describes these two metric names, and a
// registry refuses a second checked collector with the same descriptors
// (or silently keeps only one of the two when their sets are equal). The
// registry still merges both collectors' series into one family at scrape
// time, which needs the same help text and labels, and no two series with
// equal labels (ours carry driver://host servers).
type collector struct{}

var theCollector collector

func (collector) Describe(chan<- *prometheus.Desc) {}

func (collector) Collect(ch chan<- prometheus.Metric) {
	type upKey struct{ backend, server string }
	type connKey struct{ backend, server, state string }
	up := map[upKey]float64{}
	conns := map[connKey]float64{}
	pools.Range(func(_, v any) bool {
		p, ok := v.(*pool)
		if !ok {
			return true
		}
		name, server := p.label()
		if name == "" {
			return true
		}
		k := upKey{name, server}
		val := 1.0
		if p.down.Load() {
			val = 0
		}
		if old, seen := up[k]; !seen || val < old {
			up[k] = val
		}
		st := p.db.Stats()
		conns[connKey{name, server, "idle"}] += float64(st.Idle)
		conns[connKey{name, server, "in_use"}] += float64(st.InUse)
		return true
	})
	for k, v := range up {
		ch <- prometheus.MustNewConstMetric(serverUpDesc, prometheus.GaugeValue, v, k.backend, k.server)
	}
	for k, v := range conns {
		ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, v, k.backend, k.server, "sql", k.state)
	}
}

// registered is the registry the collector was last put on: an unchecked
// collector registered twice would export every series twice, and a
// config's backends all provision against the same registry.
var registered struct {
	mu  sync.Mutex
	reg *prometheus.Registry
}

// registerMetrics puts the collector on a config's registry (Caddy gives
// every config load a new one), once.
func registerMetrics(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	registered.mu.Lock()
	defer registered.mu.Unlock()
	if registered.reg == reg {
		return nil
	}
	if err := reg.Register(theCollector); err != nil {
		return err
	}
	registered.reg = reg
	return nil
}

// poolUsers are the backends sharing a pool, for its labels.
type poolUsers struct {
	mu sync.Mutex
	m  map[*SQL]struct{}
}

func (p *pool) addUser(s *SQL) {
	p.users.mu.Lock()
	if p.users.m == nil {
		p.users.m = map[*SQL]struct{}{}
	}
	p.users.m[s] = struct{}{}
	p.users.mu.Unlock()
}

func (p *pool) removeUser(s *SQL) {
	p.users.mu.Lock()
	delete(p.users.m, s)
	p.users.mu.Unlock()
}

// label is the backend names using the pool, sorted and joined with "+",
// and the server they name (the same for all: the pool key includes the
// DSN).
func (p *pool) label() (name, server string) {
	p.users.mu.Lock()
	names := make([]string, 0, len(p.users.m))
	for s := range p.users.m {
		n := s.BackendName()
		if n == "" {
			n = "sql"
		}
		names = append(names, n)
		server = s.server()
	}
	p.users.mu.Unlock()
	slices.Sort(names)
	return strings.Join(slices.Compact(names), "+"), server
}

// server is the database as metrics, probes and traces name it: the
// driver and the host (or socket, or file), never the DSN.
func (s *SQL) server() string {
	return s.Driver + "://" + s.target.host
}

func (s *SQL) markUp() {
	if s.shared != nil {
		s.shared.down.Store(false)
	}
}

func (s *SQL) markDown() {
	if s.shared != nil {
		s.shared.down.Store(true)
	}
}

// Probe implements backends.Prober: the database answers (Ping), and
// user_query runs and returns the mapping's columns (with an empty
// username, reading no row), now.
func (s *SQL) Probe(ctx context.Context) []backends.ProbeResult {
	if s.db == nil {
		return []backends.ProbeResult{{Err: errors.New("sql backend not provisioned")}}
	}
	res := backends.ProbeResult{Server: s.server(), Detail: "ping, user_query and its columns"}
	if stage, err := s.check(ctx); err != nil {
		res.Err = errors.New(stage + ": " + s.redact.text(err.Error()))
	}
	return []backends.ProbeResult{res}
}

// check pings the database and runs user_query with an empty username,
// checking its columns. It returns the step that failed and the driver's
// own error (not redacted: callers redact it).
func (s *SQL) check(ctx context.Context) (stage string, err error) {
	qctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.db.PingContext(qctx); err != nil {
		if classifyErr(s.dialect, err) == kindTransient {
			s.markDown()
		}
		return "ping", err
	}
	rows, err := s.db.QueryContext(qctx, s.userQ.text, s.userQ.args(map[string]any{"username": ""})...)
	if err != nil {
		if classifyErr(s.dialect, err) == kindTransient {
			s.markDown()
		}
		return "user_query", err
	}
	defer rows.Close()
	s.markUp()
	cols, err := rows.Columns()
	if err == nil {
		_, err = mapColumns(cols)
	}
	if err != nil {
		return "user_query", err
	}
	return "", nil
}

// SetBackendName overrides backends.Base's: metric scrapes of a pool this
// backend may already share with a running config read the name, so it is
// written under the lock those scrapes take.
func (s *SQL) SetBackendName(name string) {
	if s.shared == nil {
		s.Base.SetBackendName(name)
		return
	}
	s.shared.users.mu.Lock()
	s.Base.SetBackendName(name)
	s.shared.users.mu.Unlock()
}
