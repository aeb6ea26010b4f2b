package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kayako-loginshare/caddy-loginshare/internal/redistest"
	"github.com/kayako-loginshare/caddy-loginshare/internal/throttle"
)

// dump returns every key of the zone with every member and value.
func dump(t *testing.T, c redis.UniversalClient, match string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	var mu sync.Mutex // ForEachMaster runs the nodes concurrently
	scan := func(ctx context.Context, n *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		iter := n.Scan(ctx, 0, match, 100).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			out = append(out, k)
			switch n.Type(ctx, k).Val() {
			case "string":
				out = append(out, n.Get(ctx, k).Val())
			case "zset":
				for _, z := range n.ZRangeWithScores(ctx, k, 0, -1).Val() {
					out = append(out, fmt.Sprint(z.Member, " ", z.Score))
				}
			default:
				t.Errorf("key %s of unexpected type", k)
			}
		}
		return iter.Err()
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, scan)
	} else {
		err = scan(ctx, c.(*redis.Client))
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func checkNoClearText(t *testing.T, entries []string, secrets ...string) {
	t.Helper()
	if len(entries) == 0 {
		t.Fatal("no keys in Redis")
	}
	for _, e := range entries {
		for _, s := range secrets {
			if strings.Contains(strings.ToLower(e), strings.ToLower(s)) {
				t.Fatalf("Redis holds %q in clear: %q", s, e)
			}
		}
	}
}

func TestNoNamesOrAddressesInRedis(t *testing.T) {
	srv := sharedServer(t)
	c := clientFor(t, srv, time.Second)
	zone := fmt.Sprintf("clear-%d", time.Now().UnixNano())
	s := New(c, suiteCfg, Options{Zone: zone, KeySecret: []byte("k")})
	user, ip := "alice.smith@example.com", "203.0.113.77"
	k := throttle.Keys{User: user, IP: ip}
	for range suiteCfg.PerUser - 1 {
		fail(t, s, k)
	}
	r := mustReserve(t, s, k) // in flight, visible
	entries := dump(t, c, "*"+zone+"*")
	checkNoClearText(t, entries, user, "alice", "smith", "example", ip, "203.0.113")
	_ = r.Release(context.Background(), false)
	fail(t, s, throttle.Keys{User: user}) // ban
	checkNoClearText(t, dump(t, c, "*"+zone+"*"), user, "alice", ip)
	// Two prefixes never see each other's keys; another secret, another name.
	if New(c, suiteCfg, Options{Zone: zone, KeyPrefix: "other:"}).KeyBase(true, user) == s.KeyBase(true, user) ||
		New(c, suiteCfg, Options{Zone: zone}).KeyBase(true, user) == s.KeyBase(true, user) {
		t.Fatal("key names do not depend on prefix and secret")
	}
	if !strings.HasPrefix(s.KeyBase(true, user), DefaultKeyPrefix+zone+":{u") {
		t.Fatalf("key %q", s.KeyBase(true, user))
	}
	// Every key expires by itself.
	for _, e := range entries {
		if strings.HasPrefix(e, DefaultKeyPrefix) {
			if ttl := c.PTTL(context.Background(), e).Val(); ttl <= 0 && ttl != -2*time.Nanosecond {
				t.Fatalf("key %s has no TTL (%v)", e, ttl)
			}
		}
	}
}

// TestOutage stops Redis under each on_error, checks every call returns
// within the timeout, then restarts it and checks shared counting resumes.
func TestOutage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	const timeout = 200 * time.Millisecond
	cfg := suiteCfg
	cfg.Ban = 3 * time.Second
	cfg.UserWindow = 3 * time.Second
	stores := map[string]*Store{}
	for _, mode := range []string{OnErrorLocal, OnErrorOpen, OnErrorClosed} {
		stores[mode] = New(clientFor(t, srv, timeout), cfg, Options{Zone: "outage", OnError: mode, Timeout: timeout, Retry: 300 * time.Millisecond})
	}
	// Shared before the outage.
	fail(t, stores[OnErrorOpen], throttle.Keys{User: "pre"})
	srv.StopServer()
	timed := func(what string, f func()) {
		t.Helper()
		start := time.Now()
		f()
		if d := time.Since(start); d > timeout+150*time.Millisecond {
			t.Errorf("%s took %v with Redis down, timeout %v", what, d, timeout)
		}
	}
	for i := range 2 * cfg.PerUser {
		if i == cfg.PerUser {
			time.Sleep(350 * time.Millisecond) // past Retry: the next calls ask Redis again
		}
		k := throttle.Keys{User: fmt.Sprint("mallory", i%1), IP: "192.0.2.66"}
		timed("local", func() {
			r, err := stores[OnErrorLocal].Reserve(context.Background(), k)
			if i < cfg.PerUser {
				if err != nil {
					t.Fatalf("local %d: %v", i, err)
				}
				_, _ = r.Commit(context.Background())
			} else if !errors.Is(err, throttle.ErrThrottled) {
				t.Fatalf("local %d: %v, want the fallback's ban", i, err)
			}
		})
		timed("open", func() {
			r, err := stores[OnErrorOpen].Reserve(context.Background(), k)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			_, _ = r.Commit(context.Background())
		})
		timed("closed", func() {
			_, err := stores[OnErrorClosed].Reserve(context.Background(), k)
			if err == nil || errors.Is(err, throttle.ErrThrottled) {
				t.Fatalf("closed: %v, want an error that is not a refusal", err)
			}
		})
		timed("banned", func() {
			if _, _, err := stores[OnErrorClosed].Banned(context.Background(), k); err == nil {
				t.Fatal("closed Banned: no error")
			}
		})
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // past Retry
	// Sharing resumes: failures over the stores ban on all of them (a new
	// user: Redis lost its data in the restart, no persistence).
	k := throttle.Keys{User: "trent"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := stores[OnErrorClosed].Reserve(context.Background(), throttle.Keys{User: "probe"})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range cfg.PerUser {
		fail(t, stores[[]string{OnErrorLocal, OnErrorOpen, OnErrorClosed}[i%3]], k)
	}
	for mode, s := range stores {
		if ref := refusal(t, s, k); ref.Until.IsZero() {
			t.Fatalf("%s: no shared ban after the restart", mode)
		}
	}
	// The local fallback's ban from the outage still holds.
	if _, err := stores[OnErrorLocal].Reserve(context.Background(), throttle.Keys{User: "mallory0"}); !errors.Is(err, throttle.ErrThrottled) {
		t.Fatalf("fallback ban dropped when Redis came back: %v", err)
	}
}

// TestHangingRedis: a server that accepts and never answers costs at most
// the timeout per call.
func TestHangingRedis(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { <-done; c.Close() }()
		}
	}()
	const timeout = 150 * time.Millisecond
	c, err := NewClient(ClientConfig{URL: "redis://" + l.Addr().String(), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := New(c, suiteCfg, Options{Zone: "hang", OnError: OnErrorClosed, Timeout: timeout, Retry: time.Millisecond})
	for i := range 3 {
		start := time.Now()
		_, err := s.Reserve(context.Background(), throttle.Keys{User: "u", IP: "192.0.2.1"})
		if d := time.Since(start); err == nil || d > timeout+150*time.Millisecond {
			t.Fatalf("call %d: %v after %v (timeout %v)", i, err, d, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTLS(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{TLS: true})
	c, err := NewClient(ClientConfig{URL: "rediss://" + srv.Addr + "/0", Password: srv.Password,
		TLS: &TLS{CAFile: srv.CAFile}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := New(c, suiteCfg, Options{Zone: "tls", OnError: OnErrorClosed, Timeout: time.Second})
	for range suiteCfg.PerUser {
		fail(t, s, throttle.Keys{User: "tls-user"})
	}
	refusal(t, s, throttle.Keys{User: "tls-user"})
	// Without the CA the handshake fails: the certificate is really checked.
	bad, _ := NewClient(ClientConfig{URL: "rediss://" + srv.Addr + "/0", Password: srv.Password, Timeout: time.Second})
	defer bad.Close()
	if _, err := New(bad, suiteCfg, Options{Zone: "tls", OnError: OnErrorClosed}).Reserve(context.Background(), throttle.Keys{User: "x"}); err == nil {
		t.Fatal("TLS without the CA worked")
	}
	// A wrong password is an error, not a pass.
	wrong, _ := NewClient(ClientConfig{URL: "rediss://" + srv.Addr + "/0", Password: "wrong", TLS: &TLS{CAFile: srv.CAFile}, Timeout: time.Second})
	defer wrong.Close()
	_, err = New(wrong, suiteCfg, Options{Zone: "tls", OnError: OnErrorClosed}).Reserve(context.Background(), throttle.Keys{User: "x"})
	if err == nil || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestCluster(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Cluster: true})
	c, err := NewClient(ClientConfig{Addresses: srv.Addrs[:1], Cluster: true, Password: srv.Password, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := New(c, suiteCfg, Options{Zone: "cl", OnError: OnErrorClosed, Timeout: time.Second})
	c2, _ := NewClient(ClientConfig{Addresses: srv.Addrs, Password: srv.Password, Timeout: time.Second})
	defer c2.Close()
	b := New(c2, suiteCfg, Options{Zone: "cl", OnError: OnErrorClosed, Timeout: time.Second})
	// Many users from one address: their keys spread over the slots, and
	// the address key's slot differs from most of them.
	slots := map[int64]bool{}
	for i := range 12 {
		user := fmt.Sprint("user", i)
		slots[c.ClusterKeySlot(context.Background(), a.KeyBase(true, user)+":f").Val()] = true
		r := mustReserve(t, []*Store{a, b}[i%2], throttle.Keys{User: user, IP: "192.0.2.200"})
		if _, err := r.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(slots) < 6 {
		t.Fatalf("keys in only %d slots", len(slots))
	}
	var nodes atomic.Int32
	_ = c.(*redis.ClusterClient).ForEachMaster(context.Background(), func(ctx context.Context, n *redis.Client) error {
		if n.DBSize(ctx).Val() > 0 {
			nodes.Add(1)
		}
		return nil
	})
	if nodes.Load() < 2 {
		t.Fatalf("keys on %d masters", nodes.Load())
	}
	for range suiteCfg.PerUser {
		fail(t, a, throttle.Keys{User: "cl-user", IP: "192.0.2.201"})
	}
	refusal(t, b, throttle.Keys{User: "cl-user"})
	checkNoClearText(t, dump(t, c, "*"), "cl-user", "user1", "192.0.2")
	// Burst across two instances in a cluster.
	granted := 0
	var rs []throttle.Reservation
	for i := range 20 {
		if r, err := []*Store{a, b}[i%2].Reserve(context.Background(), throttle.Keys{User: "burst", IP: fmt.Sprint("198.51.100.", i)}); err == nil {
			granted++
			rs = append(rs, r)
		}
	}
	if granted != suiteCfg.PerUser {
		t.Fatalf("%d granted", granted)
	}
	for _, r := range rs {
		_ = r.Release(context.Background(), false)
	}
}

// TestLatency logs the cost of Reserve+Commit against Redis on loopback and
// against Memory, from the same run (numbers go in a report, not a bound).
func TestLatency(t *testing.T) {
	srv := sharedServer(t)
	cfg := throttle.Config{PerUser: 1 << 30, PerIP: 1 << 30, UserWindow: time.Minute, IPWindow: time.Minute, Ban: time.Minute}
	rs := New(clientFor(t, srv, time.Second), cfg, Options{Zone: fmt.Sprint("lat-", time.Now().UnixNano()), OnError: OnErrorClosed, Timeout: time.Second})
	ms := throttle.New(cfg)
	measure := func(s throttle.Store) (p50, p99 time.Duration) {
		const n = 2000
		d := make([]time.Duration, n)
		for i := range n {
			k := throttle.Keys{User: fmt.Sprint("u", i%50), IP: fmt.Sprint("192.0.2.", i%200)}
			start := time.Now()
			r, err := s.Reserve(context.Background(), k)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
			d[i] = time.Since(start)
		}
		slices.Sort(d)
		return d[n/2], d[n*99/100]
	}
	m50, m99 := measure(ms)
	r50, r99 := measure(rs)
	t.Logf("Reserve+Commit latency: memory p50 %v p99 %v; redis (loopback) p50 %v p99 %v", m50, m99, r50, r99)
}

func BenchmarkReserveCommitRedis(b *testing.B) {
	if !redistest.Available() {
		redistest.Need(b, redistest.Options{})
	}
	srv, err := redistest.Launch(redistest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	cfg := throttle.Config{PerUser: 1 << 30, PerIP: 1 << 30, UserWindow: time.Minute, IPWindow: time.Minute, Ban: time.Minute}
	s := New(clientFor(b, srv, time.Second), cfg, Options{Zone: "bench", OnError: OnErrorClosed, Timeout: time.Second})
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r, err := s.Reserve(context.Background(), throttle.Keys{User: fmt.Sprint("u", i%50), IP: "192.0.2.1"})
		if err != nil {
			b.Fatal(err)
		}
		_, _ = r.Commit(context.Background())
	}
}

func BenchmarkReserveCommitMemory(b *testing.B) {
	cfg := throttle.Config{PerUser: 1 << 30, PerIP: 1 << 30, UserWindow: time.Minute, IPWindow: time.Minute, Ban: time.Minute}
	s := throttle.New(cfg)
	for i := 0; b.Loop(); i++ {
		r, err := s.Reserve(context.Background(), throttle.Keys{User: fmt.Sprint("u", i%50), IP: "192.0.2.1"})
		if err != nil {
			b.Fatal(err)
		}
		_, _ = r.Commit(context.Background())
	}
}
