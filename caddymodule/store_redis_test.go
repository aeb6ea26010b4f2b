package caddymodule

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kayako-loginshare/caddy-loginshare/internal/redistest"
	"github.com/kayako-loginshare/caddy-loginshare/internal/throttle/redisstore"
)

// redisSite is a handler on /red with its throttle in Redis and one on
// /mem with it in memory, both over the fake backend.
func redisSite(zoneRed, zoneMem, url, password string) string {
	return fmt.Sprintf(`loginshare {
		user_path /red/user
		staff_path /red/staff
		failure_delay 1ms
		failure_jitter 1ms
		throttle {
			per_user 3 1m
			per_ip 0
			zone %s
			store redis {
				url %s
				password %s
				timeout 200ms
				on_error local
			}
		}
		backend testfake {
			name red
		}
	}
	loginshare {
		user_path /mem/user
		staff_path /mem/staff
		failure_delay 1ms
		failure_jitter 1ms
		throttle {
			per_user 3 1m
			per_ip 0
			zone %s
			store memory
		}
		backend testfake {
			name mem
		}
	}`, zoneRed, url, password, zoneMem)
}

func TestRedisStoreInTheHandler(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	t.Setenv("LOGINSHARE_TEST_REDIS_PW", rs.Password)
	s := startCaddy(t, "", redisSite("red", "mem", "redis://"+rs.Addr+"/0", "{env.LOGINSHARE_TEST_REDIS_PW}"))

	// Three failures on each, then both refuse without asking the backend.
	for _, p := range []string{"/red/user", "/mem/user"} {
		for i := 0; i < 4; i++ {
			s.post(p, form("username", "zed", "password", "wrong", "ipaddress", "192.0.2.1"))
		}
	}
	if n, m := fakeCount("red"), fakeCount("mem"); n != 3 || m != 3 {
		t.Fatalf("backend calls red %d, mem %d; want 3 each", n, m)
	}

	// The redis zone's state is not in this process: its entry has no
	// Memory, and the keys/bans gauges cover only the memory zone.
	var redEntry, memEntry *throttleEntry
	throttleStores.Range(func(k, v any) bool {
		e := v.(throttleEntry)
		switch e.zone {
		case "zone-red":
			redEntry = &e
		case "zone-mem":
			memEntry = &e
		}
		return true
	})
	if redEntry == nil || memEntry == nil || redEntry.Memory != nil || memEntry.Memory == nil {
		t.Fatalf("entries red %+v mem %+v", redEntry, memEntry)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(throttleCollector{})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == "zone-red" {
					t.Errorf("%s reported for the redis zone", mf.GetName())
				}
			}
		}
	}
	if v := value(throttleStoreDown.WithLabelValues("zone-red")); v != 0 {
		t.Errorf("store_down %v before any outage", v)
	}

	// An outage: the metric says so and the fallback throttles.
	outages := value(throttleStoreOutages.WithLabelValues("zone-red"))
	rs.StopServer()
	begin := time.Now()
	r := s.post("/red/user", form("username", "yan", "password", "wrong", "ipaddress", "192.0.2.1"))
	if d := time.Since(begin); d > 200*time.Millisecond+300*time.Millisecond {
		t.Errorf("a login during the outage took %s", d)
	}
	if r.Doc.Result != "0" {
		t.Errorf("%s", r.Body)
	}
	if v := value(throttleStoreDown.WithLabelValues("zone-red")); v != 1 {
		t.Errorf("store_down %v during the outage", v)
	}
	if v := value(throttleStoreOutages.WithLabelValues("zone-red")); v != outages+1 {
		t.Errorf("outages_total %v, want %v", v, outages+1)
	}
	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the store skips Redis for a second after a failure
	s.post("/red/user", form("username", "xia", "password", "wrong", "ipaddress", "192.0.2.1"))
	if v := value(throttleStoreDown.WithLabelValues("zone-red")); v != 0 {
		t.Errorf("store_down %v after Redis is back", v)
	}

	// A reload with the same settings keeps the zone's entry (and its client).
	if err := loadAgain(testGlobals(s.logFile, "") + fmt.Sprintf("http://127.0.0.1:%d {\n%s\nrespond \"next handler\" 200\n}\n", s.port,
		redisSite("red", "mem", "redis://"+rs.Addr+"/0", "{env.LOGINSHARE_TEST_REDIS_PW}"))); err != nil {
		t.Fatal(err)
	}
	var again *throttleEntry
	throttleStores.Range(func(k, v any) bool {
		if e := v.(throttleEntry); e.zone == "zone-red" {
			again = &e
		}
		return true
	})
	if again == nil || again.store != redEntry.store {
		t.Errorf("the reload made a new redis store for the zone")
	}
	logs, _ := os.ReadFile(s.logFile)
	if strings.Contains(string(logs), rs.Password) {
		t.Errorf("the Redis password is in Caddy's log")
	}
}

// TestRedisStoreZoneNeedsOneStore: handlers naming one zone must agree on
// the store too, or one zone would have two states.
func TestRedisStoreZoneNeedsOneStore(t *testing.T) {
	cfg := testGlobals(t.TempDir()+"/caddy.log", "") + fmt.Sprintf("http://127.0.0.1:%d {\n%s\n}\n", freePort(t),
		redisSite("same", "same", "redis://127.0.0.1:1/0", "pw"))
	err := loadAgain(cfg)
	_ = stopCaddy()
	if err == nil || !strings.Contains(err.Error(), `throttle zone "zone-same" is used with different throttle settings`) {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), "pw") {
		t.Errorf("the password is in the error: %v", err)
	}
}

// TestRedisStoreProbeWarns: with no Redis, the background probe WARNs
// naming the address and not the password; Provision itself does not dial.
func TestRedisStoreProbeWarns(t *testing.T) {
	old := redisstore.ProbeDelay
	redisstore.ProbeDelay = 50 * time.Millisecond
	t.Cleanup(func() { redisstore.ProbeDelay = old })
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := startCaddy(t, "", redisSite("probe", "probe-mem", "redis://"+addr+"/0", "probe-secret-pw"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		logs, _ := os.ReadFile(s.logFile)
		if strings.Contains(string(logs), "redis throttle store does not answer") {
			if !strings.Contains(string(logs), addr) {
				t.Errorf("the WARN does not name %s:\n%s", addr, logs)
			}
			if strings.Contains(string(logs), "probe-secret-pw") {
				t.Errorf("the password is in the log")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no probe WARN:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// value reads a gauge's or counter's current value.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

// TestStoreMemoryIsTheDefault: `store memory` spelled out is the same state
// as no store line, so two such handlers may share a zone.
func TestStoreMemoryIsTheDefault(t *testing.T) {
	s := startCaddy(t, "", `loginshare {
		user_path /a/user
		staff_path /a/staff
		throttle {
			zone z
			store memory
		}
		backend testfake {
			name a
		}
	}
	loginshare {
		user_path /b/user
		staff_path /b/staff
		throttle {
			zone z
		}
		backend testfake {
			name b
		}
	}`)
	_ = s
	n := 0
	throttleStores.Range(func(k, v any) bool {
		if v.(throttleEntry).zone == "zone-z" {
			n++
		}
		return true
	})
	if n != 1 {
		t.Errorf("%d states for zone z, want 1", n)
	}
}

// TestRedisStoreRotatedPassword: a reload after only the environment
// changed (a rotated Redis password) gets a store on a new client, not the
// old one with the old password.
func TestRedisStoreRotatedPassword(t *testing.T) {
	t.Setenv("LOGINSHARE_TEST_ROTATE", "old-pw")
	body := redisSite("rot", "rot-mem", fmt.Sprintf("redis://127.0.0.1:%d/0", freePort(t)), "{env.LOGINSHARE_TEST_ROTATE}")
	s := startCaddy(t, "", body)
	find := func() *throttleEntry {
		var e *throttleEntry
		throttleStores.Range(func(k, v any) bool {
			if x := v.(throttleEntry); x.zone == "zone-rot" {
				e = &x
			}
			return true
		})
		return e
	}
	before := find()
	os.Setenv("LOGINSHARE_TEST_ROTATE", "new-pw")
	if err := loadAgain(testGlobals(s.logFile, "") + fmt.Sprintf("http://127.0.0.1:%d {\n%s\n}\n", s.port, body)); err != nil {
		t.Fatal(err)
	}
	after := find()
	if before == nil || after == nil || before.store == after.store {
		t.Errorf("the reload kept the store of the old password")
	}
}
