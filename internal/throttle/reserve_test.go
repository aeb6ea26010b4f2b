package throttle

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBurstCannotPassTheLimit: fifty simultaneous attempts on one user get
// at most per_user reservations, whatever the interleaving.
func TestBurstCannotPassTheLimit(t *testing.T) {
	for _, sameIP := range []bool{true, false} {
		s, _ := newStore(Config{PerUser: 5, PerIP: 20, MaxKeys: 1000})
		ctx := context.Background()
		var (
			mu       sync.Mutex
			granted  []Reservation
			refused  int
			wg       sync.WaitGroup
			start    = make(chan struct{})
			attempts = 50
		)
		for i := range attempts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ip := "192.0.2.1"
				if !sameIP {
					ip = "192.0.2." + strconv.Itoa(i+1)
				}
				<-start
				r, err := s.Reserve(ctx, Keys{User: "jdoe", IP: ip})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if !errors.Is(err, ErrThrottled) {
						t.Errorf("Reserve error %v does not match ErrThrottled", err)
					}
					refused++
					return
				}
				granted = append(granted, r)
			}()
		}
		close(start)
		wg.Wait()
		if len(granted) != 5 || refused != attempts-5 {
			t.Fatalf("sameIP %v: %d granted, %d refused; want 5 and %d", sameIP, len(granted), refused, attempts-5)
		}
		bans := 0
		for _, r := range granted {
			if started, _ := r.Commit(ctx); started {
				bans++
			}
		}
		if bans != 1 {
			t.Fatalf("committing the five failures started %d bans, want 1", bans)
		}
		if _, err := s.Reserve(ctx, Keys{User: "jdoe"}); err == nil {
			t.Fatal("user not banned after five committed failures")
		} else if ref := (*Refusal)(nil); !errors.As(err, &ref) || ref.Until.IsZero() {
			t.Fatalf("refusal %v carries no ban end", err)
		}
	}
}

func TestReleaseFreesTheSlotWithoutCounting(t *testing.T) {
	s, _ := newStore(Config{PerUser: 2, MaxKeys: 100})
	ctx := context.Background()
	for i := range 10 {
		r1, err := s.Reserve(ctx, Keys{User: "a"})
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		r2, err := s.Reserve(ctx, Keys{User: "a"})
		if err != nil {
			t.Fatalf("round %d: second: %v", i, err)
		}
		if _, err := s.Reserve(ctx, Keys{User: "a"}); err == nil {
			t.Fatalf("round %d: a third attempt in flight was reserved with per_user 2", i)
		}
		_ = r1.Release(ctx, false)
		_ = r2.Release(ctx, false)
		_ = r2.Release(ctx, false) // a second release is harmless
		if _, err := r1.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if c, b := s.Len(); c != 0 || b != 0 {
		t.Fatalf("released attempts left %d counters and %d bans", c, b)
	}
}

func TestCommitCountsAndSuccessClearsTheUserOnly(t *testing.T) {
	s, _ := newStore(Config{PerUser: 3, PerIP: 3, MaxKeys: 100})
	ctx := context.Background()
	for range 2 {
		r, err := s.Reserve(ctx, Keys{User: "a", IP: "192.0.2.1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// One more failure is allowed, so exactly one attempt may be in flight.
	r, err := s.Reserve(ctx, Keys{User: "a", IP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, Keys{User: "a"}); err == nil {
		t.Fatal("two failures + one in flight allowed another attempt with per_user 3")
	}
	_ = r.Release(ctx, true)
	// The user's counter is cleared; the address keeps its two failures.
	for range 2 {
		if _, err := s.Reserve(ctx, Keys{User: "a"}); err != nil {
			t.Fatalf("user still counted after a success: %v", err)
		}
	}
	r1, err := s.Reserve(ctx, Keys{IP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, Keys{IP: "192.0.2.1"}); err == nil {
		t.Fatal("address lost its count on the user's success")
	}
	_ = r1.Release(ctx, false)
}

func TestWindowExpiryFreesBudget(t *testing.T) {
	s, c := newStore(Config{PerUser: 2, UserWindow: time.Minute, MaxKeys: 100})
	ctx := context.Background()
	r, _ := s.Reserve(ctx, Keys{User: "a"})
	_, _ = r.Commit(ctx)
	r, _ = s.Reserve(ctx, Keys{User: "a"}) // in flight
	if _, err := s.Reserve(ctx, Keys{User: "a"}); err == nil {
		t.Fatal("budget not taken")
	}
	c.Advance(time.Minute)
	r2, err := s.Reserve(ctx, Keys{User: "a"})
	if err != nil {
		t.Fatalf("a failure one window old still counts: %v", err)
	}
	_ = r.Release(ctx, false)
	_ = r2.Release(ctx, false)
}

// TestLongKeysCostTheirDigest: 20 000 distinct 1000-byte usernames cost
// about what 20 000 short ones do, since only digests are kept.
func TestLongKeysCostTheirDigest(t *testing.T) {
	const n = 20000
	grow := func(long bool) uint64 {
		s := New(Config{PerUser: 5, MaxKeys: n})
		pad := ""
		if long {
			pad = strings.Repeat("x", 1000)
		}
		before := heapAlloc()
		for i := range n {
			s.failure(pad+strconv.Itoa(i), "")
		}
		after := heapAlloc()
		runtime.KeepAlive(s)
		if after < before {
			return 0
		}
		return after - before
	}
	short, long := grow(false), grow(true)
	// Storing the names would add 20 MB; allow noise of a few MB.
	if long > short+4<<20 {
		t.Fatalf("20000 long names grew the heap by %d bytes, short names by %d: keys are not fixed-size", long, short)
	}
	if long > 20<<20 {
		t.Fatalf("20000 long names grew the heap by %d bytes", long)
	}
}
