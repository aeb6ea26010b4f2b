// Package throttle keeps Authelia-style login regulation state: failed guesses
// are counted per normalised username and per end-user IP address over a
// sliding window, and a key that reaches its limit is banned for a while.
//
// The handler uses a Store like this, around the backend call:
//
//	u, ip := throttle.UserKey(username, staff), throttle.IPKey(ipaddress)
//	r, err := store.Reserve(ctx, throttle.Keys{User: u, IP: ip})
//	if err != nil { /* refuse: throttled */ }
//	// … authenticate; the backend's gate reserves the canonical account too …
//	if failedGuess { r.Commit(ctx) } else { r.Release(ctx, ok) }
//
// # Reservations
//
// An attempt is reserved on its keys before any backend is asked, and the
// reservation is then committed as a failure or released. Reserve refuses
// when a key is banned, or when the failures still inside its window plus the
// attempts in flight on it reach the limit. So a burst of simultaneous guesses
// cannot pass a ban: with per_user 5, fifty wrong passwords sent at the same
// instant reach the directory at most five times, however many run at once.
//
// # Semantics
//
// Every key holds the timestamps of its most recent failures, at most the
// dimension's limit N of them (a ring). When a failure is committed and the
// oldest of the last N failures is less than the window old, the key is
// banned for Config.Ban and its counter is cleared. This is a true sliding
// window: N failures spread over more than the window never ban. A failure
// exactly one window after the oldest one no longer counts with it. A ban
// covers the half-open interval [start, start+Ban). While a key is banned,
// further failures for it are ignored (they neither count nor extend the
// ban); Reserve refuses banned keys anyway.
//
// A successful release clears the user's counter only: an IP that guesses
// many accounts and gets one right keeps its count, as in Authelia.
//
// # Memory
//
// Keys are stored as 128-bit digests (SHA-256, truncated), so a key costs the
// same few dozen bytes whatever its length: max_keys bounds bytes, not only
// entries. Counters live in one LRU of at most Config.MaxKeys entries (users
// and IPs together); recording a failure makes a key most recently used and a
// new key evicts the least recently used one. Bans live in a separate set,
// also bounded at MaxKeys, that counters never evict. Each counter's ring
// grows only as failures arrive. Attempts in flight are counted in a third
// map whose entries live only while a request runs. Expired bans are pruned
// lazily (oldest first, amortised O(1) per call); there is no background
// goroutine and nothing to stop.
//
// Ban-set policy when full: the ban that expires soonest is evicted (expired
// ones first, which the lazy pruning normally has already dropped). Every ban
// lasts the same Config.Ban and start times come from a monotonic clock, so
// insertion order is expiry order and this is O(1). The set therefore always
// holds the MaxKeys most recent bans. A flood can evict at most one ban per
// ban it creates. A failed guess advances one user and one address counter,
// so it starts at most 1/PerUser + 1/PerIP bans on average: freeing one
// particular ban early takes about MaxKeys/(1/PerUser + 1/PerIP) guesses
// within one Ban period — 400 000 guesses from 20 000 distinct addresses (or
// IPv6 /64s) with the defaults. The alternative, refusing new bans when full,
// would let the same flood disable banning for everybody, which is worse.
//
// Counter eviction is the known cost of bounded memory: a flood of more than
// MaxKeys distinct keys inside one window forgets the oldest counters, giving
// a slow attacker at most a fresh N guesses per eviction. Active bans are not
// affected.
//
// # Concurrency
//
// A Memory store is safe for concurrent use. One mutex guards all state and is
// held only for a few map and list operations (never across a login or a
// backend call). It is deliberately not sharded: one lock keeps the LRU order
// and both bounds exact, and at well under a microsecond per call it sustains
// far more calls per second than a login endpoint bounded by max_concurrent
// and directory binds can make.
package throttle

import (
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"sync"
	"time"
)

// Defaults applied by New to zero or negative Config fields (the spec's
// Caddyfile defaults, except the limits: a zero limit disables a dimension).
const (
	// DefaultWindow is the sliding window used when a dimension's window is not positive.
	DefaultWindow = 10 * time.Minute
	// DefaultBan is the ban length used when Config.Ban is not positive.
	DefaultBan = 15 * time.Minute
	// DefaultMaxKeys bounds counters and bans when Config.MaxKeys is not positive.
	DefaultMaxKeys = 100000
)

// Config sets the limits of a Store.
type Config struct {
	// PerUser and PerIP are the failures allowed per key within its window;
	// reaching the limit bans the key. 0 (or negative) disables that dimension.
	PerUser, PerIP int
	// UserWindow and IPWindow are the sliding windows (default DefaultWindow).
	UserWindow, IPWindow time.Duration
	// Ban is how long a key stays banned (default DefaultBan).
	Ban time.Duration
	// MaxKeys bounds the counters (an LRU over users and IPs together) and,
	// separately, the active bans (default DefaultMaxKeys).
	MaxKeys int
}

// Keys names the buckets one attempt is counted in: the user key (UserKey of
// the typed name, or of the canonical account through the backend's gate)
// and the address key (IPKey). An empty key is not counted.
type Keys struct {
	User, IP string
}

// Store is the throttle state of one zone. Memory is the in-process
// implementation; a shared store (Redis) implements the same interface. Every
// call takes a context and may fail, since a shared store is a network away.
type Store interface {
	// Reserve reserves one attempt on each non-empty key of an enabled
	// dimension. It returns an error matching ErrThrottled when a key is
	// banned, or when its failures in the window plus the attempts in flight
	// reach the limit; nothing is reserved then.
	Reserve(ctx context.Context, k Keys) (Reservation, error)
	// Banned reports whether either key is banned now and until when (the
	// later end), without reserving anything.
	Banned(ctx context.Context, k Keys) (until time.Time, banned bool, err error)
}

// Reservation is one reserved attempt. Exactly one of Commit and Release
// must be called; later calls do nothing.
type Reservation interface {
	// Commit counts the attempt as a failed guess on its keys and reports
	// whether that started a ban.
	Commit(ctx context.Context) (banStarted bool, err error)
	// Release frees the attempt without counting it. With success the user
	// key's counter is cleared (the address keeps its count).
	Release(ctx context.Context, success bool) error
}

// ErrThrottled is matched (errors.Is) by every refusal of Reserve; the error
// is a *Refusal that says why.
var ErrThrottled = errors.New("throttled")

// Refusal is Reserve's answer for a key over its limit.
type Refusal struct {
	// Dimension is "user" or "ip".
	Dimension string
	// Until is the end of the ban; zero when the refusal is for attempts
	// already in flight (no ban yet: the budget is taken by running logins).
	Until time.Time
}

func (r *Refusal) Error() string {
	if r.Until.IsZero() {
		return r.Dimension + " key: failures and attempts in flight reach the limit"
	}
	return r.Dimension + " key banned until " + r.Until.UTC().Format(time.RFC3339)
}

// Is makes errors.Is(err, ErrThrottled) true.
func (r *Refusal) Is(target error) bool { return target == ErrThrottled }

type dim uint8

const (
	dimUser dim = iota
	dimIP
)

func (d dim) String() string {
	if d == dimIP {
		return "ip"
	}
	return "user"
}

// digest is the stored form of a key: 128 bits of SHA-256 over the dimension
// and the key, so a key's cost does not depend on its length.
type digest [16]byte

func digestOf(d dim, key string) digest {
	h := sha256.New()
	h.Write([]byte{byte(d)})
	h.Write([]byte(key))
	var sum [sha256.Size]byte
	var k digest
	copy(k[:], h.Sum(sum[:0]))
	return k
}

// counter is one key's failure ring, linked into the LRU list.
type counter struct {
	prev, next *counter
	key        digest
	d          dim
	head       int32   // when the ring is full: index of the oldest stamp
	times      []int64 // stamps; len grows to the limit, then it is a ring
}

// ban is one active (or expired, not yet pruned) ban, linked into the
// expiry-ordered queue.
type ban struct {
	prev, next *ban
	key        digest
	until      int64 // exclusive
}

// Memory holds the regulation state of one zone in this process. Create it
// with New; a nil *Memory is valid and never refuses.
type Memory struct {
	mu  sync.Mutex
	now func() time.Time

	// Stamps are nanoseconds since epoch, which carries a monotonic reading
	// in production, so wall-clock steps do not move bans. epochWall converts
	// stamps back to wall time for Banned's answer.
	epoch, epochWall time.Time

	perUser, perIP       int
	userWindow, ipWindow int64
	banLen               int64
	maxKeys              int
	counters             map[digest]*counter
	lru                  counter // sentinel: next = most recent, prev = least recent
	bans                 map[digest]*ban
	banq                 ban // sentinel: next = expires soonest, prev = latest
	inflight             map[digest]int32
}

// New returns an empty Memory store for cfg, with defaults applied to zero fields.
func New(cfg Config) *Memory {
	if cfg.UserWindow <= 0 {
		cfg.UserWindow = DefaultWindow
	}
	if cfg.IPWindow <= 0 {
		cfg.IPWindow = DefaultWindow
	}
	if cfg.Ban <= 0 {
		cfg.Ban = DefaultBan
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	now := time.Now()
	s := &Memory{
		now:        time.Now,
		epoch:      now,
		epochWall:  now.Round(0),
		perUser:    min(max(cfg.PerUser, 0), math.MaxInt32),
		perIP:      min(max(cfg.PerIP, 0), math.MaxInt32),
		userWindow: int64(cfg.UserWindow),
		ipWindow:   int64(cfg.IPWindow),
		banLen:     int64(cfg.Ban),
		maxKeys:    cfg.MaxKeys,
		counters:   make(map[digest]*counter),
		bans:       make(map[digest]*ban),
		inflight:   make(map[digest]int32),
	}
	s.lru.next, s.lru.prev = &s.lru, &s.lru
	s.banq.next, s.banq.prev = &s.banq, &s.banq
	return s
}

// SetClock replaces time.Now as the store's clock (tests inject time with it;
// nil restores time.Now). Call it before the store is used: stamps already
// recorded were taken with the previous clock.
func (s *Memory) SetClock(now func() time.Time) {
	if s == nil {
		return
	}
	if now == nil {
		now = time.Now
	}
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

// stamp reads the clock. Callers hold s.mu.
func (s *Memory) stamp() int64 { return int64(s.now().Sub(s.epoch)) }

func (s *Memory) limits(d dim) (limit int, window int64) {
	if d == dimIP {
		return s.perIP, s.ipWindow
	}
	return s.perUser, s.userWindow
}

// slot is one key of a reservation.
type slot struct {
	key digest
	d   dim
}

// memReservation is a Memory store's Reservation.
type memReservation struct {
	s     *Memory
	slots [2]slot
	n     int
	done  bool // guarded by s.mu
}

// noReservation is what Reserve returns when nothing is counted.
type noReservation struct{}

func (noReservation) Commit(context.Context) (bool, error) { return false, nil }
func (noReservation) Release(context.Context, bool) error  { return nil }

// Reserve implements Store. It never fails for a reason other than ErrThrottled.
func (s *Memory) Reserve(_ context.Context, k Keys) (Reservation, error) {
	if s == nil {
		return noReservation{}, nil
	}
	r := &memReservation{s: s}
	if k.User != "" && s.perUser > 0 {
		r.slots[r.n] = slot{digestOf(dimUser, k.User), dimUser}
		r.n++
	}
	if k.IP != "" && s.perIP > 0 {
		r.slots[r.n] = slot{digestOf(dimIP, k.IP), dimIP}
		r.n++
	}
	if r.n == 0 {
		return noReservation{}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.stamp()
	s.pruneBans(now)
	for _, sl := range r.slots[:r.n] {
		if b := s.bans[sl.key]; b != nil && now < b.until {
			return nil, &Refusal{Dimension: sl.d.String(), Until: s.epochWall.Add(time.Duration(b.until))}
		}
		limit, window := s.limits(sl.d)
		recent := 0
		if c := s.counters[sl.key]; c != nil {
			recent = c.recent(now, window)
		}
		if recent+int(s.inflight[sl.key]) >= limit {
			return nil, &Refusal{Dimension: sl.d.String()}
		}
	}
	for _, sl := range r.slots[:r.n] {
		s.inflight[sl.key]++
	}
	return r, nil
}

// Commit implements Reservation.
func (r *memReservation) Commit(context.Context) (bool, error) {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.done {
		return false, nil
	}
	r.done = true
	now := s.stamp()
	s.pruneBans(now)
	started := false
	for _, sl := range r.slots[:r.n] {
		s.endFlight(sl.key)
		started = s.fail(sl.d, sl.key, now) || started
	}
	return started, nil
}

// Release implements Reservation.
func (r *memReservation) Release(_ context.Context, success bool) error {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.done {
		return nil
	}
	r.done = true
	for _, sl := range r.slots[:r.n] {
		s.endFlight(sl.key)
		if success && sl.d == dimUser {
			if c := s.counters[sl.key]; c != nil {
				s.removeCounter(c)
			}
		}
	}
	return nil
}

func (s *Memory) endFlight(k digest) {
	if n := s.inflight[k] - 1; n > 0 {
		s.inflight[k] = n
	} else {
		delete(s.inflight, k)
	}
}

// Banned implements Store. Expired bans it meets are dropped.
func (s *Memory) Banned(_ context.Context, k Keys) (time.Time, bool, error) {
	banned, until := s.banned(k.User, k.IP)
	return until, banned, nil
}

// banned reports whether either key is banned now and, if so, until when (the
// later of the two ends). An empty key is not checked.
func (s *Memory) banned(userKey, ipKey string) (bool, time.Time) {
	if s == nil {
		return false, time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.banq.next == &s.banq {
		return false, time.Time{}
	}
	now := s.stamp()
	var until int64
	found := false
	for _, sl := range [...]struct {
		key string
		d   dim
	}{{userKey, dimUser}, {ipKey, dimIP}} {
		if sl.key == "" {
			continue
		}
		if u, ok := s.activeBan(digestOf(sl.d, sl.key), now); ok {
			found = true
			until = max(until, u)
		}
	}
	if !found {
		return false, time.Time{}
	}
	return true, s.epochWall.Add(time.Duration(until))
}

// activeBan returns the end of key's ban if it is active now, dropping it if
// it has expired.
func (s *Memory) activeBan(key digest, now int64) (int64, bool) {
	b := s.bans[key]
	if b == nil {
		return 0, false
	}
	if now < b.until {
		return b.until, true
	}
	s.removeBan(b)
	return 0, false
}

// failure records one failed guess for both keys at once, without a
// reservation (tests and benchmarks of the counting rules). An empty key, or
// a disabled dimension, is skipped; a key that is banned already is not
// counted. It reports whether a ban started.
func (s *Memory) failure(userKey, ipKey string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.stamp()
	s.pruneBans(now)
	started := false
	if userKey != "" && s.perUser > 0 {
		started = s.fail(dimUser, digestOf(dimUser, userKey), now)
	}
	if ipKey != "" && s.perIP > 0 {
		started = s.fail(dimIP, digestOf(dimIP, ipKey), now) || started
	}
	return started
}

// success clears the user's counter, as a successful release does.
func (s *Memory) success(userKey string) {
	if s == nil || userKey == "" {
		return
	}
	s.mu.Lock()
	if c := s.counters[digestOf(dimUser, userKey)]; c != nil {
		s.removeCounter(c)
	}
	s.mu.Unlock()
}

// Len returns the number of counters and of active bans (expired bans are
// pruned first), for tests and metrics.
func (s *Memory) Len() (counters, bans int) {
	if s == nil {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneBans(s.stamp())
	return len(s.counters), len(s.bans)
}

func (s *Memory) fail(d dim, key digest, now int64) bool {
	limit, window := s.limits(d)
	if limit <= 0 {
		return false
	}
	if b := s.bans[key]; b != nil {
		if now < b.until {
			return false
		}
		s.removeBan(b)
	}
	c := s.counters[key]
	if c == nil {
		c = s.newCounter(d, key, limit)
		s.counters[key] = c
	} else {
		s.unlinkCounter(c)
		s.pushCounter(c)
	}
	if !c.record(now, limit, window) {
		return false
	}
	s.removeCounter(c)
	s.addBan(key, now+s.banLen)
	return true
}

// record adds a failure at now and reports whether the oldest of the last
// limit failures lies within window.
func (c *counter) record(now int64, limit int, window int64) bool {
	n := len(c.times)
	if n < limit {
		if n == cap(c.times) {
			t := make([]int64, n, min(limit, max(2, 2*n)))
			copy(t, c.times)
			c.times = t
		}
		c.times = append(c.times, now)
		if n+1 < limit {
			return false
		}
		c.head = 0
		return now-c.times[0] < window
	}
	c.times[c.head] = now
	c.head++
	if int(c.head) == limit {
		c.head = 0
	}
	return now-c.times[c.head] < window
}

// recent counts the failures less than window old.
func (c *counter) recent(now, window int64) int {
	n := 0
	for _, t := range c.times {
		if now-t < window {
			n++
		}
	}
	return n
}

// newCounter returns an empty counter for key at the front of the LRU,
// recycling the least recently used one when the LRU is full. The caller
// stores it in the map.
func (s *Memory) newCounter(d dim, key digest, limit int) *counter {
	var c *counter
	if len(s.counters) >= s.maxKeys {
		c = s.lru.prev
		s.removeCounter(c)
		if cap(c.times) <= limit {
			c.times = c.times[:0]
		} else {
			c.times = nil
		}
	} else {
		c = new(counter)
	}
	c.key, c.d, c.head = key, d, 0
	s.pushCounter(c)
	return c
}

func (s *Memory) pushCounter(c *counter) {
	c.prev, c.next = &s.lru, s.lru.next
	c.next.prev = c
	s.lru.next = c
}

func (s *Memory) unlinkCounter(c *counter) {
	c.prev.next, c.next.prev = c.next, c.prev
	c.prev, c.next = nil, nil
}

func (s *Memory) removeCounter(c *counter) {
	s.unlinkCounter(c)
	delete(s.counters, c.key)
}

// addBan bans key until the given stamp. The key has no ban entry (fail
// removed an expired one). When the set is full, the ban that expires
// soonest — the front of the queue — makes room.
func (s *Memory) addBan(key digest, until int64) {
	var b *ban
	if len(s.bans) >= s.maxKeys {
		b = s.banq.next
		s.removeBan(b)
	} else {
		b = new(ban)
	}
	b.key, b.until = key, until
	b.next, b.prev = &s.banq, s.banq.prev
	b.prev.next = b
	s.banq.prev = b
	s.bans[key] = b
}

func (s *Memory) removeBan(b *ban) {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
	delete(s.bans, b.key)
}

// pruneBans drops expired bans from the front of the queue.
func (s *Memory) pruneBans(now int64) {
	for b := s.banq.next; b != &s.banq && b.until <= now; b = s.banq.next {
		s.removeBan(b)
	}
}

// Interface guards
var (
	_ Store       = (*Memory)(nil)
	_ Reservation = (*memReservation)(nil)
	_ Reservation = noReservation{}
)
