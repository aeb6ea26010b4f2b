package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

// scrape reads the admin endpoint's /metrics.
func scrape(t *testing.T, adminPort int) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// sample returns the value of the one series of name whose labels include
// every want label, failing when there is none or more than one.
func sample(t *testing.T, text, name string, want ...string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{([^}]*)\} (\S+)$`)
	var found []string
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		ok := true
		for _, w := range want {
			if !strings.Contains(m[1], w) {
				ok = false
			}
		}
		if ok {
			found = append(found, m[2])
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d series of %s with %v, want 1:\n%s", len(found), name, want, grepLines(text, name))
	}
	return found[0]
}

// sum adds the values of every series of name whose labels include every
// want label (counters are process-wide: tests compare differences).
func sum(text, name string, want ...string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{([^}]*)\} (\S+)$`)
	total := 0.0
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		ok := true
		for _, w := range want {
			if !strings.Contains(m[1], w) {
				ok = false
			}
		}
		if ok {
			v, _ := strconv.ParseFloat(m[2], 64)
			total += v
		}
	}
	return total
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestMetricsFromARealCaddy: two sites whose ldap backends (named apart)
// share one pool, real traffic, the directory going down and coming back;
// every series is scraped from Caddy's own admin endpoint and unique.
func TestMetricsFromARealCaddy(t *testing.T) {
	dir := slapdtest.Start(t)
	t.Setenv("LOGINSHARE_TEST_BIND_PASSWORD", dir.BindPassword)
	admin, p1, p2 := freePort(t), freePort(t), freePort(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	handler := func(name string) string {
		return fmt.Sprintf(`loginshare {
		failure_delay 1ms
		failure_jitter 1ms
		throttle {
			per_user 50 10m
			max_keys 3301
		}
		%s
	}`, strings.Replace(ldapBackend(dir, "server_cooldown 1ms"), "backend ldap {", "backend ldap {\n\t\tname "+name, 1))
	}
	cfg := strings.Replace(testGlobals(logFile, ""), "admin off", fmt.Sprintf("admin 127.0.0.1:%d", admin), 1) +
		fmt.Sprintf("http://127.0.0.1:%d {\n\t%s\n}\nhttp://127.0.0.1:%d {\n\t%s\n}\n", p1, handler("corp-a"), p2, handler("corp-b"))
	s1 := loadConfig(t, cfg, p1, logFile)
	// caddy.Stop leaves the admin server running; a config without one stops it.
	t.Cleanup(func() { _ = caddy.Load([]byte(`{"admin":{"disabled":true}}`), true) })
	s2 := &site{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", p2), port: p2, logFile: logFile}
	waitListening(t, p2)

	before := scrape(t, admin)
	for _, s := range []*site{s1, s2} {
		if r := s.post("/loginshare/user", form("username", "jdoe", "password", slapdtest.Password)); r.Doc.Result != "1" {
			t.Fatalf("login: %s", r.Body)
		}
	}
	mustFail(t, s1.post("/loginshare/user", form("username", "jdoe", "password", "wrong")), 200, DefaultMessageInvalid)

	m := scrape(t, admin)
	okReqs := `caddy_loginshare_requests_total`
	if d := sum(m, okReqs, `endpoint="user"`, `outcome="ok"`) - sum(before, okReqs, `endpoint="user"`, `outcome="ok"`); d != 2 {
		t.Errorf("requests_total ok grew by %v, want 2", d)
	}
	if v := sample(t, m, "caddy_loginshare_backend_duration_seconds_count", `backend="corp-a"`, `outcome="ok"`); v != "1" {
		t.Errorf("backend_duration count for corp-a ok = %s, want 1", v)
	}
	sample(t, m, "caddy_loginshare_backend_duration_seconds_count", `backend="corp-a"`, `outcome="invalid_credentials"`)
	// One pool shared by both sites: one series per server, both names.
	server := `server="` + dir.LDAPSURL + `"`
	if v := sample(t, m, "caddy_loginshare_server_up", `backend="corp-a+corp-b"`, server); v != "1" {
		t.Errorf("server_up = %s, want 1", v)
	}
	sample(t, m, "caddy_loginshare_pool_connections", server, `pool="search"`, `state="idle"`)
	sample(t, m, "caddy_loginshare_pool_connections", server, `pool="bind"`, `state="in_use"`)
	ev := "caddy_loginshare_throttle_events_total"
	if d := sum(m, ev, `kind="failure"`) - sum(before, ev, `kind="failure"`); d != 1 {
		t.Errorf("throttle failures grew by %v, want 1", d)
	}
	if !strings.Contains(m, "caddy_loginshare_throttle_keys{zone=") {
		t.Errorf("no throttle_keys gauge:\n%s", grepLines(m, "caddy_loginshare_throttle"))
	}
	for _, l := range strings.Split(m, "\n") {
		if strings.HasPrefix(l, "caddy_loginshare_") && (strings.Contains(l, "jdoe") || strings.Contains(l, slapdtest.Password)) {
			t.Errorf("a metric names a person: %s", l)
		}
	}

	// The directory goes away: a login answers unavailable and the server is down.
	dir.Stop()
	mustFail(t, s1.post("/loginshare/user", form("username", "jdoe", "password", slapdtest.Password)), 200, DefaultMessageUnavail)
	if v := sample(t, scrape(t, admin), "caddy_loginshare_server_up", server); v != "0" {
		t.Errorf("server_up with slapd stopped = %s, want 0", v)
	}
	dir.Restart()
	deadline := time.Now().Add(15 * time.Second)
	for s1.post("/loginshare/user", form("username", "jdoe", "password", slapdtest.Password)).Doc.Result != "1" {
		if time.Now().After(deadline) {
			t.Fatal("logins did not recover after slapd restarted")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v := sample(t, scrape(t, admin), "caddy_loginshare_server_up", server); v != "1" {
		t.Errorf("server_up after recovery = %s, want 1", v)
	}
}

// The metric wrapper keeps a backend's Prompt promise visible, and a chain
// is asked on the request's goroutine only when every backend made it.
func TestTimedWrapperKeepsThePromptPromise(t *testing.T) {
	prompt, plain := timed("a", &promptFakeBackend{}), timed("b", &fakeBackend{})
	if _, ok := prompt.(backends.Prompt); !ok {
		t.Error("a wrapped Prompt backend is no longer Prompt")
	}
	if _, ok := plain.(backends.Prompt); ok {
		t.Error("a wrapped backend without the promise became Prompt")
	}
	if unwrapTimed(prompt) == prompt || unwrapTimed(plain) == plain {
		t.Error("unwrapTimed did not unwrap")
	}
	for _, tc := range []struct {
		chain []backends.Named
		want  bool
	}{
		{[]backends.Named{{Name: "a", Backend: prompt}}, true},
		{[]backends.Named{{Name: "a", Backend: prompt}, {Name: "b", Backend: plain}}, false},
		{[]backends.Named{{Name: "b", Backend: plain}}, false},
	} {
		if got := backends.AllPrompt(tc.chain); got != tc.want {
			t.Errorf("AllPrompt(%d backends) = %v, want %v", len(tc.chain), got, tc.want)
		}
	}
}
