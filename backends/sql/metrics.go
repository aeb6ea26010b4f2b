package sql

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
)

func init() { backends.AddServerSource(serverSamples) }

// serverSamples reports every live pool once, as
// caddy_loginshare_server_up{backend,server} and
// caddy_loginshare_pool_connections{…,pool="sql"}; two sites whose backends
// share a pool give one series, labelled with both names.
func serverSamples(emit func(backends.ServerSample)) {
	pools.Range(func(_, v any) bool {
		p, ok := v.(*pool)
		if !ok {
			return true
		}
		name, server := p.label()
		if name == "" {
			return true
		}
		st := p.db.Stats()
		emit(backends.ServerSample{Backend: name, Server: server, Up: !p.down.Load(),
			Pools: []backends.PoolCount{{Pool: "sql", Idle: st.Idle, InUse: st.InUse}}})
		return true
	})
}

// registerMetrics puts the server and pool collector on a config's registry.
func registerMetrics(ctx caddy.Context) error {
	return backends.RegisterMetrics(ctx.GetMetricsRegistry())
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
