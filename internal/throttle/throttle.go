// Package throttle keeps Authelia-style login regulation state: failed guesses
// are counted per normalised username and per end-user IP address over a
// sliding window, and a key that reaches its limit is banned for a while.
//
// The handler uses it like this, around the backend call:
//
//	u, ip := throttle.UserKey(username), throttle.IPKey(ipaddress)
//	if banned, until := s.Banned(u, ip); banned { /* refuse: throttled */ }
//	// … authenticate …
//	if failedGuess { s.Failure(u, ip) } else if ok { s.Success(u) }
//
// # Semantics
//
// Every key holds the timestamps of its most recent failures, at most the
// dimension's limit N of them (a ring). When a failure is recorded and the
// oldest of the last N failures is less than the window old, the key is
// banned for Config.Ban and its counter is cleared. This is a true sliding
// window: N failures spread over more than the window never ban. A failure
// exactly one window after the oldest one no longer counts with it. A ban
// covers the half-open interval [start, start+Ban). While a key is banned,
// further failures for it are ignored (they neither count nor extend the
// ban); the handler refuses banned requests before any backend call anyway.
//
// Success clears the user's counter only: an IP that guesses many accounts
// and gets one right keeps its count, as in Authelia.
//
// # Memory
//
// Counters live in one LRU of at most Config.MaxKeys entries (users and IPs
// together); recording a failure makes a key most recently used and a new key
// evicts the least recently used one. Bans live in a separate set, also
// bounded at MaxKeys, that counters never evict. Each counter's ring grows
// only as failures arrive, so memory is bounded both by MaxKeys×limit
// timestamps and by the number of failures actually recorded. Expired bans are
// pruned lazily (oldest first, amortised O(1) per call); there is no
// background goroutine and nothing to stop.
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
// A Store is safe for concurrent use. One mutex guards all state and is held
// only for a few map and list operations (never across a login or a backend
// call). It is deliberately not sharded: one lock keeps the LRU order and
// both bounds exact, and at roughly 100 ns per call (BenchmarkFailure,
// BenchmarkBannedMiss) it sustains millions of calls per second, far more
// than a login endpoint bounded by max_concurrent and directory binds can
// make. Banned on a miss does not allocate.
package throttle

import (
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
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

type dim uint8

const (
	dimUser dim = iota
	dimIP
)

// counter is one key's failure ring, linked into the LRU list.
type counter struct {
	prev, next *counter
	key        string
	d          dim
	head       int32   // when the ring is full: index of the oldest stamp
	times      []int64 // stamps; len grows to the limit, then it is a ring
}

// ban is one active (or expired, not yet pruned) ban, linked into the
// expiry-ordered queue.
type ban struct {
	prev, next *ban
	key        string
	d          dim
	until      int64 // exclusive
}

// Store holds the regulation state. Create it with New; a nil *Store is valid
// and never bans.
type Store struct {
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
	users, ips           map[string]*counter
	lru                  counter // sentinel: next = most recent, prev = least recent
	userBans, ipBans     map[string]*ban
	banq                 ban // sentinel: next = expires soonest, prev = latest
}

// New returns an empty Store for cfg, with defaults applied to zero fields.
func New(cfg Config) *Store {
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
	s := &Store{
		now:        time.Now,
		epoch:      now,
		epochWall:  now.Round(0),
		perUser:    min(max(cfg.PerUser, 0), math.MaxInt32),
		perIP:      min(max(cfg.PerIP, 0), math.MaxInt32),
		userWindow: int64(cfg.UserWindow),
		ipWindow:   int64(cfg.IPWindow),
		banLen:     int64(cfg.Ban),
		maxKeys:    cfg.MaxKeys,
		users:      make(map[string]*counter),
		ips:        make(map[string]*counter),
		userBans:   make(map[string]*ban),
		ipBans:     make(map[string]*ban),
	}
	s.lru.next, s.lru.prev = &s.lru, &s.lru
	s.banq.next, s.banq.prev = &s.banq, &s.banq
	return s
}

// SetClock replaces time.Now as the Store's clock (tests inject time with it;
// nil restores time.Now). Call it before the Store is used: stamps already
// recorded were taken with the previous clock.
func (s *Store) SetClock(now func() time.Time) {
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
func (s *Store) stamp() int64 { return int64(s.now().Sub(s.epoch)) }

// UserKey returns the throttle key of a typed username: case-folded (two
// names get the same key exactly when strings.EqualFold says they are equal),
// with a `DOMAIN\` prefix and an `@realm` suffix removed, so JDOE,
// EXAMPLE\jdoe and jdoe@example.org share one key. Like LDAP's insignificant-
// space and "map to nothing" rules (RFC 4518), leading and trailing spaces
// are dropped, inner runs of white space count as one space, and invisible
// format and control characters (soft hyphen, zero-width space, …) are
// ignored, so such variants of one account name cannot each get a fresh
// budget of guesses. The realm is cut at the first '@' and the domain at the
// last '\' before it; a cut that would leave nothing is not made ("@x.org"
// and `a\` stay whole). Unicode normalisation (NFC/NFKC) is not applied: the
// standard library has none. The empty username gives "" (not counted); any
// other gives a non-empty key.
func UserKey(username string) string {
	if username == "" {
		return ""
	}
	if plainASCII(username) {
		return username
	}
	k := canon(username)
	if k == "" {
		return username // only spaces or invisible characters
	}
	if i := strings.IndexByte(k, '@'); i >= 0 {
		if p := strings.TrimSuffix(k[:i], " "); p != "" {
			k = p
		}
	}
	if i := strings.LastIndexByte(k, '\\'); i >= 0 {
		if p := strings.TrimPrefix(k[i+1:], " "); p != "" {
			k = p
		}
	}
	return k
}

// plainASCII reports whether s is already its own key: printable ASCII
// without upper case, space, '@' or '\'.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '@' || c == '\\' || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// canon folds case, drops invisible characters, maps white space to ' ',
// collapses runs of spaces and trims them.
func canon(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case isSpace(r):
			space = b.Len() > 0
			continue
		case ignorable(r):
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldRune maps r to the lower case of the smallest rune in its simple case
// folding orbit: a function of the orbit, hence of EqualFold equivalence.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return unicode.ToLower(m)
}

func isSpace(r rune) bool {
	return unicode.IsSpace(r) || unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp)
}

// ignorable approximates RFC 4518 §2.2 "mapped to nothing".
func ignorable(r rune) bool {
	switch {
	case r == 0x034F, r == 0x1806, 0x180B <= r && r <= 0x180D,
		0xFE00 <= r && r <= 0xFE0F, r == 0xFFFC:
		return true
	}
	return unicode.In(r, unicode.Cc, unicode.Cf)
}

// IPKey returns the throttle key of an end-user address: an IPv4 address per
// address, an IPv6 address per /64 (an IPv4-mapped IPv6 address counts as the
// IPv4 address; a zone is ignored). Empty or unparsable input gives "", which
// is not counted.
func IPKey(ip string) string {
	a, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return ""
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ""
	}
	return p.String()
}

// Banned reports whether either key is banned now and, if so, until when (the
// later of the two ends). An empty key is not checked. Expired bans it meets
// are dropped.
func (s *Store) Banned(userKey, ipKey string) (bool, time.Time) {
	if s == nil {
		return false, time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.banq.next == &s.banq {
		return false, time.Time{}
	}
	now := s.stamp()
	u1, b1 := s.activeBan(s.userBans, userKey, now)
	u2, b2 := s.activeBan(s.ipBans, ipKey, now)
	if !b1 && !b2 {
		return false, time.Time{}
	}
	until := u1
	if !b1 || (b2 && u2 > u1) {
		until = u2
	}
	return true, s.epochWall.Add(time.Duration(until))
}

// activeBan returns the end of key's ban in m if it is active now, dropping
// it if it has expired.
func (s *Store) activeBan(m map[string]*ban, key string, now int64) (int64, bool) {
	if key == "" {
		return 0, false
	}
	b := m[key]
	if b == nil {
		return 0, false
	}
	if now < b.until {
		return b.until, true
	}
	s.removeBan(b)
	return 0, false
}

// Failure records one failed guess for both keys (an empty key, or a
// disabled dimension, is skipped; a key that is banned already is not
// counted). A key whose limit is reached within its window is banned for
// Config.Ban and its counter cleared. Failure reports whether a ban started.
func (s *Store) Failure(userKey, ipKey string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.stamp()
	s.pruneBans(now)
	started := false
	if userKey != "" && s.perUser > 0 {
		started = s.fail(dimUser, userKey, now)
	}
	if ipKey != "" && s.perIP > 0 {
		started = s.fail(dimIP, ipKey, now) || started
	}
	return started
}

// Success clears the user's counter after a successful login. The IP's
// counter is kept, as in Authelia, and bans are untouched.
func (s *Store) Success(userKey string) {
	if s == nil || userKey == "" {
		return
	}
	s.mu.Lock()
	if c := s.users[userKey]; c != nil {
		s.removeCounter(c)
	}
	s.mu.Unlock()
}

// Len returns the number of counters and of active bans (expired bans are
// pruned first), for tests and metrics.
func (s *Store) Len() (counters, bans int) {
	if s == nil {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneBans(s.stamp())
	return len(s.users) + len(s.ips), len(s.userBans) + len(s.ipBans)
}

func (s *Store) fail(d dim, key string, now int64) bool {
	counters, bans, limit, window := s.users, s.userBans, s.perUser, s.userWindow
	if d == dimIP {
		counters, bans, limit, window = s.ips, s.ipBans, s.perIP, s.ipWindow
	}
	if b := bans[key]; b != nil {
		if now < b.until {
			return false
		}
		s.removeBan(b)
	}
	c := counters[key]
	if c == nil {
		c = s.newCounter(d, key, limit)
		counters[c.key] = c
	} else {
		s.unlinkCounter(c)
		s.pushCounter(c)
	}
	if !c.record(now, limit, window) {
		return false
	}
	key = c.key // the Store's own copy
	s.removeCounter(c)
	s.addBan(d, key, now+s.banLen)
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

// newCounter returns an empty counter for key at the front of the LRU,
// recycling the least recently used one when the LRU is full. The caller
// stores it in the map under c.key. The key is copied: a caller's string may
// be a slice of a whole request body (url.ParseQuery returns substrings), and
// keeping it would pin that body for as long as the counter lives.
func (s *Store) newCounter(d dim, key string, limit int) *counter {
	var c *counter
	if len(s.users)+len(s.ips) >= s.maxKeys {
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
	c.key, c.d, c.head = strings.Clone(key), d, 0
	s.pushCounter(c)
	return c
}

func (s *Store) pushCounter(c *counter) {
	c.prev, c.next = &s.lru, s.lru.next
	c.next.prev = c
	s.lru.next = c
}

func (s *Store) unlinkCounter(c *counter) {
	c.prev.next, c.next.prev = c.next, c.prev
	c.prev, c.next = nil, nil
}

func (s *Store) removeCounter(c *counter) {
	s.unlinkCounter(c)
	if c.d == dimUser {
		delete(s.users, c.key)
	} else {
		delete(s.ips, c.key)
	}
}

// addBan bans key (the Store's own copy, see newCounter) until the given
// stamp. The key has no ban entry (fail removed an expired one). When the set is full, the ban that expires soonest
// — the front of the queue — makes room.
func (s *Store) addBan(d dim, key string, until int64) {
	var b *ban
	if len(s.userBans)+len(s.ipBans) >= s.maxKeys {
		b = s.banq.next
		s.removeBan(b)
	} else {
		b = new(ban)
	}
	b.key, b.d, b.until = key, d, until
	b.next, b.prev = &s.banq, s.banq.prev
	b.prev.next = b
	s.banq.prev = b
	if d == dimUser {
		s.userBans[key] = b
	} else {
		s.ipBans[key] = b
	}
}

func (s *Store) removeBan(b *ban) {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
	if b.d == dimUser {
		delete(s.userBans, b.key)
	} else {
		delete(s.ipBans, b.key)
	}
}

// pruneBans drops expired bans from the front of the queue.
func (s *Store) pruneBans(now int64) {
	for b := s.banq.next; b != &s.banq && b.until <= now; b = s.banq.next {
		s.removeBan(b)
	}
}
