package redisstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kayako-loginshare/caddy-loginshare/internal/redistest"
	"github.com/kayako-loginshare/caddy-loginshare/internal/throttle"
)

// The suite's limits: short real windows for Redis, the same on a fake
// clock for Memory.
var suiteCfg = throttle.Config{
	PerUser: 5, PerIP: 20,
	UserWindow: 600 * time.Millisecond, IPWindow: 600 * time.Millisecond,
	Ban: 700 * time.Millisecond, MaxKeys: 1000,
}

// harness is one implementation under test.
type harness struct {
	// store returns a fresh store (its own zone) for cfg; a second call with
	// the same name gives a second "instance" of that zone.
	store   func(t *testing.T, cfg throttle.Config, zone string) throttle.Store
	advance func(d time.Duration)
	real    bool // real time (Redis), so Until can be compared with time.Now
}

var (
	shared     *redistest.Server
	sharedOnce sync.Once
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	os.Exit(code)
}

// sharedServer is the test binary's Redis (password, plain TCP).
func sharedServer(t *testing.T) *redistest.Server {
	t.Helper()
	sharedOnce.Do(func() {
		if !redistest.Available() {
			return
		}
		s, err := redistest.Launch(redistest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		shared = s
	})
	if shared == nil {
		redistest.Need(t, redistest.Options{}) // skips, or fails under CI
	}
	return shared
}

func clientFor(t testing.TB, s *redistest.Server, timeout time.Duration) redis.UniversalClient {
	t.Helper()
	c, err := NewClient(ClientConfig{URL: "redis://:" + s.Password + "@" + s.Addr + "/0", Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func harnesses(t *testing.T) map[string]harness {
	var now atomic.Int64
	now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	mem := harness{
		store: func(t *testing.T, cfg throttle.Config, zone string) throttle.Store {
			m := throttle.New(cfg)
			m.SetClock(func() time.Time { return time.Unix(0, now.Load()) })
			return m
		},
		advance: func(d time.Duration) { now.Add(int64(d)) },
	}
	stores := map[string]*Store{}
	var mu sync.Mutex
	rds := harness{
		store: func(t *testing.T, cfg throttle.Config, zone string) throttle.Store {
			srv := sharedServer(t)
			mu.Lock()
			defer mu.Unlock()
			// Generous deadlines: the machine is shared and -race is slow; a
			// failed call would also make the store skip Redis for a second.
			c := clientFor(t, srv, 3*time.Second)
			if err := c.Ping(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			s := New(c, cfg, Options{Zone: zone, OnError: OnErrorClosed, Timeout: 3 * time.Second})
			stores[zone] = s
			return s
		},
		advance: time.Sleep,
		real:    true,
	}
	return map[string]harness{"memory": mem, "redis": rds}
}

// eachStore runs f against Memory and Redis.
func eachStore(t *testing.T, f func(t *testing.T, h harness, zone string)) {
	for name, h := range harnesses(t) {
		t.Run(name, func(t *testing.T) { f(t, h, fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())) })
	}
}

func mustReserve(t *testing.T, s throttle.Store, k throttle.Keys) throttle.Reservation {
	t.Helper()
	r, err := s.Reserve(context.Background(), k)
	if err != nil {
		t.Fatalf("Reserve(%v): %v", k, err)
	}
	return r
}

func fail(t *testing.T, s throttle.Store, k throttle.Keys) bool {
	t.Helper()
	started, err := mustReserve(t, s, k).Commit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return started
}

func refusal(t *testing.T, s throttle.Store, k throttle.Keys) *throttle.Refusal {
	t.Helper()
	r, err := s.Reserve(context.Background(), k)
	if err == nil {
		_ = r.Release(context.Background(), false)
		t.Fatalf("Reserve(%v) granted, want a refusal", k)
	}
	var ref *throttle.Refusal
	if !errors.As(err, &ref) || !errors.Is(err, throttle.ErrThrottled) {
		t.Fatalf("Reserve(%v): %v, want a *throttle.Refusal", k, err)
	}
	return ref
}

func TestSuiteBurst(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness, zone string) {
		s := h.store(t, suiteCfg, zone)
		var granted atomic.Int32
		var wg sync.WaitGroup
		res := make(chan throttle.Reservation, 50)
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.Reserve(context.Background(), throttle.Keys{User: "alice", IP: fmt.Sprintf("198.51.100.%d", i)})
				if err == nil {
					granted.Add(1)
					res <- r
				} else if !errors.Is(err, throttle.ErrThrottled) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		close(res)
		if g := granted.Load(); g != int32(suiteCfg.PerUser) {
			t.Fatalf("burst of 50: %d granted, want exactly per_user = %d", g, suiteCfg.PerUser)
		}
		bans := 0
		for r := range res {
			if started, err := r.Commit(context.Background()); err != nil {
				t.Fatal(err)
			} else if started {
				bans++
			}
		}
		if bans != 1 {
			t.Fatalf("%d bans started, want 1", bans)
		}
		if ref := refusal(t, s, throttle.Keys{User: "alice", IP: "192.0.2.1"}); ref.Dimension != "user" || ref.Until.IsZero() {
			t.Fatalf("refusal %+v, want a user ban", ref)
		}
	})
}

func TestSuiteBanAndExpiry(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness, zone string) {
		s := h.store(t, suiteCfg, zone)
		k := throttle.Keys{User: "bob", IP: "192.0.2.7"}
		for i := range suiteCfg.PerUser {
			if started := fail(t, s, k); started != (i == suiteCfg.PerUser-1) {
				t.Fatalf("failure %d: banStarted %v", i+1, started)
			}
		}
		ref := refusal(t, s, k)
		if ref.Dimension != "user" {
			t.Fatalf("dimension %q", ref.Dimension)
		}
		if d := time.Until(ref.Until); h.real && (d <= 0 || d > suiteCfg.Ban+100*time.Millisecond) {
			t.Fatalf("ban until %v is too far", ref.Until)
		}
		until, banned, err := s.Banned(context.Background(), throttle.Keys{User: "bob"})
		if err != nil || !banned || until.IsZero() {
			t.Fatalf("Banned = %v %v %v", until, banned, err)
		}
		if _, banned, _ := s.Banned(context.Background(), throttle.Keys{User: "carol"}); banned {
			t.Fatal("another user is banned")
		}
		// A different user from the same address is unaffected.
		_ = mustReserve(t, s, throttle.Keys{User: "carol", IP: "192.0.2.7"}).Release(context.Background(), false)
		h.advance(suiteCfg.Ban + 100*time.Millisecond)
		if _, banned, _ := s.Banned(context.Background(), k); banned {
			t.Fatal("still banned after the ban's end")
		}
		// The counter was cleared by the ban: a fresh N failures again.
		for i := range suiteCfg.PerUser - 1 {
			if fail(t, s, k) {
				t.Fatalf("ban after %d failures", i+1)
			}
		}
	})
}

func TestSuiteSuccessClearsUserOnly(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness, zone string) {
		cfg := suiteCfg
		cfg.PerIP = 6
		s := h.store(t, cfg, zone)
		k := throttle.Keys{User: "dave", IP: "192.0.2.9"}
		for range 4 {
			fail(t, s, k)
		}
		if err := mustReserve(t, s, k).Release(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		// The user starts over; the address keeps its 4 and bans at 6.
		if fail(t, s, throttle.Keys{User: "dave"}) {
			t.Fatal("user banned after a success")
		}
		if fail(t, s, throttle.Keys{User: "erin", IP: "192.0.2.9"}) {
			t.Fatal("address banned at its 5th failure")
		}
		if !fail(t, s, throttle.Keys{User: "frank", IP: "192.0.2.9"}) {
			t.Fatal("address not banned at its 6th failure: a success must not clear it")
		}
		if ref := refusal(t, s, throttle.Keys{User: "dave", IP: "192.0.2.9"}); ref.Dimension != "ip" {
			t.Fatalf("dimension %q, want ip", ref.Dimension)
		}
	})
}

func TestSuiteReleaseFreesInFlight(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness, zone string) {
		s := h.store(t, suiteCfg, zone)
		k := throttle.Keys{User: "gina"}
		var rs []throttle.Reservation
		for range suiteCfg.PerUser {
			rs = append(rs, mustReserve(t, s, k))
		}
		if ref := refusal(t, s, k); !ref.Until.IsZero() {
			t.Fatalf("in-flight refusal with Until %v", ref.Until)
		}
		if err := rs[0].Release(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		if err := rs[0].Release(context.Background(), false); err != nil { // twice: nothing
			t.Fatal(err)
		}
		if started, _ := rs[0].Commit(context.Background()); started {
			t.Fatal("commit after release counted")
		}
		rs[0] = mustReserve(t, s, k)
		refusal(t, s, k)
		for _, r := range rs {
			_ = r.Release(context.Background(), false)
		}
		// Released attempts count nothing.
		for range suiteCfg.PerUser - 1 {
			fail(t, s, k)
		}
	})
}

func TestSuiteWindowSlides(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness, zone string) {
		s := h.store(t, suiteCfg, zone)
		k := throttle.Keys{User: "hank"}
		for range suiteCfg.PerUser - 1 {
			fail(t, s, k)
		}
		h.advance(suiteCfg.UserWindow + 50*time.Millisecond)
		for i := range suiteCfg.PerUser - 1 {
			if fail(t, s, k) {
				t.Fatalf("ban at new failure %d: old failures must have left the window", i+1)
			}
		}
		if !fail(t, s, k) {
			t.Fatal("no ban at the Nth failure within the window")
		}
	})
}

func TestSuiteTwoInstancesShare(t *testing.T) {
	h := harnesses(t)["redis"]
	zone := fmt.Sprintf("two-%d", time.Now().UnixNano())
	a, b := h.store(t, suiteCfg, zone), h.store(t, suiteCfg, zone)
	var granted atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			if r, err := s.Reserve(context.Background(), throttle.Keys{User: "ivan", IP: fmt.Sprintf("198.51.100.%d", i)}); err == nil {
				granted.Add(1)
				defer r.Commit(context.Background())
			}
		}()
	}
	wg.Wait()
	if g := granted.Load(); g != int32(suiteCfg.PerUser) {
		t.Fatalf("burst over two instances: %d granted, want %d", g, suiteCfg.PerUser)
	}
	if ref := refusal(t, b, throttle.Keys{User: "ivan"}); ref.Until.IsZero() {
		t.Fatal("no ban seen by instance b")
	}
	refusal(t, a, throttle.Keys{User: "ivan"})
	// Failures spread over both ban on both.
	k := throttle.Keys{User: "judy"}
	for i := range suiteCfg.PerUser {
		s := a
		if i%2 == 1 {
			s = b
		}
		fail(t, s, k)
	}
	refusal(t, a, k)
	refusal(t, b, k)
	time.Sleep(suiteCfg.Ban + 100*time.Millisecond)
	mustReserve(t, a, k).Release(context.Background(), false)
	mustReserve(t, b, k).Release(context.Background(), false)
}
