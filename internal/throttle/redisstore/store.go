// Package redisstore is a throttle.Store kept in Redis, so several Caddy
// instances behind one load balancer count failures and bans together
// (docs: the scale-out spec). The semantics are those of throttle.Memory:
// a true sliding window of the last N failures per key, reservations in
// flight counted against the limit (a burst cannot pass a ban), bans apart
// from counters, success clearing the user key only.
//
// # Keys
//
// Each throttle key (user or address) owns three Redis keys sharing one
// hash tag:
//
//	<key_prefix><zone>:{<d><mac>}:f   failures   (sorted set, TTL = window)
//	<key_prefix><zone>:{<d><mac>}:r   in flight  (sorted set, TTL = lease)
//	<key_prefix><zone>:{<d><mac>}:b   ban        (string, PX = ban)
//
// where d is "u" or "i" and mac is HMAC-SHA-256(secret, d "|" key)
// truncated to 128 bits, in hex. The secret is Options.KeySecret, or when
// empty a key derived from the prefix and the zone (the same on every
// instance; it hides names from a casual reader of Redis, but only a real
// secret stops a dictionary check of candidate names). Members and values
// are random reservation ids and "1": no username or address is stored.
//
// # Atomicity and Cluster
//
// Every Lua script works on the three keys of one throttle key, so it is
// atomic, and in a Cluster its keys are in one slot (the hash tag). The user
// and the address of one attempt are usually in different slots, so one
// script over both would fail with CROSSSLOT; instead Reserve sends one
// script per key in a single pipeline (one round trip, per node in a
// Cluster). Each key's check-and-reserve is atomic, which is what keeps a
// burst from passing that key's limit. When one key grants and the other
// refuses, the granted reservation is removed again (compensation, a second
// round trip only in that case); until then it counts against its key, which
// can only refuse an attempt, never admit an extra one. If the compensation
// fails, the reservation expires with its lease.
//
// # Reservations in flight
//
// A reservation is a member of the key's in-flight sorted set scored by its
// deadline (server time + Options.Lease), not a counter: a Caddy that dies
// mid-login leaves members that stop counting at their own deadline, however
// busy the key stays (a counter whose TTL is refreshed on every Reserve
// would keep a dead instance's reservations alive for as long as attacks
// continue), and a Commit or Release removes exactly its own member, so a
// late or repeated call can never free someone else's slot.
//
// # When Redis fails
//
// A refused connection, a timeout, an auth error, CLUSTERDOWN…: Reserve and
// Banned answer by Options.OnError: OnErrorLocal (the default) uses
// Options.Fallback, this instance's throttle.Memory; OnErrorOpen does not
// throttle; OnErrorClosed returns an error that is not ErrThrottled (the
// handler answers "unavailable"). Each round trip is bounded by
// Options.Timeout, and after a failed one the store skips Redis for
// Options.Retry (a second), so an outage costs one slow login per second, not
// one per login. Under OnErrorLocal, bans the fallback started during an
// outage keep refusing after Redis is back, until they end.
package redisstore

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/kayako-loginshare/caddy-loginshare/internal/throttle"
)

// OnError values.
const (
	OnErrorLocal  = "local"
	OnErrorOpen   = "open"
	OnErrorClosed = "closed"
)

// Defaults for zero Options fields.
const (
	DefaultKeyPrefix = "loginshare:"
	DefaultTimeout   = 250 * time.Millisecond
	DefaultRetry     = time.Second
	// DefaultLease covers the handler's longest timeout (90 s) with room.
	DefaultLease = 100 * time.Second
)

// Options are the store's settings besides the limits.
type Options struct {
	// Zone is part of every key: the handler's zone name.
	Zone string
	// KeyPrefix starts every key (default DefaultKeyPrefix).
	KeyPrefix string
	// KeySecret keys the HMAC of key names. Empty: a key derived from
	// KeyPrefix and Zone.
	KeySecret []byte
	// Timeout bounds each Redis round trip (default DefaultTimeout). The
	// client must have ContextTimeoutEnabled (NewClient sets it).
	Timeout time.Duration
	// OnError is OnErrorLocal (default), OnErrorOpen or OnErrorClosed.
	OnError string
	// Fallback is the store used while Redis fails under OnErrorLocal; New
	// makes one from the config when nil.
	Fallback *throttle.Memory
	// Lease is how long a reservation counts when it is never committed or
	// released (its instance died). Set it to the handler's timeout plus a
	// margin (default DefaultLease).
	Lease time.Duration
	// Retry is how long Redis is skipped after a failed round trip
	// (default DefaultRetry).
	Retry time.Duration
	// Logger gets one WARN per outage and an INFO when Redis answers again
	// (default: none).
	Logger *zap.Logger
	// OnOutage, when set, is called with true when an outage starts and
	// false when it ends (for a metric).
	OnOutage func(down bool)
}

// Store is a throttle.Store in Redis. It is safe for concurrent use.
type Store struct {
	c       redis.UniversalClient
	opts    Options
	mac     []byte
	base    string // prefix + zone + ":"
	perUser int
	perIP   int
	userWin time.Duration
	ipWin   time.Duration
	ban     time.Duration

	skipUntil atomic.Int64 // unix nanoseconds; Redis is skipped before it
	outage    atomic.Bool
}

// New returns a store over client for cfg (MaxKeys applies to the fallback
// only: Redis memory is bounded by the keys' TTLs).
func New(client redis.UniversalClient, cfg throttle.Config, opts Options) *Store {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = DefaultKeyPrefix
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Retry <= 0 {
		opts.Retry = DefaultRetry
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.OnError == "" {
		opts.OnError = OnErrorLocal
	}
	if opts.OnError == OnErrorLocal && opts.Fallback == nil {
		opts.Fallback = throttle.New(cfg)
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if cfg.UserWindow <= 0 {
		cfg.UserWindow = throttle.DefaultWindow
	}
	if cfg.IPWindow <= 0 {
		cfg.IPWindow = throttle.DefaultWindow
	}
	if cfg.Ban <= 0 {
		cfg.Ban = throttle.DefaultBan
	}
	s := &Store{
		c: client, opts: opts,
		base:    opts.KeyPrefix + opts.Zone + ":",
		perUser: max(cfg.PerUser, 0), perIP: max(cfg.PerIP, 0),
		userWin: cfg.UserWindow, ipWin: cfg.IPWindow, ban: cfg.Ban,
	}
	s.mac = opts.KeySecret
	if len(s.mac) == 0 {
		h := sha256.Sum256([]byte("caddy-loginshare throttle key v1|" + opts.KeyPrefix + "|" + opts.Zone))
		s.mac = h[:]
	}
	return s
}

// ValidOnError reports whether v is an on_error value ("" is the default).
func ValidOnError(v string) bool {
	return v == "" || v == OnErrorLocal || v == OnErrorOpen || v == OnErrorClosed
}

// slot is one throttle key of an attempt, as Redis key names.
type slot struct {
	user  bool
	base  string // <prefix><zone>:{<d><mac>}
	limit int
	win   time.Duration
}

func (s *Store) slot(user bool, key string) slot {
	d := "i"
	limit, win := s.perIP, s.ipWin
	if user {
		d, limit, win = "u", s.perUser, s.userWin
	}
	m := hmac.New(sha256.New, s.mac)
	m.Write([]byte(d + "|" + key))
	var sum [sha256.Size]byte
	return slot{user: user, base: s.base + "{" + d + hex.EncodeToString(m.Sum(sum[:0])[:16]) + "}", limit: limit, win: win}
}

func (sl slot) keys() []string { return []string{sl.base + ":f", sl.base + ":r", sl.base + ":b"} }

func (sl slot) dim() string {
	if sl.user {
		return "user"
	}
	return "ip"
}

func (s *Store) slots(k throttle.Keys) []slot {
	var out []slot
	if k.User != "" && s.perUser > 0 {
		out = append(out, s.slot(true, k.User))
	}
	if k.IP != "" && s.perIP > 0 {
		out = append(out, s.slot(false, k.IP))
	}
	return out
}

// errSkipped is the error of a call made while Redis is being skipped.
var errSkipped = errors.New("redis throttle store: skipped after a recent failure")

// up reports whether Redis should be asked now.
func (s *Store) up() bool { return time.Now().UnixNano() >= s.skipUntil.Load() }

// result records a round trip's outcome for the circuit breaker. An error
// caused by the caller's own context ending is not Redis's fault.
func (s *Store) result(parent context.Context, err error) {
	if err == nil {
		if s.outage.CompareAndSwap(true, false) {
			s.opts.Logger.Info("redis throttle store answers again; shared throttling resumed", zap.String("zone", s.opts.Zone))
			if s.opts.OnOutage != nil {
				s.opts.OnOutage(false)
			}
		}
		return
	}
	if parent.Err() != nil {
		return
	}
	s.skipUntil.Store(time.Now().Add(s.opts.Retry).UnixNano())
	if s.outage.CompareAndSwap(false, true) {
		s.opts.Logger.Warn("redis throttle store failed; throttling with on_error until it answers",
			zap.String("zone", s.opts.Zone), zap.String("on_error", s.opts.OnError), zap.Error(err))
		if s.opts.OnOutage != nil {
			s.opts.OnOutage(true)
		}
	}
}

// call is one scripted call of a pipeline.
type call struct {
	script *redis.Script
	keys   []string
	args   []any
}

// run sends calls in one pipeline within the timeout and returns their
// replies. After a script cache flush (a restarted Redis) it sends them
// again with EVAL, which also loads them.
func (s *Store) run(ctx context.Context, calls []call) ([]any, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	out, err := s.pipe(ctx, calls, false)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		out, err = s.pipe(ctx, calls, true)
	}
	return out, err
}

func (s *Store) pipe(ctx context.Context, calls []call, eval bool) ([]any, error) {
	cmds := make([]*redis.Cmd, len(calls))
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			if eval {
				cmds[i] = c.script.Eval(ctx, p, c.keys, c.args...)
			} else {
				cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
			}
		}
		return nil
	})
	out := make([]any, len(calls))
	for i, c := range cmds {
		v, e := c.Result()
		if e != nil && err == nil {
			err = e
		}
		out[i] = v
	}
	if err != nil {
		return out, err
	}
	return out, nil
}

func us(d time.Duration) int64 { return d.Microseconds() }

// newID returns a random reservation id (no user data).
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Reserve implements throttle.Store.
func (s *Store) Reserve(ctx context.Context, k throttle.Keys) (throttle.Reservation, error) {
	slots := s.slots(k)
	if len(slots) == 0 {
		return noReservation{}, nil
	}
	if s.opts.OnError == OnErrorLocal {
		// Bans the fallback set during an outage outlive it.
		if until, banned, _ := s.opts.Fallback.Banned(ctx, k); banned {
			return nil, &throttle.Refusal{Dimension: s.localDim(ctx, k), Until: until}
		}
	}
	if !s.up() {
		return s.reserveFailed(ctx, k, errSkipped)
	}
	r := &reservation{s: s, id: newID(), k: k, slots: slots}
	calls := make([]call, len(slots))
	for i, sl := range slots {
		calls[i] = call{reserveScript, sl.keys(), []any{sl.limit, us(sl.win), us(s.opts.Lease), r.id}}
	}
	out, err := s.run(ctx, calls)
	s.result(ctx, err)
	var refusal *throttle.Refusal
	granted := make([]slot, 0, len(slots))
	if err == nil {
		for i, v := range out {
			code, pttl, perr := parseReserve(v)
			if perr != nil {
				err = perr
				break
			}
			switch code {
			case 2:
				granted = append(granted, slots[i])
			case 0:
				if refusal == nil {
					refusal = &throttle.Refusal{Dimension: slots[i].dim(), Until: time.Now().Add(time.Duration(pttl) * time.Millisecond)}
				}
			default:
				if refusal == nil {
					refusal = &throttle.Refusal{Dimension: slots[i].dim()}
				}
			}
		}
	}
	if err != nil || refusal != nil {
		// Undo what was granted. On error the replies are unknown: undo
		// every slot (removing an absent member does nothing).
		undo := granted
		if err != nil {
			undo = slots
		}
		if len(undo) > 0 {
			(&reservation{s: s, id: r.id, slots: undo}).release(context.WithoutCancel(ctx), false)
		}
	}
	if err != nil {
		return s.reserveFailed(ctx, k, err)
	}
	if refusal != nil {
		return nil, refusal
	}
	return r, nil
}

// localDim names the dimension of a fallback ban for a Refusal.
func (s *Store) localDim(ctx context.Context, k throttle.Keys) string {
	if _, banned, _ := s.opts.Fallback.Banned(ctx, throttle.Keys{User: k.User}); banned {
		return "user"
	}
	return "ip"
}

func parseReserve(v any) (code, pttl int64, err error) {
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return 0, 0, fmt.Errorf("redis throttle store: unexpected reply %T", v)
	}
	code, ok1 := a[0].(int64)
	pttl, ok2 := a[1].(int64)
	if !ok1 || !ok2 {
		return 0, 0, errors.New("redis throttle store: unexpected reply")
	}
	return code, pttl, nil
}

// reserveFailed answers Reserve by OnError when Redis failed.
func (s *Store) reserveFailed(ctx context.Context, k throttle.Keys, err error) (throttle.Reservation, error) {
	switch s.opts.OnError {
	case OnErrorOpen:
		return noReservation{}, nil
	case OnErrorClosed:
		return nil, fmt.Errorf("redis throttle store unavailable (on_error closed): %w", err)
	default:
		return s.opts.Fallback.Reserve(ctx, k)
	}
}

// Banned implements throttle.Store: one pipeline of PTTLs.
func (s *Store) Banned(ctx context.Context, k throttle.Keys) (time.Time, bool, error) {
	slots := s.slots(k)
	if len(slots) == 0 {
		return time.Time{}, false, nil
	}
	var lu time.Time
	lb := false
	if s.opts.OnError == OnErrorLocal {
		lu, lb, _ = s.opts.Fallback.Banned(ctx, k)
	}
	if !s.up() {
		return s.bannedFailed(ctx, k, errSkipped)
	}
	cctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	cmds := make([]*redis.DurationCmd, len(slots))
	_, err := s.c.Pipelined(cctx, func(p redis.Pipeliner) error {
		for i, sl := range slots {
			cmds[i] = p.PTTL(cctx, sl.base+":b")
		}
		return nil
	})
	s.result(ctx, err)
	if err != nil {
		return s.bannedFailed(ctx, k, err)
	}
	now := time.Now()
	until, banned := lu, lb
	for _, c := range cmds {
		if d := c.Val(); d > 0 {
			banned = true
			if u := now.Add(d); u.After(until) {
				until = u
			}
		}
	}
	if !banned {
		return time.Time{}, false, nil
	}
	return until, true, nil
}

func (s *Store) bannedFailed(ctx context.Context, k throttle.Keys, err error) (time.Time, bool, error) {
	switch s.opts.OnError {
	case OnErrorOpen:
		return time.Time{}, false, nil
	case OnErrorClosed:
		return time.Time{}, false, fmt.Errorf("redis throttle store unavailable (on_error closed): %w", err)
	default:
		return s.opts.Fallback.Banned(ctx, k)
	}
}

// reservation is a Redis store's Reservation.
type reservation struct {
	s     *Store
	id    string
	k     throttle.Keys // in this process only, for the fallback
	slots []slot
	once  sync.Once
}

// Commit implements throttle.Reservation.
func (r *reservation) Commit(ctx context.Context) (started bool, err error) {
	r.once.Do(func() { started, err = r.commit(ctx) })
	return started, err
}

func (r *reservation) commit(ctx context.Context) (bool, error) {
	s := r.s
	var err error = errSkipped
	if s.up() {
		calls := make([]call, len(r.slots))
		for i, sl := range r.slots {
			calls[i] = call{commitScript, sl.keys(), []any{sl.limit, us(sl.win), s.ban.Milliseconds(), r.id}}
		}
		var out []any
		out, err = s.run(ctx, calls)
		s.result(ctx, err)
		if err == nil {
			started := false
			for _, v := range out {
				if n, ok := v.(int64); ok && n == 1 {
					started = true
				}
			}
			return started, nil
		}
	}
	if s.opts.OnError == OnErrorLocal {
		// The guess happened: count it here rather than not at all.
		if lr, lerr := s.opts.Fallback.Reserve(ctx, r.k); lerr == nil {
			return lr.Commit(ctx)
		}
	}
	return false, fmt.Errorf("redis throttle store: failure not recorded: %w", err)
}

// Release implements throttle.Reservation.
func (r *reservation) Release(ctx context.Context, success bool) (err error) {
	r.once.Do(func() { err = r.release(ctx, success) })
	return err
}

func (r *reservation) release(ctx context.Context, success bool) error {
	s := r.s
	if !s.up() {
		return nil // the members expire with their lease
	}
	calls := make([]call, len(r.slots))
	for i, sl := range r.slots {
		clear := "0"
		if success && sl.user {
			clear = "1"
		}
		calls[i] = call{releaseScript, sl.keys()[:2], []any{r.id, clear}}
	}
	_, err := s.run(ctx, calls)
	s.result(ctx, err)
	if err != nil {
		return fmt.Errorf("redis throttle store: release not recorded: %w", err)
	}
	return nil
}

type noReservation struct{}

func (noReservation) Commit(context.Context) (bool, error) { return false, nil }
func (noReservation) Release(context.Context, bool) error  { return nil }

// KeyBase is the Redis key stem of one throttle key (for tests and
// operators checking a ban with redis-cli): user selects the dimension.
func (s *Store) KeyBase(user bool, key string) string { return s.slot(user, key).base }

// Interface guards
var (
	_ throttle.Store       = (*Store)(nil)
	_ throttle.Reservation = (*reservation)(nil)
)
