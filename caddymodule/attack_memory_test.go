package caddymodule

// Issue 7, point 5: max_keys bounded the number of entries, not their bytes
// (50 000 distinct 1000-byte usernames grew the heap by ~93 MiB). Keys must
// be stored as fixed-size digests, so the heap a flood costs does not depend
// on how long the usernames are. Measured through a real Caddy with a fast
// fake backend: the same flood with 7-byte and with 1000-byte names, each
// against its own throttle state, compared in the same run (no absolute
// sizes or speeds).

import (
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// atkLiveHeap is the live heap after two full collections.
func atkLiveHeap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

func TestThrottleHeapDoesNotGrowWithUsernameLength(t *testing.T) {
	const (
		n       = 20000 // distinct usernames per flood
		long    = 1000  // bytes per long username
		maxKeys = 3*n + 1000
	)
	flood := func(t *testing.T, name string, username func(i int) string) (grown int64, s *site) {
		s = startCaddy(t, "", fmt.Sprintf(`loginshare {
	%s
	throttle {
		per_user 5 10m
		per_ip 20 10m
		max_keys %d
	}
	backend testfake {
		name %s
		user jdoe s3cret
	}
}`, atkFast, maxKeys, name))
		// Warm Caddy's own pools and this client's connections first.
		for i := 0; i < 50; i++ {
			s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret"))
		}
		base := atkLiveHeap()
		var next atomic.Int64
		var wg sync.WaitGroup
		var failed atomic.Bool
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !failed.Load() {
					i := next.Add(1) - 1
					if i >= n {
						return
					}
					r, err := s.tryReq(atkFormRequest(s, form("username", username(int(i)), "password", "wrong",
						"ipaddress", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))))
					if err != nil || r.Doc.Result != "0" {
						t.Errorf("flood request %d: %v %s", i, err, r.Body)
						failed.Store(true)
					}
				}
			}()
		}
		wg.Wait()
		if failed.Load() {
			t.FailNow()
		}
		return atkLiveHeap() - base, s
	}

	var short, longGrowth int64
	t.Run("7-byte names", func(t *testing.T) {
		short, _ = flood(t, "atk-mem-short", func(i int) string { return fmt.Sprintf("u%06d", i) })
	})
	t.Run("1000-byte names", func(t *testing.T) {
		name := func(i int) string { return fmt.Sprintf("u%06d", i) + strings.Repeat("x", long-7) }
		var s *site
		longGrowth, s = flood(t, "atk-mem-long", name)
		// The flood's keys were really kept: the first name's counter (one
		// failure so far) still counts, so four more failures ban it and the
		// next attempt never reaches the backend.
		for k := 0; k < 4; k++ {
			s.post("/loginshare/user", form("username", name(0), "password", "wrong", "ipaddress", fmt.Sprintf("192.0.2.%d", k+1)))
		}
		calls := fakeCount("atk-mem-long")
		mustFail(t, s.post("/loginshare/user", form("username", name(0), "password", "wrong", "ipaddress", "192.0.2.9")), 200, DefaultMessageInvalid)
		if fakeCount("atk-mem-long") != calls {
			t.Error("the first flood name was not banned after five failures: the store did not keep the flood's keys, so the heap figures say nothing")
		}
	})
	if t.Failed() {
		return
	}
	extra := longGrowth - short
	stringBytes := int64(n) * (long - 7)
	t.Logf("heap growth for %d failed logins: %.1f MiB with 7-byte names, %.1f MiB with %d-byte names (the names themselves: %.1f MiB more)",
		n, float64(short)/(1<<20), float64(longGrowth)/(1<<20), long, float64(stringBytes)/(1<<20))
	// Digests make the two floods cost the same; storing the names costs
	// at least their bytes. A quarter of them is far above GC noise.
	if extra > stringBytes/4 {
		t.Errorf("1000-byte names cost %.1f MiB more heap than 7-byte names (%.0f%% of the names' own bytes): keys are stored as the typed text, so max_keys does not bound memory",
			float64(extra)/(1<<20), 100*float64(extra)/float64(stringBytes))
	}
}

// atkFormRequest builds a form POST to the user endpoint.
func atkFormRequest(s *site, f url.Values) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, s.base+"/loginshare/user", strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}
