package ldap

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/fakeldap"
	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

// 10× more concurrent logins than pool slots: all finish, none deadlocks,
// the pools never exceed their size (-race clean).
func TestConcurrentLoginsTenTimesPoolSize(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	cfg := openldap(s)
	cfg.PoolSize, cfg.BindPoolSize = 4, 4
	l, _ := provision(t, cfg)
	const workers, rounds = 40, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				user, pw, want := slapdtest.JDoe, slapdtest.Password, backends.OK
				if (w+r)%3 == 0 {
					pw, want = "wrong-pw", backends.InvalidCredentials
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := l.Authenticate(ctx, backends.Credentials{Username: user, Password: pw})
				cancel()
				if backends.ClassOf(err) != want {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected outcome: %v", err)
	}
	for _, srv := range l.set.servers {
		for _, p := range []*pool{srv.search, srv.bind} {
			p.mu.Lock()
			n := len(p.idle)
			p.mu.Unlock()
			if n > cap(p.slots) || len(p.slots) != 0 {
				t.Errorf("pool: %d idle, %d checked out, size %d", n, len(p.slots), cap(p.slots))
			}
		}
	}
}

// Two configs with equal settings share one server set; cleaning up the old
// one during logins neither panics nor disturbs the new one; the last
// cleanup closes every connection.
func TestUsagePoolSharedAcrossReload(t *testing.T) {
	leakCheck(t)
	f := fakeldap.Start(t, fakeDirectory)
	oldCfg, _ := provision(t, plain(f.URL))
	newCfg, _ := provision(t, plain(f.URL))
	if oldCfg.set != newCfg.set {
		t.Fatal("equal settings did not share the pools")
	}
	if n, _ := pools.References(newCfg.poolKey); n != 2 {
		t.Fatalf("references = %d, want 2", n)
	}
	other, _ := provision(t, func() *LDAP { c := plain(f.URL); c.PoolSize = 3; return c }())
	if other.set == newCfg.set {
		t.Fatal("different settings shared the pools")
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(b *LDAP) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := login(t, b, "jdoe", "s3cret")
				if c := backends.ClassOf(err); c != backends.OK && c != backends.Unavailable {
					t.Errorf("during reload: %v", err)
				}
			}
		}([]*LDAP{oldCfg, newCfg, other}[i%3])
	}
	time.Sleep(50 * time.Millisecond)
	if err := oldCfg.Cleanup(); err != nil { // the reload drops the old config
		t.Fatal(err)
	}
	if err := other.Cleanup(); err != nil { // a config whose pools go away mid-login
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if _, err := login(t, newCfg, "jdoe", "s3cret"); err != nil {
		t.Fatalf("new config after reload: %v", err)
	}
	if _, err := login(t, other, "jdoe", "s3cret"); backends.ClassOf(err) != backends.Unavailable {
		t.Fatalf("cleaned-up config answered %v", err)
	}
	set := newCfg.set
	if err := newCfg.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, ok := pools.References(newCfg.poolKey); ok {
		t.Fatal("pool still referenced after the last cleanup")
	}
	for _, s := range set.servers {
		if !s.search.closed || !s.bind.closed {
			t.Fatal("pools not closed")
		}
	}
	waitFor(t, func() bool { return f.OpenConns() == 0 })
}
