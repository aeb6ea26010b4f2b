package throttle

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
)

// clock is a manually advanced clock for SetClock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newStore(cfg Config) (*Memory, *clock) {
	s, c := New(cfg), newClock()
	s.SetClock(c.Now)
	return s, c
}

// step is one action in a scripted scenario.
type step struct {
	advance time.Duration // before the action
	op      string        // "fail", "ok", "check"
	user    string
	ip      string
	banned  bool // "fail": a ban started; "check": Banned answer
}

func TestScenarios(t *testing.T) {
	base := Config{PerUser: 3, PerIP: 5, UserWindow: 10 * time.Minute, IPWindow: 10 * time.Minute, Ban: 15 * time.Minute, MaxKeys: 100}
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			name: "per-user ban after N failures within the window",
			cfg:  base,
			steps: []step{
				{op: "fail", user: "jdoe", ip: "192.0.2.1"},
				{advance: time.Minute, op: "fail", user: "jdoe", ip: "192.0.2.2"},
				{op: "check", user: "jdoe", ip: "192.0.2.3", banned: false},
				{advance: time.Minute, op: "fail", user: "jdoe", ip: "192.0.2.3", banned: true},
				{op: "check", user: "jdoe", ip: "198.51.100.9", banned: true},
				{op: "check", user: "jdoe", ip: "", banned: true},
			},
		},
		{
			name: "N failures spread beyond the window do not ban (sliding)",
			cfg:  base,
			steps: []step{
				{op: "fail", user: "jdoe"},
				{advance: 6 * time.Minute, op: "fail", user: "jdoe"},
				{advance: 6 * time.Minute, op: "fail", user: "jdoe", banned: false}, // oldest is 12m old
				{op: "check", user: "jdoe", banned: false},
				// the last three are now at 6m, 12m, 13m: within 10m
				{advance: time.Minute, op: "fail", user: "jdoe", banned: true},
			},
		},
		{
			name: "ban expires after Ban and counting starts afresh",
			cfg:  base,
			steps: []step{
				{op: "fail", user: "jdoe"},
				{op: "fail", user: "jdoe"},
				{op: "fail", user: "jdoe", banned: true},
				{advance: 15*time.Minute - time.Nanosecond, op: "check", user: "jdoe", banned: true},
				{op: "fail", user: "jdoe", banned: false}, // ignored while banned
				{advance: time.Nanosecond, op: "check", user: "jdoe", banned: false},
				{op: "fail", user: "jdoe", banned: false},
				{op: "fail", user: "jdoe", banned: false},
				{op: "check", user: "jdoe", banned: false},
				{op: "fail", user: "jdoe", banned: true},
			},
		},
		{
			name: "failures during a ban neither count nor extend it",
			cfg:  base,
			steps: []step{
				{op: "fail", user: "jdoe"},
				{op: "fail", user: "jdoe"},
				{op: "fail", user: "jdoe", banned: true},
				{advance: 14 * time.Minute, op: "fail", user: "jdoe"},
				{op: "fail", user: "jdoe"},
				{op: "fail", user: "jdoe", banned: false},
				{advance: time.Minute, op: "check", user: "jdoe", banned: false},
			},
		},
		{
			name: "Success resets the user count, not the IP count",
			cfg:  base,
			steps: []step{
				{op: "fail", user: "jdoe", ip: "192.0.2.1"},
				{op: "fail", user: "jdoe", ip: "192.0.2.1"},
				{op: "ok", user: "jdoe"},
				{op: "fail", user: "jdoe", ip: "192.0.2.1"},
				{op: "fail", user: "jdoe", ip: "192.0.2.1", banned: false}, // user at 2, IP at 4
				{op: "check", user: "jdoe", ip: "192.0.2.1", banned: false},
				{op: "fail", user: "asmith", ip: "192.0.2.1", banned: true}, // IP reaches 5
				{op: "check", user: "nobody", ip: "192.0.2.1", banned: true},
				{op: "check", user: "jdoe", ip: "192.0.2.2", banned: false},
			},
		},
		{
			name: "per-IP ban is independent of the user",
			cfg:  base,
			steps: []step{
				{op: "fail", user: "u1", ip: "192.0.2.7"},
				{op: "fail", user: "u2", ip: "192.0.2.7"},
				{op: "fail", user: "u3", ip: "192.0.2.7"},
				{op: "fail", user: "u4", ip: "192.0.2.7"},
				{op: "check", user: "u5", ip: "192.0.2.7", banned: false},
				{op: "fail", user: "u5", ip: "192.0.2.7", banned: true},
				{op: "check", user: "anyone", ip: "192.0.2.7", banned: true},
				{op: "check", user: "u1", ip: "192.0.2.8", banned: false},
				{op: "check", user: "u1", ip: "", banned: false},
			},
		},
		{
			name: "a different user from the same unbanned IP still passes",
			cfg:  base,
			steps: []step{
				{op: "fail", user: "jdoe", ip: "192.0.2.1"},
				{op: "fail", user: "jdoe", ip: "192.0.2.1"},
				{op: "fail", user: "jdoe", ip: "192.0.2.1", banned: true},
				{op: "check", user: "jdoe", ip: "192.0.2.1", banned: true},
				{op: "check", user: "asmith", ip: "192.0.2.1", banned: false},
				{op: "ok", user: "asmith"},
				{op: "check", user: "jdoe", ip: "192.0.2.1", banned: true}, // another user's success does not lift it
			},
		},
		{
			name: "IPv6 addresses share a /64, IPv4-mapped counts as IPv4",
			cfg:  Config{PerIP: 3, MaxKeys: 100},
			steps: []step{
				{op: "fail", user: "a", ip: "2001:db8:1:2::1"},
				{op: "fail", user: "b", ip: "2001:db8:1:2:ffff:ffff:ffff:ffff"},
				{op: "fail", user: "c", ip: "2001:DB8:1:2::abcd%eth0", banned: true},
				{op: "check", ip: "2001:db8:1:2:1:2:3:4", banned: true},
				{op: "check", ip: "2001:db8:1:3::1", banned: false},
				{op: "fail", ip: "::ffff:192.0.2.1"},
				{op: "fail", ip: "192.0.2.1"},
				{op: "fail", ip: "::ffff:c000:201", banned: true},
				{op: "check", ip: "192.0.2.1", banned: true},
			},
		},
		{
			name: "spellings of one account share the user bucket",
			cfg:  base,
			steps: []step{
				{op: "fail", user: "JDOE"},
				{op: "fail", user: `EXAMPLE\jdoe`},
				{op: "fail", user: "jdoe@example.org", banned: true},
				{op: "check", user: " JDoe ", banned: true},
			},
		},
		{
			name: "PerUser 0 disables the user dimension",
			cfg:  Config{PerUser: 0, PerIP: 2, MaxKeys: 100},
			steps: []step{
				{op: "fail", user: "jdoe", ip: "192.0.2.1"},
				{op: "fail", user: "jdoe", ip: "192.0.2.2"},
				{op: "fail", user: "jdoe", ip: "192.0.2.3"},
				{op: "fail", user: "jdoe", ip: "192.0.2.4"},
				{op: "check", user: "jdoe", banned: false},
				{op: "fail", user: "jdoe", ip: "192.0.2.4", banned: true},
				{op: "check", user: "jdoe", ip: "192.0.2.4", banned: true},
				{op: "check", user: "jdoe", ip: "192.0.2.5", banned: false},
			},
		},
		{
			name: "PerIP 0 disables the IP dimension",
			cfg:  Config{PerUser: 2, PerIP: 0, MaxKeys: 100},
			steps: []step{
				{op: "fail", user: "u1", ip: "192.0.2.1"},
				{op: "fail", user: "u2", ip: "192.0.2.1"},
				{op: "fail", user: "u3", ip: "192.0.2.1"},
				{op: "check", ip: "192.0.2.1", banned: false},
				{op: "fail", user: "u3", ip: "192.0.2.1", banned: true},
				{op: "check", user: "u4", ip: "192.0.2.1", banned: false},
			},
		},
		{
			name: "limit 1 bans on the first failure",
			cfg:  Config{PerUser: 1, MaxKeys: 10},
			steps: []step{
				{op: "check", user: "jdoe", banned: false},
				{op: "fail", user: "jdoe", banned: true},
			},
		},
		{
			name: "empty keys are not counted",
			cfg:  Config{PerUser: 1, PerIP: 1, MaxKeys: 10},
			steps: []step{
				{op: "fail", user: "", ip: "", banned: false},
				{op: "fail", user: "", ip: "   ", banned: false},
				{op: "check", banned: false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := newStore(tt.cfg)
			for i, st := range tt.steps {
				c.Advance(st.advance)
				u, ip := UserKey(st.user, true), IPKey(st.ip)
				switch st.op {
				case "fail":
					if got := s.failure(u, ip); got != st.banned {
						t.Fatalf("step %d: Failure(%q, %q) = %v, want %v", i, u, ip, got, st.banned)
					}
				case "ok":
					s.success(u)
				case "check":
					got, until := s.banned(u, ip)
					if got != st.banned {
						t.Fatalf("step %d: Banned(%q, %q) = %v, want %v", i, u, ip, got, st.banned)
					}
					if got != !until.IsZero() {
						t.Fatalf("step %d: Banned = %v with until %v", i, got, until)
					}
					if got && !until.After(c.Now()) {
						t.Fatalf("step %d: until %v is not after now %v", i, until, c.Now())
					}
				default:
					t.Fatalf("bad op %q", st.op)
				}
			}
		})
	}
}

func TestBannedUntil(t *testing.T) {
	s, c := newStore(Config{PerUser: 1, PerIP: 1, Ban: 15 * time.Minute, MaxKeys: 10})
	start := c.Now()
	if !s.failure("jdoe", "") {
		t.Fatal("no user ban")
	}
	c.Advance(5 * time.Minute)
	if !s.failure("", "192.0.2.1") {
		t.Fatal("no IP ban")
	}
	tests := []struct {
		user, ip string
		want     time.Time
	}{
		{"jdoe", "", start.Add(15 * time.Minute)},
		{"", "192.0.2.1", start.Add(20 * time.Minute)},
		{"jdoe", "192.0.2.1", start.Add(20 * time.Minute)}, // the later of the two
		{"jdoe", "192.0.2.2", start.Add(15 * time.Minute)},
	}
	for _, tt := range tests {
		banned, until := s.banned(tt.user, tt.ip)
		if !banned || !until.Equal(tt.want) {
			t.Errorf("Banned(%q, %q) = %v, %v; want true, %v", tt.user, tt.ip, banned, until, tt.want)
		}
	}
	c.Advance(10 * time.Minute) // user ban over, IP ban left
	if banned, until := s.banned("jdoe", "192.0.2.1"); !banned || !until.Equal(start.Add(20*time.Minute)) {
		t.Errorf("after user expiry: %v, %v", banned, until)
	}
	if _, bans := s.Len(); bans != 1 {
		t.Errorf("bans = %d, want 1 (expired one pruned)", bans)
	}
	c.Advance(5 * time.Minute)
	if _, bans := s.Len(); bans != 0 {
		t.Errorf("bans = %d, want 0", bans)
	}
}

func TestBoundary(t *testing.T) {
	s, c := newStore(Config{PerUser: 2, UserWindow: time.Minute, MaxKeys: 10})
	s.failure("a", "")
	c.Advance(time.Minute) // exactly one window: the first no longer counts
	if s.failure("a", "") {
		t.Fatal("banned with the oldest failure exactly one window old")
	}
	c.Advance(time.Minute - time.Nanosecond)
	if !s.failure("a", "") {
		t.Fatal("not banned with two failures within the window")
	}
}

func TestUserKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"jdoe", "jdoe"},
		{"JDOE", "jdoe"},
		{`EXAMPLE\jdoe`, "jdoe"},
		{`example\JDoe`, "jdoe"},
		{"jdoe@example.org", "jdoe"},
		{"JDOE@EXAMPLE.ORG", "jdoe"},
		{`EXAMPLE\jdoe@example.org`, "jdoe"},
		{`a\b\jdoe`, "jdoe"},           // domain cut at the last backslash
		{"jdoe@a@example.org", "jdoe"}, // realm cut at the first @
		{`jdoe@exa\mple`, "jdoe"},      // backslash inside the realm is ignored
		{"jdoe@", "jdoe"},
		{"@example.org", "@example.org"}, // nothing before @: not cut
		{"@", "@"},
		{`a\`, `a\`}, // nothing after \: not cut
		{`A\`, `a\`},
		{`\`, `\`},
		{`\jdoe`, "jdoe"},
		{`EXAMPLE\@example.org`, `example\`},
		{"  jdoe  ", "jdoe"},
		{"j  doe", "j doe"},
		{"j\tdoe", "j doe"},
		{"J\u00a0Doe", "j doe"}, // no-break space is a space
		{`EXAMPLE\ jdoe`, "jdoe"},
		{"jdoe @example.org", "jdoe"},
		{"jd\u00adoe", "jdoe"}, // soft hyphen
		{"jdoe\u200b", "jdoe"}, // zero-width space
		{"\u200b", "\u200b"},   // nothing visible at all: kept whole, still a key
		{"   ", "   "},
		{"ÉMILE", "émile"},
		{"Émile", "émile"},
		{"émile", "émile"},
		{"\u212Aarl", "karl"}, // Kelvin sign folds with k
		{"ΟΔΥΣΣΕΥΣ", "οδυσσευσ"},
		{"οδυσσευς", "οδυσσευσ"}, // final sigma folds with sigma
		{"ǅemal", "džemal"},      // title case digraph: NFKC splits it
		{"STRASSE", "strasse"},
		{"ſtraße", "straße"}, // long s folds with s; ß is not expanded (simple folding)
		// Compatibility spellings that directories match as the plain name.
		{"ｊｄｏｅ", "jdoe"},
		{"𝐣𝐝𝐨𝐞", "jdoe"},
		{"ⓙⓓⓞⓔ", "jdoe"},
		{"ⒿⒹⓄⒺ", "jdoe"},
		{"ｊdoe", "jdoe"},
		{"𝕁𝔻𝕆𝔼", "jdoe"},
		{"ｊｄｏｅ＠ｅｘａｍｐｌｅ．ｏｒｇ", "jdoe"},
		{"EXAMPLE＼jdoe", "jdoe"},
		{"émile", "émile"}, // combining accent composes
	}
	for _, tt := range tests {
		if got := UserKey(tt.in, true); got != tt.want {
			t.Errorf("UserKey(%q, true) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestUserKeyUserEndpointKeepsRealm(t *testing.T) {
	tests := []struct{ in, want string }{
		{"john@a.com", "john@a.com"},
		{"JOHN@A.COM", "john@a.com"},
		{"ｊｏｈｎ＠ａ．ｃｏｍ", "john@a.com"},
		{`EXAMPLE\jdoe`, "jdoe"},
		{"jdoe", "jdoe"},
	}
	for _, tt := range tests {
		if got := UserKey(tt.in, false); got != tt.want {
			t.Errorf("UserKey(%q, false) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if UserKey("john@a.com", false) == UserKey("john@b.com", false) {
		t.Error("two customers' e-mail addresses share a key")
	}
}

// TestUserKeyIdempotent checks key(key(s)) == key(s) for every code point
// alone and between letters, on both endpoints.
func TestUserKeyIdempotent(t *testing.T) {
	bad := 0
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		for _, s := range []string{string(r), "a" + string(r) + "b", string(r) + string(r)} {
			for _, staff := range []bool{true, false} {
				k := UserKey(s, staff)
				if k2 := UserKey(k, staff); k2 != k {
					if bad++; bad <= 10 {
						t.Errorf("U+%04X in %q (staff %v): key %q, key of key %q", r, s, staff, k, k2)
					}
				}
			}
		}
	}
	if bad > 10 {
		t.Errorf("%d strings in all", bad)
	}
}

// TestUserKeyEqualFold checks that case-insensitively equal names share a key.
func TestUserKeyEqualFold(t *testing.T) {
	pairs := [][2]string{
		{"ÉMILE", "émile"}, {"ΣΊΣΥΦΟΣ", "σίσυφος"}, {"\u212A", "k"}, {"İ", "İ"},
		{"ǅ", "Ǆ"}, {"ǅ", "ǆ"}, {"Ⱥ", "ⱥ"}, {"\u1E9E", "ß"},
	}
	for _, p := range pairs {
		if a, b := UserKey(p[0], true), UserKey(p[1], true); a != b {
			t.Errorf("UserKey(%q, true) = %q, UserKey(%q, true) = %q; want equal", p[0], a, p[1], b)
		}
	}
}

func TestIPKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"   ", ""},
		{"not an ip", "not an ip"}, // counted by its text
		{" Unknown ", "unknown"},
		{"192.0.2.1:8080", "192.0.2.1:8080"},
		{"192.0.2.300", "192.0.2.300"},
		{"203.000.113.8", "203.000.113.8"},
		{"203.0.113.9, 10.0.0.1", "203.0.113.9, 10.0.0.1"},
		{strings.Repeat("x", 100), strings.Repeat("x", 64)},
		{strings.Repeat("é", 40), strings.Repeat("é", 32)},
		{"192.0.2.1", "192.0.2.1"},
		{" 192.0.2.1 ", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"::FFFF:C000:0201", "192.0.2.1"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:DB8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
	}
	for _, tt := range tests {
		if got := IPKey(tt.in); got != tt.want {
			t.Errorf("IPKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNilStore(t *testing.T) {
	var s *Memory
	s.SetClock(time.Now)
	if s.failure("a", "b") {
		t.Error("nil store banned")
	}
	if b, _ := s.banned("a", "b"); b {
		t.Error("nil store banned")
	}
	s.success("a")
	if c, b := s.Len(); c != 0 || b != 0 {
		t.Error("nil store not empty")
	}
}

func TestCounterLRU(t *testing.T) {
	s, _ := newStore(Config{PerUser: 2, PerIP: 2, MaxKeys: 3})
	s.failure("a", "")
	s.failure("b", "")
	s.failure("c", "")
	s.failure("a", "x") // a banned (2nd failure) and its counter freed; x counted → a gone, {b, c, x}
	if c, b := s.Len(); c != 3 || b != 1 {
		t.Fatalf("Len = %d, %d; want 3, 1", c, b)
	}
	s.failure("d", "") // evicts b, the least recently used
	if s.failure("b", "") {
		t.Fatal("b kept its count after eviction")
	}
	if !s.failure("d", "") {
		t.Fatal("d lost its count")
	}
	if banned, _ := s.banned("a", ""); !banned {
		t.Fatal("counter churn lifted a ban")
	}
}

func TestBanSetBound(t *testing.T) {
	s, c := newStore(Config{PerUser: 1, Ban: time.Hour, MaxKeys: 3})
	for _, u := range []string{"a", "b", "c"} {
		s.failure(u, "")
		c.Advance(time.Minute)
	}
	s.failure("d", "") // full of active bans: a (soonest to expire) makes room
	if _, bans := s.Len(); bans != 3 {
		t.Fatalf("bans = %d, want 3", bans)
	}
	for u, want := range map[string]bool{"a": false, "b": true, "c": true, "d": true} {
		if got, _ := s.banned(u, ""); got != want {
			t.Errorf("Banned(%q) = %v, want %v", u, got, want)
		}
	}
	c.Advance(time.Hour - 2*time.Minute) // b expired, c and d active
	s.failure("e", "")
	for u, want := range map[string]bool{"b": false, "c": true, "d": true, "e": true} {
		if got, _ := s.banned(u, ""); got != want {
			t.Errorf("Banned(%q) = %v, want %v", u, got, want)
		}
	}
}

// heapAlloc returns the live heap after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestFloodBounded(t *testing.T) {
	const maxKeys, flood = 1000, 100000
	tests := []struct {
		name string
		cfg  Config
	}{
		{"counters only", Config{PerUser: 5, PerIP: 20, MaxKeys: maxKeys}},
		{"every failure bans", Config{PerUser: 1, PerIP: 1, MaxKeys: maxKeys}},
		{"mixed", Config{PerUser: 2, PerIP: 3, MaxKeys: maxKeys}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := heapAlloc()
			s, c := newStore(tt.cfg)
			for i := range flood {
				u := "user" + strconv.Itoa(i)
				ip := fmt.Sprintf("2001:db8:%x:%x::1", i>>16, i&0xffff)
				s.failure(u, ip)
				if i%3 == 0 {
					s.failure(u, ip) // some keys get a second failure
				}
				if i%1000 == 0 {
					c.Advance(time.Second)
				}
				if i%10007 == 0 {
					if n, b := s.Len(); n > maxKeys || b > maxKeys {
						t.Fatalf("after %d: Len = %d, %d; bound %d", i, n, b, maxKeys)
					}
				}
			}
			after := heapAlloc()
			n, b := s.Len()
			if n > maxKeys || b > maxKeys {
				t.Fatalf("Len = %d, %d; bound %d", n, b, maxKeys)
			}
			// Everything the store holds after the flood — maps, lists, rings,
			// key strings — must fit 2×MaxKeys entries (counters and bans) at
			// 1 KiB each, whereas 100 000 retained keys would take megabytes.
			growth := int64(after) - int64(before)
			limit := int64(2 * maxKeys * 1024)
			t.Logf("Len = %d counters, %d bans; heap growth over the flood: %d bytes (limit %d)", n, b, growth, limit)
			if growth > limit {
				t.Errorf("heap grew %d bytes during a flood of %d keys, want ≤ %d (bounded by MaxKeys)", growth, flood, limit)
			}
			runtime.KeepAlive(s)
		})
	}
}

// TestBytesPerKey measures the live heap per counter and per ban, key strings
// included.
func TestBytesPerKey(t *testing.T) {
	if testing.Short() {
		if os.Getenv("CI") == "true" {
			t.Fatal("-short under CI=true: the memory measurement must run in CI")
		}
		t.Skip("memory measurement (skipped with -short)")
	}
	const n = 100000
	keys := make([]string, n)
	measure := func(cfg Config, failures int) float64 {
		for i := range keys {
			keys[i] = ""
		}
		before := heapAlloc()
		s, _ := newStore(cfg)
		for i := range keys {
			keys[i] = "user" + strconv.Itoa(1000000+i) // 11 bytes, like a typical login
			for range failures {
				s.failure(keys[i], "")
			}
		}
		for i := range keys {
			keys[i] = "" // the store's references only
		}
		after := heapAlloc()
		runtime.KeepAlive(s)
		c, b := s.Len()
		if c+b != n {
			t.Fatalf("Len = %d, %d; want %d entries", c, b, n)
		}
		return float64(after-before) / n
	}
	one := measure(Config{PerUser: 5, MaxKeys: n}, 1)
	four := measure(Config{PerUser: 5, MaxKeys: n}, 4)
	bans := measure(Config{PerUser: 1, MaxKeys: n}, 1)
	t.Logf("bytes per key: counter with 1 failure %.0f, counter with 4 failures %.0f, ban %.0f", one, four, bans)
	for _, v := range []float64{one, four, bans} {
		if v > 512 {
			t.Errorf("%.0f bytes per key, want ≤ 512", v)
		}
	}
}

// TestKeysCopied checks that the Store does not keep a caller's string alive:
// form values from url.ParseQuery are substrings of the whole request body.
func TestKeysCopied(t *testing.T) {
	for _, cfg := range []Config{{PerUser: 5, PerIP: 5}, {PerUser: 1, PerIP: 1}} {
		s, _ := newStore(cfg)
		before := heapAlloc()
		body := strings.Repeat("x", 1<<20) + "username=jdoe&ipaddress=192.0.2.1"
		u := body[len(body)-len("jdoe&ipaddress=192.0.2.1") : len(body)-len("&ipaddress=192.0.2.1")]
		if UserKey(u, true) != "jdoe" {
			t.Fatalf("bad slice %q", u)
		}
		s.failure(UserKey(u, true), IPKey("192.0.2.1"))
		body, u = "", ""
		after := heapAlloc()
		if n, b := s.Len(); n+b == 0 {
			t.Fatal("nothing stored")
		}
		if grew := int64(after) - int64(before); grew > 64<<10 {
			t.Errorf("cfg %+v: heap grew %d bytes: the 1 MiB body is still referenced", cfg, grew)
		}
		runtime.KeepAlive(s)
	}
}

func TestConcurrent(t *testing.T) {
	s, c := newStore(Config{PerUser: 50, PerIP: 1000, MaxKeys: 500})
	// 50 goroutines each fail once on one shared user: exactly one ban starts.
	var started atomic.Int32
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.failure("shared", fmt.Sprintf("192.0.2.%d", g)) {
				started.Add(1)
			}
		}()
	}
	wg.Wait()
	if started.Load() != 1 {
		t.Fatalf("%d bans started, want 1", started.Load())
	}
	if b, _ := s.banned("shared", ""); !b {
		t.Fatal("shared user not banned")
	}

	// Mixed load over overlapping keys, with the clock moving.
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				u := "u" + strconv.Itoa((g*7+i)%700)
				ip := "198.51.100." + strconv.Itoa(i%200)
				switch i % 5 {
				case 0:
					s.success(u)
				case 1:
					s.banned(u, ip)
				case 2:
					s.Len()
				default:
					s.failure(u, ip)
				}
				if g == 0 && i%100 == 0 {
					c.Advance(time.Minute)
				}
			}
		}()
	}
	wg.Wait()
	if n, b := s.Len(); n > 500 || b > 500 {
		t.Fatalf("Len = %d, %d; bound 500", n, b)
	}
}

func TestBannedMissAllocs(t *testing.T) {
	s, _ := newStore(Config{PerUser: 1, PerIP: 1, MaxKeys: 100})
	s.failure("banned", "192.0.2.1")
	for _, tt := range []struct{ u, ip string }{{"jdoe", "192.0.2.2"}, {"", ""}} {
		if a := testing.AllocsPerRun(1000, func() { s.banned(tt.u, tt.ip) }); a != 0 {
			t.Errorf("Banned(%q, %q) miss: %v allocs, want 0", tt.u, tt.ip, a)
		}
	}
	empty := New(Config{PerUser: 1})
	if a := testing.AllocsPerRun(1000, func() { empty.banned("jdoe", "192.0.2.2") }); a != 0 {
		t.Errorf("Banned on an empty store: %v allocs, want 0", a)
	}
	if a := testing.AllocsPerRun(1000, func() { UserKey("jdoe", true) }); a != 0 {
		t.Errorf("UserKey of a plain name: %v allocs, want 0", a)
	}
}

func BenchmarkBannedMiss(b *testing.B) {
	s := New(Config{PerUser: 1, PerIP: 1, MaxKeys: 100000})
	for i := range 10000 {
		s.failure("banned"+strconv.Itoa(i), "10.1."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256))
	}
	u, ip := UserKey("jdoe", true), IPKey("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		if banned, _ := s.banned(u, ip); banned {
			b.Fatal("banned")
		}
	}
}

// BenchmarkFailure records failures from parallel goroutines. "hot": 1024
// users and addresses that fit in the LRU, with a 1ns window so that keys
// keep counting instead of ending up banned (a banned key returns early);
// "flood": 65 536 of each against MaxKeys 100 000, so nearly every call evicts
// and inserts two counters (the worst case, cache-miss bound).
func BenchmarkFailure(b *testing.B) {
	for _, bc := range []struct {
		name   string
		keys   int
		window time.Duration
	}{{"hot", 1 << 10, time.Nanosecond}, {"flood", 1 << 16, 0}} {
		b.Run(bc.name, func(b *testing.B) {
			s := New(Config{PerUser: 5, PerIP: 20, UserWindow: bc.window, IPWindow: bc.window, MaxKeys: 100000})
			n := bc.keys
			users, ips := make([]string, n), make([]string, n)
			for i := range n {
				users[i] = "user" + strconv.Itoa(i)
				ips[i] = IPKey(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255))
			}
			var seq atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seq.Add(1) * 7919)
				for pb.Next() {
					i++
					s.failure(users[i%n], ips[(i*31)%n])
				}
			})
		})
	}
}
