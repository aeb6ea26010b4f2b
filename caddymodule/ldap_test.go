package caddymodule

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

// These tests run the spec's vectors that need a directory through a real
// Caddy against a real, private slapd (internal/slapdtest).

// ldapBackend is a `backend ldap` block for the fixture directory.
func ldapBackend(dir *slapdtest.Server, extra string) string {
	return fmt.Sprintf(`backend ldap {
		servers %s
		tls {
			ca_file %s
		}
		preset openldap
		bind_dn %s
		bind_password {env.LOGINSHARE_TEST_BIND_PASSWORD}
		base_dn %s
		groups memberof
		%s
	}`, dir.LDAPSURL, dir.CAFile, dir.BindDN, dir.BaseDN, extra)
}

// ldapMapping maps the staff group by DN (compared as a DN) and the others by name.
const ldapMapping = `user_groups {
		helpdesk-users Registered
	}
	staff_teams {
		"CN=Helpdesk-Staff, OU=Groups, DC=Example, DC=Org" Support
		helpdesk-admins Administrator
	}`

func ldapSite(t *testing.T, dir *slapdtest.Server, handlerExtra, backendExtra string) *site {
	t.Helper()
	t.Setenv("LOGINSHARE_TEST_BIND_PASSWORD", dir.BindPassword)
	return startCaddy(t, "", fmt.Sprintf("loginshare {\n%s\n%s\n%s\n%s\n}", fastFail, ldapMapping, handlerExtra, ldapBackend(dir, backendExtra)))
}

func TestLDAPVectorsThroughCaddy(t *testing.T) {
	dir := slapdtest.Start(t)
	s := ldapSite(t, dir, "staff_interfaces staff winapp admin", "")

	t.Run("T1 user document from the directory", func(t *testing.T) {
		r := s.post("/loginshare/user", form("username", "jdoe", "password", slapdtest.Password, "ipaddress", "203.0.113.7"))
		if r.Doc.Result != "1" {
			t.Fatalf("got %s", r.Body)
		}
		u := r.Doc.User
		if u.UserGroup != "Registered" || u.FullName != slapdtest.JDoeCN || u.Designation != slapdtest.JDoeTitle || u.Phone != slapdtest.JDoePhone {
			t.Errorf("%+v", u)
		}
		// T37: every mail value, primary first.
		if strings.Join(u.Emails, ",") != slapdtest.JDoeMail+","+slapdtest.JDoeMail2 {
			t.Errorf("emails %v", u.Emails)
		}
	})
	t.Run("T2 staff document, team by DN key", func(t *testing.T) {
		r := s.post("/loginshare/staff", form("username", "jdoe", "password", slapdtest.Password, "interface", "staff"))
		if r.Doc.Result != "1" || r.Doc.Staff == nil || *r.Doc.Staff.Team != "Support" || *r.Doc.Staff.FirstName != "Jane" ||
			*r.Doc.Staff.LastName != "Doe" || *r.Doc.Staff.Email != slapdtest.JDoeMail || *r.Doc.Staff.MobileNumber != slapdtest.JDoeMobile {
			t.Fatalf("got %s", r.Body)
		}
	})
	t.Run("canonical username from the directory", func(t *testing.T) {
		r := s.post("/loginshare/user", form("username", "JDOE", "password", slapdtest.Password))
		if r.Doc.Result != "1" {
			t.Fatalf("got %s", r.Body)
		}
	})
	t.Run("T3 T4 wrong password and unknown user look alike", func(t *testing.T) {
		a := s.post("/loginshare/user", form("username", "jdoe", "password", "wrong"))
		b := s.post("/loginshare/user", form("username", "nobody", "password", "wrong"))
		mustFail(t, a, 200, DefaultMessageInvalid)
		mustFail(t, b, 200, DefaultMessageInvalid)
	})
	t.Run("T8 interface on the user endpoint is ignored", func(t *testing.T) {
		if r := s.post("/loginshare/user", form("username", "jdoe", "password", slapdtest.Password, "interface", "admin")); r.Doc.Result != "1" {
			t.Errorf("got %s", r.Body)
		}
	})
	t.Run("T12 admin interface allowed, admin1 in Administrator", func(t *testing.T) {
		r := s.post("/loginshare/staff", form("username", "admin1", "password", slapdtest.Password, "interface", "admin"))
		if r.Doc.Result != "1" || *r.Doc.Staff.Team != "Administrator" {
			t.Errorf("got %s", r.Body)
		}
	})
	t.Run("T16 authenticated but in no mapped group", func(t *testing.T) {
		mustFail(t, s.post("/loginshare/staff", form("username", "tom", "password", slapdtest.Password, "interface", "staff")), 200, DefaultMessageInvalid)
	})
	t.Run("T21 T22 escaping and Unicode from the directory", func(t *testing.T) {
		for user, cn := range map[string]string{"tom": slapdtest.TomCN, "zoe": slapdtest.ZoeCN} {
			r := s.post("/loginshare/user", form("username", user, "password", slapdtest.Password))
			if r.Doc.Result != "1" || r.Doc.User.FullName != cn {
				t.Errorf("%s: %s", user, r.Body)
			}
		}
	})
	t.Run("T28 to T31 injection strings fail", func(t *testing.T) {
		for _, u := range []string{"*", "jdoe)(uid=*", "*)(|(objectClass=*)", `a\b`, "jd*", "(uid=jdoe)"} {
			mustFail(t, s.post("/loginshare/user", form("username", u, "password", slapdtest.Password)), 200, DefaultMessageInvalid)
		}
		mustFail(t, s.do("POST", "/loginshare/user", "application/x-www-form-urlencoded", strings.NewReader("username=jdoe%00&password=s3cret")), 200, DefaultMessageInvalid)
	})
	t.Run("T39 T40 no e-mail is refused", func(t *testing.T) {
		mustFail(t, s.post("/loginshare/user", form("username", "nomail", "password", slapdtest.Password)), 200, DefaultMessageInvalid)
	})
	t.Run("T41 staff without givenName", func(t *testing.T) {
		r := s.post("/loginshare/staff", form("username", "nogiven", "password", slapdtest.Password, "interface", "winapp"))
		if r.Doc.Result != "1" || *r.Doc.Staff.FirstName != "Sam" {
			t.Errorf("got %s", r.Body)
		}
	})
	t.Run("ambiguous filter is refused", func(t *testing.T) {
		mustFail(t, s.post("/loginshare/user", form("username", "twin", "password", slapdtest.Password)), 200, DefaultMessageInvalid)
	})
	if err := stopCaddy(); err != nil {
		t.Fatal(err)
	}
	logs, _ := os.ReadFile(s.logFile)
	for _, want := range []string{`"outcome":"ambiguous_user"`, `"outcome":"unknown_user"`, `"outcome":"invalid_credentials"`, `"outcome":"not_authorised"`} {
		if !strings.Contains(string(logs), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	if strings.Contains(string(logs), slapdtest.Password) || strings.Contains(string(logs), dir.BindPassword) {
		t.Error("a log line contains a password")
	}
}

func TestLDAPDirectBindTemplateThroughCaddy(t *testing.T) {
	dir := slapdtest.Start(t)
	s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	%s
	%s
	backend ldap {
		servers %s
		tls {
			ca_file %s
		}
		preset openldap
		base_dn %s
		bind_dn_template "uid={username},%s"
		groups memberof
	}
}`, fastFail, ldapMapping, dir.LDAPSURL, dir.CAFile, dir.BaseDN, slapdtest.PeopleDN))
	if r := s.post("/loginshare/user", form("username", "jdoe", "password", slapdtest.Password)); r.Doc.Result != "1" {
		t.Errorf("direct bind: %s", r.Body)
	}
	// T32: a DN typed as the username is escaped, never bound as is.
	for _, u := range []string{"cn=admin,dc=example,dc=org", slapdtest.AdminDN, "jdoe,ou=people"} {
		mustFail(t, s.post("/loginshare/user", form("username", u, "password", slapdtest.AdminPassword)), 200, DefaultMessageInvalid)
	}
	mustFail(t, s.post("/loginshare/user", form("username", "jdoe", "password", "wrong")), 200, DefaultMessageInvalid)
}

func TestLDAPDirectoryDownThenRestartedThroughCaddy(t *testing.T) {
	dir := slapdtest.Start(t)
	s := ldapSite(t, dir, "timeout 3s", "")
	if r := s.post("/loginshare/user", form("username", "jdoe", "password", slapdtest.Password)); r.Doc.Result != "1" {
		t.Fatalf("got %s", r.Body)
	}
	dir.Stop()
	start := time.Now()
	// T44: unavailable, never an empty body, within the timeout.
	mustFail(t, s.post("/loginshare/user", form("username", "jdoe", "password", slapdtest.Password)), 200, DefaultMessageUnavail)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("unavailable answer took %s with timeout 3s", d)
	}
	dir.Restart()
	if r := s.post("/loginshare/user", form("username", "jdoe", "password", slapdtest.Password)); r.Doc.Result != "1" {
		t.Errorf("first login after the directory restart failed: %s", r.Body)
	}
}

// silentServer accepts connections and reads them, never answering: a
// directory that hangs after the TCP handshake (before TLS, before any LDAP
// answer). It reports each connection the client closed.
func silentServer(t *testing.T) (addr string, closedByClient <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{}, 16)
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(io.Discard, c) // returns when the client closes
				select {
				case closed <- struct{}{}:
				default:
				}
			}()
		}
	}()
	return l.Addr().String(), closed
}

// The LDAP backend is asked on the request's goroutine (backends.Prompt), so
// nothing but its own deadlines stands between a hung directory and the
// answer: with dial_timeout and request_timeout far beyond the handler's
// timeout, a server that never answers (in the TLS handshake, or in the
// service bind over ldap://) is still answered unavailable at the handler's
// timeout, and the connection is closed rather than left waiting.
func TestHungDirectoryAnsweredAtTheHandlerTimeout(t *testing.T) {
	for _, scheme := range []string{"ldaps", "ldap"} {
		t.Run(scheme, func(t *testing.T) {
			addr, closed := silentServer(t)
			extra := ""
			if scheme == "ldap" {
				extra = "insecure_plaintext"
			}
			s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	timeout 400ms
	failure_delay 1ms
	failure_jitter 1ms
	user_groups {
		default Registered
	}
	backend ldap {
		servers %s://%s
		preset openldap
		bind_dn cn=svc,dc=example,dc=org
		bind_password secret
		base_dn dc=example,dc=org
		dial_timeout 30s
		request_timeout 30s
		%s
	}
}`, scheme, addr, extra))
			start := time.Now()
			r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret"))
			d := time.Since(start)
			mustFail(t, r, 200, DefaultMessageUnavail)
			if d > 3*time.Second {
				t.Errorf("answered after %v; the handler's timeout is 400ms", d)
			}
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Error("the hung connection was not closed after the deadline")
			}
		})
	}
}

func TestConfigReloadDuringLDAPLogins(t *testing.T) {
	dir := slapdtest.Start(t)
	t.Setenv("LOGINSHARE_TEST_BIND_PASSWORD", dir.BindPassword)
	port := freePort(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	config := func(i int) string {
		return testGlobals(logFile, "") + fmt.Sprintf(`http://127.0.0.1:%d {
	loginshare {
		%s
		message_invalid "Invalid login (config %d)"
		%s
		%s
	}
}`, port, fastFail, i%2, ldapMapping, ldapBackend(dir, "pool_size 2\n\t\tbind_pool_size 2"))
	}
	s := loadConfig(t, config(0), port, logFile)
	// Kayako opens a new connection per LoginShare call; a reused keep-alive
	// connection can race the old server's graceful close, which is HTTP's
	// behaviour, not ours.
	saved := client
	client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer func() { client = saved }()

	var stop atomic.Bool
	var okCount, answered, dropped atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				pw := slapdtest.Password
				if i%3 == 2 {
					pw = "wrong"
				}
				req, _ := http.NewRequest("POST", s.base+"/loginshare/user", strings.NewReader(form("username", "jdoe", "password", pw).Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r, err := s.tryReq(req)
				if err != nil && r.Status == 0 {
					// Caddy's own listener hand-over at a reload can drop a
					// connection (it does so with a plain `respond` site too).
					dropped.Add(1)
					continue
				}
				answered.Add(1)
				switch {
				case err != nil:
					t.Errorf("bad answer during reload: %v", err)
					return
				case r.Doc.Result == "1" && pw == slapdtest.Password:
					okCount.Add(1)
				case r.Doc.Result == "0" && r.Doc.Message != nil && pw == "wrong":
				default:
					t.Errorf("wrong answer during reload (password ok: %v): %d %q", pw == slapdtest.Password, r.Status, r.Body)
					return
				}
			}
		}()
	}
	for i := 1; i <= 10; i++ {
		time.Sleep(100 * time.Millisecond)
		if err := loadAgain(config(i)); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d answers (%d logins), %d connections dropped by Caddy's hand-over, during 10 reloads", answered.Load(), okCount.Load(), dropped.Load())
	if okCount.Load() == 0 || dropped.Load() > answered.Load()/10 {
		t.Errorf("answers %d, logins %d, dropped %d", answered.Load(), okCount.Load(), dropped.Load())
	}
	// After the last reload the endpoint still logs people in.
	if r := s.post("/loginshare/user", form("username", "jdoe", "password", slapdtest.Password)); r.Doc.Result != "1" {
		t.Errorf("after the reloads: %s", r.Body)
	}
}

// benchParallelism × GOMAXPROCS concurrent logins: Kayako serves many people at once.
const benchParallelism = 4

// BenchmarkLoginLDAPS compares, in the same run against the same slapd over
// ldaps://, a user login through Caddy (HTTP + handler + search + bind +
// groups from memberOf) with raw go-ldap doing the same search and bind on
// persistent connections. Report ns/op of both and their ratio.
func BenchmarkLoginLDAPS(b *testing.B) {
	dir := slapdtest.Start(b)
	b.Run("caddy", func(b *testing.B) {
		os.Setenv("LOGINSHARE_TEST_BIND_PASSWORD", dir.BindPassword)
		defer os.Unsetenv("LOGINSHARE_TEST_BIND_PASSWORD")
		port := freePort(b)
		logFile := filepath.Join(b.TempDir(), "caddy.log")
		cfg := testGlobals(logFile, "") + fmt.Sprintf("http://127.0.0.1:%d {\nloginshare {\n%s\n%s\n%s\n}\n}\n", port, fastFail, ldapMapping, ldapBackend(dir, ""))
		if err := loadAgain(string(adapt(b, cfg))); err != nil {
			b.Fatal(err)
		}
		defer stopCaddy()
		waitListening(b, port)
		url := fmt.Sprintf("http://127.0.0.1:%d/loginshare/user", port)
		body := form("username", "jdoe", "password", slapdtest.Password).Encode()
		b.SetParallelism(benchParallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Post(url, "application/x-www-form-urlencoded", strings.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				buf := make([]byte, 512)
				n, _ := resp.Body.Read(buf)
				resp.Body.Close()
				if !strings.Contains(string(buf[:n]), "<result>1</result>") {
					b.Errorf("login failed: %s", buf[:n])
					return
				}
			}
		})
	})
	b.Run("raw-go-ldap", func(b *testing.B) {
		tlsConf := dir.TLSConfig()
		dial := func() *goldap.Conn {
			c, err := goldap.DialURL(dir.LDAPSURL, goldap.DialWithTLSConfig(tlsConf.Clone()))
			if err != nil {
				b.Fatal(err)
			}
			return c
		}
		b.SetParallelism(benchParallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			search, bind := dial(), dial()
			defer search.Close()
			defer bind.Close()
			if err := search.Bind(dir.BindDN, dir.BindPassword); err != nil {
				b.Error(err)
				return
			}
			for pb.Next() {
				res, err := search.Search(goldap.NewSearchRequest(dir.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 2, 0, false,
					"(&(objectClass=inetOrgPerson)(uid="+goldap.EscapeFilter("jdoe")+"))",
					[]string{"uid", "cn", "givenName", "sn", "mail", "telephoneNumber", "mobile", "title", "o", "memberOf"}, nil))
				if err != nil || len(res.Entries) != 1 {
					b.Errorf("search: %v", err)
					return
				}
				if err := bind.Bind(res.Entries[0].DN, slapdtest.Password); err != nil {
					b.Errorf("bind: %v", err)
					return
				}
			}
		})
	})
}

// TestOpenLDAPExampleThroughCaddy runs examples/Caddyfile.openldap, pointed
// at the fixture slapd (its first server a dead port, to show failover), and
// logs fixture users in through it.
func TestOpenLDAPExampleThroughCaddy(t *testing.T) {
	dir := slapdtest.Start(t)
	raw, err := os.ReadFile(filepath.Join("..", "examples", "Caddyfile.openldap"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	pwFile := filepath.Join(tmp, "ldap_bind_password")
	if err := os.WriteFile(pwFile, []byte(dir.BindPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "openldap-example-test-key"
	t.Setenv("LOGINSHARE_KEY", secret)
	port, upstream, dead := freePort(t), freePort(t), freePort(t)
	cfg := string(raw)
	for old, new := range map[string]string{
		"helpdesk.example.com {":                                      fmt.Sprintf("http://127.0.0.1:%d {", port),
		"/var/log/caddy/helpdesk-access.log":                          filepath.Join(tmp, "access.log"),
		"allow_from 203.0.113.10":                                     "allow_from 127.0.0.1",
		"servers ldaps://ldap1.example.org ldaps://ldap2.example.org": fmt.Sprintf("servers ldaps://127.0.0.1:%d %s\n\t\t\ttls {\n\t\t\t\tca_file %s\n\t\t\t}", dead, dir.LDAPSURL, dir.CAFile),
		`"cn=kayako-loginshare,ou=services,dc=example,dc=org"`:        `"` + dir.BindDN + `"`,
		"/run/secrets/ldap_bind_password":                             pwFile,
		"reverse_proxy kayako:80":                                     fmt.Sprintf("reverse_proxy 127.0.0.1:%d", upstream),
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("examples/Caddyfile.openldap no longer contains %q", old)
		}
		cfg = strings.ReplaceAll(cfg, old, new)
	}
	cfg += fmt.Sprintf("\nhttp://127.0.0.1:%d {\n\trespond \"kayako\"\n}\n", upstream)
	logFile := filepath.Join(tmp, "caddy.log")
	s := loadConfig(t, testGlobals(logFile, "")+cfg, port, logFile)

	k := "?key=" + secret
	r := s.post("/loginshare/user"+k, form("username", "jdoe", "password", slapdtest.Password, "ipaddress", "203.0.113.7"))
	if r.Doc.Result != "1" || r.Doc.User.UserGroup != "Registered" || r.Doc.User.FullName != slapdtest.JDoeCN {
		t.Errorf("jdoe user login: %s", r.Body)
	}
	r = s.post("/loginshare/staff"+k, form("username", "jdoe", "password", slapdtest.Password, "interface", "staff"))
	if r.Doc.Result != "1" || *r.Doc.Staff.Team != "Support" {
		t.Errorf("jdoe staff login: %s", r.Body)
	}
	r = s.post("/loginshare/staff"+k, form("username", "admin1", "password", slapdtest.Password, "interface", "winapp"))
	if r.Doc.Result != "1" || *r.Doc.Staff.Team != "Administrator" {
		t.Errorf("admin1 staff login: %s", r.Body)
	}
	mustFail(t, s.post("/loginshare/user"+k, form("username", "jdoe", "password", "wrong")), 200, DefaultMessageInvalid)
	mustFail(t, s.post("/loginshare/user", form("username", "jdoe", "password", slapdtest.Password)), 200, DefaultMessageDenied)
	if r := s.do("GET", "/", "", nil); r.Body != "kayako" {
		t.Errorf("other paths do not reach Kayako: %s", r.Body)
	}
}
