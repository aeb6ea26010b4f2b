package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kayako-loginshare/caddy-loginshare/internal/throttle"
)

// fakeClock is a settable clock for throttle stores (time injected, never slept).
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// withClock makes throttle stores created by the next provisions use a fake clock.
func withClock(t *testing.T) *fakeClock {
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	testClock = c.now
	t.Cleanup(func() { testClock = nil })
	return c
}

// throttleSite serves a counting fake backend that knows jdoe and other
// (password s3cret) behind the given throttle block.
func throttleSite(t *testing.T, name, throttleBlock string) *site {
	return startCaddy(t, "", fmt.Sprintf(`loginshare {
	failure_delay 1ms
	failure_jitter 1ms
	%s
	backend testfake {
		name %s
		user jdoe s3cret
		user other s3cret
	}
}`, throttleBlock, name))
}

func TestThrottlePerUserBansThenExpires(t *testing.T) {
	clock := withClock(t)
	s := throttleSite(t, "thr-user", `throttle {
		per_user 3 10m
		per_ip 0
		ban 15m
		max_keys 1001
	}`)
	ip := "198.51.100.7"
	for i := 0; i < 3; i++ {
		mustFail(t, s.post("/loginshare/user", form("username", "jdoe", "password", "wrong", "ipaddress", ip)), 200, DefaultMessageInvalid)
	}
	calls := fakeCount("thr-user")
	// Banned: even the right password fails, the backend is not contacted, and
	// the other spellings of the name share the ban (on the user endpoint an
	// @realm is part of the name: customers log in with e-mail addresses).
	for _, u := range []string{"jdoe", "JDOE", `EXAMPLE\jdoe`, "ｊｄｏｅ", "ＪＤＯＥ"} {
		mustFail(t, s.post("/loginshare/user", form("username", u, "password", "s3cret", "ipaddress", "192.0.2.1")), 200, DefaultMessageInvalid)
	}
	if got := fakeCount("thr-user"); got != calls {
		t.Errorf("backend contacted %d times during the ban", got-calls)
	}
	// A different user from the same IP still works.
	if r := s.post("/loginshare/user", form("username", "other", "password", "s3cret", "ipaddress", ip)); r.Doc.Result != "1" {
		t.Errorf("other user refused: %s", r.Body)
	}
	clock.advance(14 * time.Minute)
	mustFail(t, s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret", "ipaddress", ip)), 200, DefaultMessageInvalid)
	clock.advance(2 * time.Minute)
	if r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret", "ipaddress", ip)); r.Doc.Result != "1" {
		t.Errorf("ban did not expire: %s", r.Body)
	}
}

func TestThrottleSlidingWindowAndSuccessReset(t *testing.T) {
	clock := withClock(t)
	s := throttleSite(t, "thr-window", `throttle {
		per_user 3 10m
		per_ip 0
		max_keys 1002
	}`)
	fail := func() {
		mustFail(t, s.post("/loginshare/user", form("username", "jdoe", "password", "wrong")), 200, DefaultMessageInvalid)
	}
	ok := func() bool {
		return s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret")).Doc.Result == "1"
	}
	// Failures spread beyond the window never ban.
	for i := 0; i < 5; i++ {
		fail()
		clock.advance(6 * time.Minute)
	}
	if !ok() {
		t.Fatal("banned by failures spread over 30 minutes")
	}
	// Success resets the count: 2 + success + 2 failures is no ban.
	fail()
	fail()
	if !ok() {
		t.Fatal("login refused")
	}
	fail()
	fail()
	if !ok() {
		t.Fatal("success did not reset the user's count")
	}
}

func TestThrottlePerIPBansTheAddressAndIPv6Slash64(t *testing.T) {
	withClock(t)
	s := throttleSite(t, "thr-ip", `throttle {
		per_user 0
		per_ip 3 10m
		max_keys 1003
	}`)
	for i, u := range []string{"a", "b", "c"} {
		mustFail(t, s.post("/loginshare/user", form("username", u, "password", "x", "ipaddress", fmt.Sprintf("2001:db8:1:2::%d", i+1))), 200, DefaultMessageInvalid)
	}
	mustFail(t, s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret", "ipaddress", "2001:db8:1:2::ffff")), 200, DefaultMessageInvalid)
	if r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret", "ipaddress", "2001:db8:1:3::1")); r.Doc.Result != "1" {
		t.Errorf("another /64 refused: %s", r.Body)
	}
	// An empty ipaddress is never counted.
	for i := 0; i < 5; i++ {
		s.post("/loginshare/user", form("username", fmt.Sprintf("n%d", i), "password", "x"))
	}
	if r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret")); r.Doc.Result != "1" {
		t.Errorf("empty ipaddress was counted: %s", r.Body)
	}
}

func TestThrottleOffNeverBans(t *testing.T) {
	s := throttleSite(t, "thr-off", "throttle off")
	for i := 0; i < 30; i++ {
		s.post("/loginshare/user", form("username", "jdoe", "password", "wrong", "ipaddress", "192.0.2.9"))
	}
	if r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret", "ipaddress", "192.0.2.9")); r.Doc.Result != "1" {
		t.Errorf("throttle off still banned: %s", r.Body)
	}
}

func TestThrottleStateSurvivesReload(t *testing.T) {
	withClock(t)
	block := `throttle {
		per_user 2 10m
		per_ip 0
		max_keys 1004
	}`
	s := throttleSite(t, "thr-reload", block)
	s.post("/loginshare/user", form("username", "jdoe", "password", "wrong"))
	s.post("/loginshare/user", form("username", "jdoe", "password", "wrong"))
	// A reload with the same zone and throttle settings (a changed message)
	// keeps the ban.
	s2 := startCaddy(t, "", fmt.Sprintf(`loginshare {
	failure_delay 1ms
	failure_jitter 1ms
	message_invalid "Reloaded"
	%s
	backend testfake {
		name thr-reload
		user jdoe s3cret
		user other s3cret
	}
}`, block))
	mustFail(t, s2.post("/loginshare/user", form("username", "jdoe", "password", "s3cret")), 200, "Reloaded")
}

func TestThrottleFloodKeepsMemoryBounded(t *testing.T) {
	withClock(t)
	const maxKeys = 500
	s := throttleSite(t, "thr-flood", fmt.Sprintf(`throttle {
		per_user 5 10m
		per_ip 20 10m
		max_keys %d
	}`, maxKeys))
	var wg sync.WaitGroup
	var next atomic.Int64
	const total = 3000
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				r := s.post("/loginshare/user", form("username", fmt.Sprintf("flood-%d", i), "password", "x",
					"ipaddress", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)))
				if r.Doc.Result != "0" {
					t.Errorf("flood request %d: %s", i, r.Body)
					return
				}
			}
		}()
	}
	wg.Wait()
	store := findStore(t, fmt.Sprintf("MaxKeys:%d", maxKeys))
	counters, bans := store.Len()
	if counters > maxKeys || bans > maxKeys {
		t.Errorf("throttle holds %d counters and %d bans, bound is %d", counters, bans, maxKeys)
	}
	if counters < maxKeys/2 {
		t.Errorf("only %d counters: the flood did not reach the store", counters)
	}
	// The flood did not ban a real user from another address.
	if r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret", "ipaddress", "192.0.2.77")); r.Doc.Result != "1" {
		t.Errorf("real user refused after the flood: %s", r.Body)
	}
}

func findStore(t *testing.T, marker string) *throttle.Memory {
	var found *throttle.Memory
	throttleStores.Range(func(k, v any) bool {
		if strings.Contains(k.(string), marker) {
			found = v.(throttleEntry).Memory
			return false
		}
		return true
	})
	if found == nil {
		t.Fatalf("no throttle store with %s", marker)
	}
	return found
}

func TestAllowFromRefusesOtherCallers(t *testing.T) {
	s := fixtureSite(t, "allow_from 203.0.113.10 192.0.2.0/24")
	r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret"))
	mustFail(t, r, 200, DefaultMessageDenied)
	b, _ := os.ReadFile(s.logFile)
	if !strings.Contains(string(b), `"outcome":"refused_caller"`) {
		t.Errorf("no refused_caller audit line")
	}
	s2 := fixtureSite(t, "allow_from 127.0.0.0/8 ::1")
	if r := s2.post("/loginshare/user", form("username", "jdoe", "password", "s3cret")); r.Doc.Result != "1" {
		t.Errorf("allowed caller refused: %s", r.Body)
	}
}

func TestAllowFromHonoursTrustedProxies(t *testing.T) {
	post := func(s *site, xff string) reply {
		req, _ := http.NewRequest("POST", s.base+"/loginshare/user", strings.NewReader(form("username", "jdoe", "password", "s3cret").Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", xff)
		return s.doReq(req)
	}
	mapping := fmt.Sprintf("loginshare {\n%s\nallow_from 203.0.113.10\n%s\n}", fastFail, fixtureStatic(t))
	trusted := startCaddy(t, "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}", mapping)
	if r := post(trusted, "203.0.113.10"); r.Doc.Result != "1" {
		t.Errorf("Kayako behind a trusted proxy refused: %s", r.Body)
	}
	mustFail(t, post(trusted, "198.51.100.1"), 200, DefaultMessageDenied)
	untrusted := startCaddy(t, "", mapping)
	// Without trusted_proxies a forged header changes nothing.
	mustFail(t, post(untrusted, "203.0.113.10"), 200, DefaultMessageDenied)
}

func TestSecretMissingWrongAndRight(t *testing.T) {
	t.Setenv("LOGINSHARE_TEST_KEY", "k3y-v4lue-0123456789")
	s := fixtureSite(t, "secret {env.LOGINSHARE_TEST_KEY}")
	f := form("username", "jdoe", "password", "s3cret")
	mustFail(t, s.post("/loginshare/user", f), 200, DefaultMessageDenied)
	mustFail(t, s.post("/loginshare/user?key=wrong", f), 200, DefaultMessageDenied)
	mustFail(t, s.post("/loginshare/user?key=k3y-v4lue-0123456789&key=k3y-v4lue-0123456789", f), 200, DefaultMessageDenied)
	// In the body instead of the URL does not count.
	f2 := form("username", "jdoe", "password", "s3cret", "key", "k3y-v4lue-0123456789")
	mustFail(t, s.post("/loginshare/user", f2), 200, DefaultMessageDenied)
	if r := s.post("/loginshare/user?key=k3y-v4lue-0123456789", f); r.Doc.Result != "1" {
		t.Errorf("right key refused: %s", r.Body)
	}
	if r := s.post("/loginshare/staff?key=k3y-v4lue-0123456789", form("username", "jdoe", "password", "s3cret", "interface", "staff")); r.Doc.Result != "1" {
		t.Errorf("right key refused on staff: %s", r.Body)
	}
}

func TestMaxConcurrentQueuesWithinTheDeadline(t *testing.T) {
	for _, module := range fakeModules {
		t.Run(module, func(t *testing.T) {
			fakeMaxInFlight.Store(0)
			s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	timeout 2s
	failure_delay 1ms
	failure_jitter 1ms
	max_concurrent 1
	throttle off
	backend %s {
		name %s
		hold 150ms
		user jdoe s3cret
	}
}`, module, uniqueName("queue")))
			results := concurrentLogins(s, 3)
			for _, r := range results {
				if r.Doc.Result != "1" {
					t.Errorf("queued login failed: %s", r.Body)
				}
			}
			if m := fakeMaxInFlight.Load(); m != 1 {
				t.Errorf("%d backend calls ran at once, bound is 1", m)
			}
		})
	}
}

func TestMaxConcurrentExcessGetsUnavailableAtTheDeadline(t *testing.T) {
	fakeMaxInFlight.Store(0)
	// The backend ignores its context and takes 3 s; the budget is 1 s.
	s := startCaddy(t, "", `loginshare {
	timeout 1s
	failure_delay 1ms
	failure_jitter 1ms
	max_concurrent 1
	throttle off
	backend testfake {
		name stubborn
		stubborn 3s
		user jdoe s3cret
	}
}`)
	start := time.Now()
	results := concurrentLogins(s, 4)
	elapsed := time.Since(start)
	for _, r := range results {
		if r.Doc.Message == nil || *r.Doc.Message != DefaultMessageUnavail {
			t.Errorf("want unavailable, got %s", r.Body)
		}
	}
	// Only one call ran; the others waited for a slot until their deadline.
	if calls, m := fakeCount("stubborn"), fakeMaxInFlight.Load(); calls != 1 || m != 1 {
		t.Errorf("backend calls %d, at once %d; want 1 and 1", calls, m)
	}
	// Generous deadline (the behaviour under test): answered at the 1 s
	// budget, not when the stubborn backend returns at 3 s.
	if elapsed > 2500*time.Millisecond {
		t.Errorf("answers took %s, budget 1s", elapsed)
	}
	time.Sleep(2500 * time.Millisecond) // let the stubborn call end before the next test counts
}

func concurrentLogins(s *site, n int) []reply {
	results := make([]reply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret"))
		}()
	}
	wg.Wait()
	return results
}

func TestFailureTimingDoesNotTellUnknownFromWrong(t *testing.T) {
	// The backend answers unknown users in 5 ms and wrong passwords in 150 ms;
	// the floor (250 ms + 0..50 ms jitter) must hide that difference.
	const jitter = 50 * time.Millisecond
	s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	failure_delay 250ms
	failure_jitter %s
	throttle off
	backend testfake {
		name timing
		user jdoe s3cret
		unknown_delay 5ms
		wrong_delay 150ms
	}
}`, jitter))
	measure := func(user string) time.Duration {
		start := time.Now()
		r := s.post("/loginshare/user", form("username", user, "password", "wrong"))
		d := time.Since(start)
		mustFail(t, r, 200, DefaultMessageInvalid)
		return d
	}
	var unknown, wrong []time.Duration
	for i := 0; i < 25; i++ { // interleaved, so machine noise hits both alike
		unknown = append(unknown, measure("nobody"))
		wrong = append(wrong, measure("jdoe"))
	}
	mu, mw := median(unknown), median(wrong)
	diff := mu - mw
	if diff < 0 {
		diff = -diff
	}
	t.Logf("median unknown user %s, wrong password %s", mu, mw)
	if diff >= jitter {
		t.Errorf("medians differ by %s (unknown %s, wrong %s): timing tells them apart", diff, mu, mw)
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestProductionExampleNeverLogsPasswordOrSecret runs examples/Caddyfile.static
// (made local) with DEBUG logging and its access log, and searches every line.
func TestProductionExampleNeverLogsPasswordOrSecret(t *testing.T) {
	const secret = "Zq8-never-log-this-key-5521"
	const password = "s3cret" // the example's demo accounts
	const wrongPassword = "Wr0ng-pa55word-that-must-not-appear"
	t.Setenv("LOGINSHARE_KEY", secret)
	raw, err := os.ReadFile(filepath.Join("..", "examples", "Caddyfile.static"))
	if err != nil {
		t.Fatal(err)
	}
	access := filepath.Join(t.TempDir(), "access.log")
	upstream := freePort(t)
	port := freePort(t)
	cfg := string(raw)
	for old, new := range map[string]string{
		"helpdesk.example.com {":             fmt.Sprintf("http://127.0.0.1:%d {", port),
		"/var/log/caddy/helpdesk-access.log": access,
		"allow_from 203.0.113.10":            "allow_from 127.0.0.1",
		"reverse_proxy kayako.internal:80":   fmt.Sprintf("reverse_proxy 127.0.0.1:%d", upstream),
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("examples/Caddyfile.static no longer contains %q", old)
		}
		cfg = strings.ReplaceAll(cfg, old, new)
	}
	cfg += fmt.Sprintf("\nhttp://127.0.0.1:%d {\n\trespond \"kayako\"\n}\n", upstream)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	s := loadConfig(t, testGlobals(logFile, "")+cfg, port, logFile)

	k := "?key=" + url.QueryEscape(secret)
	checks := []struct {
		path string
		f    url.Values
		ok   bool
	}{
		{"/loginshare/user" + k, form("username", "jdoe", "password", password, "ipaddress", "203.0.113.7"), true},
		{"/loginshare/staff" + k, form("username", "jdoe", "password", password, "interface", "staff"), true},
		{"/loginshare/user" + k, form("username", "jdoe", "password", wrongPassword), false},
		{"/loginshare/user" + k, form("username", "nobody", "password", wrongPassword), false},
		{"/loginshare/user?key=" + wrongPassword, form("username", "jdoe", "password", password), false},
		{"/loginshare/user" + k + "&password=" + wrongPassword, form("username", "jdoe", "password", wrongPassword), false},
	}
	for _, c := range checks {
		r := s.post(c.path, c.f)
		if (r.Doc.Result == "1") != c.ok {
			t.Errorf("%s: %s", c.path, r.Body)
		}
	}
	if r := s.do("GET", "/index.php", "", nil); r.Body != "kayako" {
		t.Errorf("other paths do not reach Kayako: %d %s", r.Status, r.Body)
	}
	if err := stopCaddy(); err != nil {
		t.Fatal(err)
	}

	logs := ""
	for _, f := range []string{s.logFile, access} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		logs += string(b)
	}
	for _, must := range []string{`"outcome":"ok"`, `"outcome":"invalid_credentials"`, `"uri":"/loginshare/user`, `"level":"debug"`} {
		if !strings.Contains(logs, must) {
			t.Errorf("logs lack %s: the test would prove nothing", must)
		}
	}
	for _, never := range []string{secret, url.QueryEscape(secret), wrongPassword, `"password"`} {
		if strings.Contains(logs, never) {
			t.Errorf("a log line contains %q", never)
		}
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, password) {
			t.Errorf("a log line contains the password: %s", line)
		}
	}
}

func TestOpenEndpointWarnsAtProvision(t *testing.T) {
	const warning = "LoginShare endpoint is open to anyone"
	for _, tc := range []struct {
		extra string
		warn  bool
	}{
		{"", true},
		{"allow_from 127.0.0.1", false},
		{"secret some-long-shared-secret", false},
	} {
		s := fixtureSite(t, tc.extra)
		if err := stopCaddy(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(s.logFile)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(b), warning) && strings.Contains(string(b), `"level":"warn"`); got != tc.warn {
			t.Errorf("%q: warning logged %v, want %v", tc.extra, got, tc.warn)
		}
	}
}
