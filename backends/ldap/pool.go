package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// serverSet is the shared, long-lived part of a backend: one entry per
// configured server, each with its two connection pools. It is stored in the
// package's caddy.UsagePool and destroyed when the last config using it is
// cleaned up.
type serverSet struct {
	cfg     *connSettings
	servers []*server

	// svcRejected is the UnixNano until which the service account is known
	// to be rejected (49): logins answer unavailable without binding again
	// until then, so a wrong service password costs one bind per
	// server_cooldown instead of one per login (AD may still lock it out
	// eventually; the WARN says so first).
	svcRejected atomic.Int64

	stop    chan struct{}
	janitor sync.WaitGroup
	once    sync.Once

	users users // the backends using this set, for metrics
}

// server is one directory server with its pools and health.
type server struct {
	set      *serverSet
	url      string
	hostport string
	ldaps    bool
	starttls bool
	tls      *tls.Config
	failedAt atomic.Int64 // UnixNano of the last transport failure; 0 = healthy
	search   *pool        // service-bound connections for searches
	bind     *pool        // connections used only for user binds
}

func newServerSet(cfg *connSettings) *serverSet {
	ss := &serverSet{cfg: cfg, stop: make(chan struct{})}
	for _, s := range cfg.servers {
		srv := &server{set: ss, url: s.url, hostport: s.hostport, ldaps: s.ldaps, starttls: s.starttls, tls: s.tls}
		srv.search = newPool(cfg.poolSize, cfg.idleTimeout)
		srv.bind = newPool(cfg.bindPoolSize, cfg.idleTimeout)
		srv.search.set, srv.bind.set = ss, ss
		ss.servers = append(ss.servers, srv)
	}
	ss.janitor.Add(1)
	go ss.sweep()
	return ss
}

// Destruct closes every idle connection; connections in use are closed when
// they are given back.
func (ss *serverSet) Destruct() error {
	ss.once.Do(func() {
		close(ss.stop)
		ss.janitor.Wait()
		for _, s := range ss.servers {
			s.search.close()
			s.bind.close()
		}
	})
	return nil
}

// sweep closes idle connections older than idle_timeout.
func (ss *serverSet) sweep() {
	defer ss.janitor.Done()
	every := ss.cfg.idleTimeout / 2
	if every > 30*time.Second {
		every = 30 * time.Second
	}
	if every < 10*time.Millisecond {
		every = 10 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ss.stop:
			return
		case <-t.C:
			for _, s := range ss.servers {
				s.search.expire()
				s.bind.expire()
			}
		}
	}
}

// order returns the servers to try: healthy ones in configured order, then
// those cooling down, least recently failed first (so a single server is
// retried on the next login after a restart).
func (ss *serverSet) order() []*server {
	now := time.Now().UnixNano()
	var up, down []*server
	for _, s := range ss.servers {
		f := s.failedAt.Load()
		if f == 0 || now-f >= int64(ss.cfg.cooldown) {
			up = append(up, s)
		} else {
			down = append(down, s)
		}
	}
	sort.SliceStable(down, func(i, j int) bool { return down[i].failedAt.Load() < down[j].failedAt.Load() })
	return append(up, down...)
}

// markFailed reports whether the server was healthy before.
func (s *server) markFailed() bool { return s.failedAt.Swap(time.Now().UnixNano()) == 0 }
func (s *server) markOK()          { s.failedAt.Store(0) }

// --- connections ---

// countingConn counts bytes written, which tells whether a bind request left
// this machine (then it must never be retried elsewhere).
type countingConn struct {
	net.Conn
	written atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.written.Add(int64(n))
	return n, err
}

// conn is one LDAP connection with its raw socket, on which deadlines are
// enforced: go-ldap's Bind and Search take no context.
type conn struct {
	l        *goldap.Conn
	raw      *countingConn
	srv      *server
	lastUsed time.Time
	reused   bool // taken from the idle list rather than dialled for this login
	timedOut bool // the last operation ran into its deadline
}

func (c *conn) close() {
	_ = c.raw.Close() // unblocks go-ldap's reader at once
	_ = c.l.Close()
}

// run executes op with the earlier of ctx's deadline and now+timeout. When the
// deadline passes or ctx is cancelled the socket is closed, which makes op
// return; such a connection is never reused.
func (c *conn) run(ctx context.Context, timeout time.Duration, op func() error) error {
	if err := ctx.Err(); err != nil {
		return &transportError{op: "request", err: err}
	}
	dl := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = c.raw.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = c.raw.Close() })
	err := op()
	cancelled := !stop()
	c.timedOut = cancelled || !time.Now().Before(dl)
	if !cancelled {
		_ = c.raw.SetDeadline(time.Time{})
	}
	if err != nil && c.timedOut {
		cause := error(errTimeout)
		if ctx.Err() != nil {
			cause = ctx.Err()
		}
		return &transportError{op: "request", err: fmt.Errorf("%w (%v)", cause, err)}
	}
	if cancelled && err == nil {
		// The answer arrived, but the socket is gone: don't reuse it.
		c.timedOut = true
	}
	return err
}

var errTimeout = errors.New("timed out")

func (c *conn) search(ctx context.Context, req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	var res *goldap.SearchResult
	err := c.run(ctx, c.srv.set.cfg.requestTimeout, func() error {
		var err error
		res, err = c.l.Search(req)
		return err
	})
	return res, err
}

// usable reports whether c may go back to a pool after err.
func (c *conn) usable(err error) bool {
	return !c.timedOut && !c.l.IsClosing() && (err == nil || !isTransport(err))
}

// dial opens a connection: TCP, TLS (ldaps) or StartTLS, and for search
// connections the service bind, all within dial_timeout.
func (s *server) dial(ctx context.Context, service bool) (*conn, error) {
	cfg := s.set.cfg
	dctx, cancel := context.WithTimeout(ctx, cfg.dialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", s.hostport)
	if err != nil {
		return nil, &transportError{op: "dial", err: err}
	}
	raw := &countingConn{Conn: nc}
	var lc net.Conn = raw
	if s.ldaps {
		tc := tls.Client(raw, s.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			_ = raw.Close()
			return nil, &transportError{op: "TLS handshake", err: err}
		}
		lc = tc
	}
	l := goldap.NewConn(lc, s.ldaps)
	l.Start()
	c := &conn{l: l, raw: raw, srv: s}
	if s.starttls {
		if err := c.run(dctx, cfg.dialTimeout, func() error { return l.StartTLS(s.tls) }); err != nil {
			c.close()
			// Whatever the reason (refused, handshake), never continue in clear text.
			return nil, &transportError{op: "StartTLS", err: err}
		}
	}
	if service && cfg.bindDN != "" {
		err := c.run(dctx, cfg.dialTimeout, func() error { return l.Bind(cfg.bindDN, cfg.password) })
		if err != nil {
			c.close()
			if isTransport(err) {
				return nil, &transportError{op: "service bind", err: err}
			}
			if goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
				s.set.svcRejected.Store(time.Now().Add(cfg.cooldown).UnixNano())
			}
			return nil, &serviceError{err: err}
		}
	}
	return c, nil
}

// --- pools ---

var (
	errAcquireTimeout = errors.New("no pooled connection free within pool_acquire_timeout")
	errPoolClosed     = errors.New("connection pool closed (configuration unloaded)")
)

// pool bounds the connections of one kind to one server. A slot is held for
// the whole checkout; idle connections need no slot, and since a new one is
// dialled only when none is idle, live connections never exceed the size.
type pool struct {
	set         *serverSet // for the wait metric; may be nil in tests
	slots       chan struct{}
	idleTimeout time.Duration

	mu     sync.Mutex
	idle   []*conn // LIFO: the most recently used first
	closed bool
}

func newPool(size int, idleTimeout time.Duration) *pool {
	return &pool{slots: make(chan struct{}, size), idleTimeout: idleTimeout}
}

// get returns an idle connection (unless fresh) or dials a new one.
func (p *pool) get(ctx context.Context, acquire time.Duration, fresh bool, dial func(context.Context) (*conn, error)) (*conn, error) {
	select {
	case p.slots <- struct{}{}:
	default:
		start := time.Now()
		t := time.NewTimer(acquire)
		defer t.Stop()
		defer func() { p.set.observeWait(time.Since(start)) }()
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, &transportError{op: "pool", err: ctx.Err()}
		case <-t.C:
			return nil, errAcquireTimeout
		}
	}
	if !fresh {
		if c := p.popIdle(); c != nil {
			return c, nil
		}
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		<-p.slots
		return nil, errPoolClosed
	}
	c, err := dial(ctx)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return c, nil
}

// popIdle returns a live idle connection, closing dead and expired ones.
func (p *pool) popIdle() *conn {
	var dead []*conn
	defer func() {
		for _, c := range dead {
			c.close()
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if c.l.IsClosing() || now.Sub(c.lastUsed) >= p.idleTimeout {
			dead = append(dead, c)
			continue
		}
		c.reused = true
		c.timedOut = false
		return c
	}
	return nil
}

// put gives a connection back; a connection that failed is closed instead.
func (p *pool) put(c *conn, ok bool) {
	if ok && !c.l.IsClosing() {
		p.mu.Lock()
		if !p.closed && len(p.idle) < cap(p.slots) {
			c.lastUsed = time.Now()
			p.idle = append(p.idle, c)
			c = nil
		}
		p.mu.Unlock()
	}
	if c != nil {
		c.close()
	}
	<-p.slots
}

// expire closes idle connections older than idleTimeout or already dead.
func (p *pool) expire() {
	var dead []*conn
	p.mu.Lock()
	now := time.Now()
	keep := p.idle[:0]
	for _, c := range p.idle {
		if c.l.IsClosing() || now.Sub(c.lastUsed) >= p.idleTimeout {
			dead = append(dead, c)
		} else {
			keep = append(keep, c)
		}
	}
	for i := len(keep); i < len(p.idle); i++ {
		p.idle[i] = nil
	}
	p.idle = keep
	p.mu.Unlock()
	for _, c := range dead {
		c.close()
	}
}

func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// --- operations on a server ---

// search runs req on a pooled service connection. A pooled connection that
// breaks (not a timeout) is replaced by a fresh one and the search retried
// once; searches are safe to repeat, binds never are.
func (s *server) searchPooled(ctx context.Context, req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	cfg := s.set.cfg
	dial := func(ctx context.Context) (*conn, error) { return s.dial(ctx, true) }
	c, err := s.search.get(ctx, cfg.acquireTimeout, false, dial)
	if err != nil {
		return nil, err
	}
	res, err := c.search(ctx, req)
	ok := c.usable(err)
	s.search.put(c, ok)
	if ok || !c.reused || c.timedOut || isBusy(err) || ctx.Err() != nil {
		return res, err
	}
	c, err = s.search.get(ctx, cfg.acquireTimeout, true, dial)
	if err != nil {
		return nil, err
	}
	res, err = c.search(ctx, req)
	s.search.put(c, c.usable(err))
	return res, err
}

// bindUser binds as dn exactly once. It returns the connection, still
// checked out, on success (the caller gives it back with s.bind.put). A
// connection found dead before the bind request was written is replaced;
// once the request was written, a broken connection is errBindInterrupted.
func (s *server) bindUser(ctx context.Context, dn, password string) (*conn, error) {
	cfg := s.set.cfg
	dial := func(ctx context.Context) (*conn, error) { return s.dial(ctx, false) }
	for attempt := 0; ; attempt++ {
		c, err := s.bind.get(ctx, cfg.acquireTimeout, attempt > 0, dial)
		if err != nil {
			return nil, err // nothing was sent
		}
		before := c.raw.written.Load()
		err = c.run(ctx, cfg.requestTimeout, func() error { return c.l.Bind(dn, password) })
		if err == nil {
			return c, nil
		}
		if !isTransport(err) {
			s.bind.put(c, c.usable(err))
			return nil, err
		}
		sent := c.raw.written.Load() != before
		s.bind.put(c, false)
		if sent || attempt >= 1 || ctx.Err() != nil {
			if sent {
				return nil, &bindInterrupted{err: err}
			}
			return nil, err
		}
	}
}

// probe dials s (with the service bind), reads the root DSE and closes the
// connection. The read matters without a service bind: over TLS 1.3 a server
// that refuses the client (a required client certificate, say) only drops the
// connection after the handshake looked fine, so a dial alone proves nothing.
// An LDAP error answer (some directories hide the root DSE) still shows the
// server is there; only transport errors fail the probe.
func (ss *serverSet) probe(ctx context.Context, s *server, skipBind bool) error {
	c, err := s.dial(ctx, !skipBind)
	if err != nil {
		return err
	}
	defer c.close()
	_, err = c.search(ctx, goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases,
		1, 0, false, "(objectClass=*)", []string{"supportedLDAPVersion"}, nil))
	if err != nil && isTransport(err) {
		return err
	}
	return nil
}
