package sql

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	_ "github.com/kayako-loginshare/caddy-loginshare/backends/ldap"
	"github.com/kayako-loginshare/caddy-loginshare/caddymodule"
)

type recorder struct {
	mu    sync.Mutex
	steps []backends.Step
}

func (r *recorder) Record(s backends.Step) {
	r.mu.Lock()
	r.steps = append(r.steps, s)
	r.mu.Unlock()
}

func (r *recorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, s := range r.steps {
		fmt.Fprintf(&b, "%s: %s", s.Source, s.What)
		for _, f := range s.Fields {
			fmt.Fprintf(&b, " %s=%q", f.Key, f.Value)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// loginHandler provisions a handler from its JSON outside any server, as
// `caddy loginshare test` does.
func loginHandler(t *testing.T, cfg string) *caddymodule.Handler {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	t.Cleanup(cancel)
	mod, err := ctx.LoadModuleByID("http.handlers.loginshare", json.RawMessage(cfg))
	if err != nil {
		t.Fatal(err)
	}
	h := mod.(*caddymodule.Handler)
	t.Cleanup(func() { _ = h.Cleanup() })
	return h
}

// TestLoginTellsItsSQLStory: a login through the handler's own code path
// with a recorder: the query run, the row with its columns but not the
// password, the hash format (not the hash), the groups; and neither the
// password, the stored hash nor the DSN's password anywhere in it.
func TestLoginTellsItsSQLStory(t *testing.T) {
	_, _, dsn := wordpressDatabase(t)
	cfg := fmt.Sprintf(`{"throttle":{"per_user":1,"per_ip":0},
		"user_groups":{"map":[{"group":"administrator","title":"VIP"}]},
		"backends":[{"backend":"sql","name":"shop","driver":"mysql","dsn":%q,"preset":"wordpress"}]}`, dsn)
	h := loginHandler(t, cfg)
	rec := &recorder{}
	ctx := backends.WithTrace(caddymodule.WithoutThrottle(context.Background()), rec)
	res := h.Login(ctx, "user", backends.Credentials{Username: "Pat@Example.org", Password: Password, IPAddress: "203.0.113.7"})
	story := rec.text()
	if res.Outcome != backends.OK || res.Title != "VIP" || res.Backend != "shop" || res.Username != "patricia" {
		t.Fatalf("result %+v\n%s", res, story)
	}
	for _, want := range []string{
		"sql: user query run", `server="mysql://127.0.0.1:`, `query="user_query"`, `rows="2"`,
		"sql: row found: its e-mail is what was typed (exactly)", `username="patricia"`, `email="Pat@Example.org"`, `full_name="Patricia"`,
		"sql: stored hash format identified", `format="wordpress"`, "trimmed first",
		"sql: password matches",
		"sql: groups found", `groups="administrator"`,
	} {
		if !strings.Contains(story, want) {
			t.Errorf("the story has no %s:\n%s", want, story)
		}
	}
	pw := dsn[strings.Index(dsn, ":")+1 : strings.Index(dsn, "@")]
	for _, secret := range []string{Password, "$wp$2y$", pw} {
		if strings.Contains(story, secret) {
			t.Errorf("the story holds %q:\n%s", secret, story)
		}
	}

	rec = &recorder{}
	ctx = backends.WithTrace(caddymodule.WithoutThrottle(context.Background()), rec)
	if res := h.Login(ctx, "user", backends.Credentials{Username: "nobody", Password: Password}); res.Outcome != backends.UnknownUser {
		t.Fatalf("nobody: %+v", res)
	}
	if story := rec.text(); !strings.Contains(story, `rows="0"`) || !strings.Contains(story, "no row for this username") {
		t.Errorf("unknown user's story:\n%s", story)
	}
}

// TestProbeUpAndDatabaseStopped: Probe names driver://host, says what it
// checked, passes while the database answers, fails (redacted) within the
// query timeout while it is stopped, and passes again after the restart.
// It stops the shared PostgreSQL: never parallel.
func TestProbeUpAndDatabaseStopped(t *testing.T) {
	d := openDatabase(t, "postgres")
	b := d.backend()
	b.QueryTimeout = caddyDuration(2 * time.Second)
	s, _ := provision(t, b)
	res := s.Probe(context.Background())
	if len(res) != 1 || res[0].Err != nil || res[0].Server != "postgres://"+d.host || !strings.Contains(res[0].Detail, "user_query") {
		t.Fatalf("up: %+v", res)
	}
	if s.shared.down.Load() {
		t.Error("marked down while up")
	}
	d.stop(t)
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			d.restart(t)
		}
	})
	start := time.Now()
	res = s.Probe(context.Background())
	if len(res) != 1 || res[0].Err == nil {
		t.Fatalf("stopped: %+v", res)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the probe took %s", took)
	}
	if strings.Contains(res[0].Err.Error(), d.password) || !strings.HasPrefix(res[0].Err.Error(), "ping: ") {
		t.Errorf("stopped: %v", res[0].Err)
	}
	if !s.shared.down.Load() {
		t.Error("not marked down")
	}
	d.restart(t)
	restarted = true
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = s.Probe(context.Background())[0].Err; err == nil {
			break
		}
	}
	if err != nil || s.shared.down.Load() {
		t.Errorf("after the restart: %v", err)
	}
}

func TestProbeNamesABrokenUserQuery(t *testing.T) {
	d := openDatabase(t, "mariadb")
	b := d.backend()
	b.UserQuery = "SELECT id, pass AS password, title AS job FROM people WHERE login = {username}"
	b.GroupsQuery = ""
	s, _ := provision(t, b)
	res := s.Probe(context.Background())
	if len(res) != 1 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), `user_query: result columns: unknown column "job"`) {
		t.Fatalf("%+v", res)
	}
}

func scrapeMetrics(t *testing.T, port int) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
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

// series returns the values of name's series whose labels hold every
// want.
func series(text, name string, want ...string) []string {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{([^}]*)\} (\S+)$`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(m[1], w)
		}
		if ok {
			out = append(out, m[2])
		}
	}
	return out
}

func oneSeries(t *testing.T, text, name string, want ...string) string {
	t.Helper()
	got := series(text, name, want...)
	if len(got) != 1 {
		t.Fatalf("%d series of %s with %v, want 1:\n%s", len(got), name, want, text)
	}
	return got[0]
}

// TestSQLMetricsFromARealCaddy: two sites whose sql backends (named apart)
// share one pool; server_up and pool_connections are scraped from Caddy's
// admin endpoint, one series each, labelled with both names; server_up
// goes to 0 while the database is stopped and back to 1 after. It stops
// the shared MariaDB: never parallel.
func TestSQLMetricsFromARealCaddy(t *testing.T) {
	caddyEnv()
	d := openDatabase(t, "mariadb")
	t.Setenv("LOGINSHARE_SQL_TEST_DSN", d.dsn)
	admin, p1, p2 := freeTCPPort(t), freeTCPPort(t), freeTCPPort(t)
	site := func(port int, name string) string {
		return fmt.Sprintf(`http://127.0.0.1:%d {
	loginshare {
		failure_delay 1ms
		failure_jitter 1ms
		throttle off
		backend sql {
			name %s
			driver mysql
			dsn {env.LOGINSHARE_SQL_TEST_DSN}
			user_query "%s"
			query_timeout 2s
		}
	}
}
`, port, name, strings.Join(strings.Fields(userQuery), " "))
	}
	// A third site with an LDAP backend: both backends export the same
	// metric names, and neither may hide the other's series.
	p3 := freeTCPPort(t)
	ldapSite := fmt.Sprintf(`http://127.0.0.1:%d {
	loginshare {
		backend ldap {
			name corp
			servers ldaps://127.0.0.1:9
			base_dn "dc=example,dc=org"
		}
	}
}
`, p3)
	cfg := fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\tpersist_config off\n\tauto_https off\n\tskip_install_trust\n\tlog {\n\t\toutput discard\n\t}\n}\n", admin) +
		site(p1, "shop-a") + ldapSite + site(p2, "shop-b")
	loadCaddyfile(t, cfg)
	// caddy.Stop leaves the admin server running; a config without one stops it.
	t.Cleanup(func() { _ = caddy.Load([]byte(`{"admin":{"disabled":true}}`), true) })
	t.Cleanup(func() { _ = caddy.Stop() })
	waitForPort(t, p1)
	waitForPort(t, p2)
	for _, p := range []int{p1, p2} {
		if a := kayakoPost(t, fmt.Sprintf("http://127.0.0.1:%d", p), "alice", Password); a.Result != "1" {
			t.Fatalf("login: %+v", a)
		}
	}
	server := `server="mysql://` + d.host + `"`
	text := scrapeMetrics(t, admin)
	if v := oneSeries(t, text, "caddy_loginshare_server_up", `backend="shop-a+shop-b"`, server); v != "1" {
		t.Errorf("server_up %s, want 1", v)
	}
	idle := oneSeries(t, text, "caddy_loginshare_pool_connections", `backend="shop-a+shop-b"`, server, `pool="sql"`, `state="idle"`)
	inUse := oneSeries(t, text, "caddy_loginshare_pool_connections", `backend="shop-a+shop-b"`, server, `pool="sql"`, `state="in_use"`)
	if idle == "0" || inUse != "0" {
		t.Errorf("pool idle %s in_use %s, want idle > 0 and none in use", idle, inUse)
	}
	if len(series(text, "caddy_loginshare_server_up", `backend="corp"`, `server="ldaps://127.0.0.1:9"`)) != 1 {
		t.Errorf("the LDAP backend's server_up is missing beside the SQL one:\n%s", text)
	}
	if strings.Contains(text, d.password) {
		t.Error("the metrics hold the DSN's password")
	}

	d.stop(t)
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			d.restart(t)
		}
	})
	if a := kayakoPost(t, fmt.Sprintf("http://127.0.0.1:%d", p1), "alice", Password); a.Message != msgUnavailable {
		t.Fatalf("database stopped: %+v", a)
	}
	if v := oneSeries(t, scrapeMetrics(t, admin), "caddy_loginshare_server_up", `backend="shop-a+shop-b"`); v != "0" {
		t.Errorf("server_up %s while stopped, want 0", v)
	}
	d.restart(t)
	restarted = true
	var a kayakoAnswer
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if a = kayakoPost(t, fmt.Sprintf("http://127.0.0.1:%d", p2), "alice", Password); a.Result == "1" {
			break
		}
	}
	if a.Result != "1" {
		t.Fatalf("after the restart: %+v", a)
	}
	if v := oneSeries(t, scrapeMetrics(t, admin), "caddy_loginshare_server_up", `backend="shop-a+shop-b"`); v != "1" {
		t.Errorf("server_up %s after the restart, want 1", v)
	}
}
