package ldap

import (
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/fakeldap"
	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

const jdoeDN = "uid=jdoe,ou=people,dc=example,dc=org"

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestFailoverFromRefusingServer(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	cfg := openldap(s)
	dead := "ldaps://" + closedPort(t)
	cfg.Servers = []string{dead, s.LDAPSURL}
	l, logs := provision(t, cfg)
	id, err := login(t, l, slapdtest.JDoe, slapdtest.Password)
	if err != nil {
		t.Fatal(err)
	}
	if id.Server != s.LDAPSURL {
		t.Errorf("server = %q, want %q", id.Server, s.LDAPSURL)
	}
	if logs.FilterMessageSnippet("LDAP server failed").FilterField(stringField("server", dead)).Len() != 1 {
		t.Errorf("no WARN naming the dead server: %v", logs.All())
	}
	// Server 1 cools down: the next login goes straight to server 2.
	if l.set.order()[0].url != s.LDAPSURL {
		t.Error("the failed server is not cooling down")
	}
	if _, err := login(t, l, slapdtest.JDoe, slapdtest.Password); err != nil {
		t.Fatal(err)
	}
}

func TestBlackholedServerFailsOverWithinDialTimeout(t *testing.T) {
	leakCheck(t)
	for _, tlsMode := range []bool{false, true} {
		hang := fakeldap.Start(t, nil, fakeldap.OnAccept(func(int) fakeldap.Action { return fakeldap.Hang }))
		good := fakeldap.Start(t, fakeDirectory)
		url := hang.URL
		if tlsMode {
			url = "ldaps://" + hang.Addr // TLS handshake never completes
		}
		cfg := plain(url, good.URL)
		cfg.DialTimeout = caddyDur(300 * time.Millisecond)
		cfg.RequestTimeout = caddyDur(300 * time.Millisecond)
		l, _ := provision(t, cfg)
		start := time.Now()
		id, err := login(t, l, "jdoe", "s3cret")
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > time.Second {
			t.Errorf("tls=%v: failover took %v", tlsMode, el)
		}
		if id.Server != good.URL {
			t.Errorf("server = %q", id.Server)
		}
		waitFor(t, func() bool { return hang.OpenConns() == 0 })
	}
}

// T44 at backend level: every server down → unavailable within the
// request's deadline, nothing left running.
func TestAllServersDownUnavailableWithinDeadline(t *testing.T) {
	leakCheck(t)
	hang := fakeldap.Start(t, nil, fakeldap.OnAccept(func(int) fakeldap.Action { return fakeldap.Hang }))
	cfg := plain("ldap://"+closedPort(t), hang.URL, "ldap://"+closedPort(t))
	cfg.DialTimeout = caddyDur(5 * time.Second)
	cfg.RequestTimeout = caddyDur(5 * time.Second)
	l, _ := provision(t, cfg)
	start := time.Now()
	_, err := l.Authenticate(ctxTimeout(t, 400*time.Millisecond), backends.Credentials{Username: "jdoe", Password: "s3cret"})
	wantClass(t, err, backends.Unavailable)
	if el := time.Since(start); el > time.Second {
		t.Fatalf("took %v with a 400ms deadline", el)
	}
	waitFor(t, func() bool { return hang.OpenConns() == 0 })
}

func TestServerThatNeverAnswersIsClosedNotReused(t *testing.T) {
	leakCheck(t)
	var hangSearch atomic.Bool
	f := fakeldap.Start(t, func(r fakeldap.Request) fakeldap.Response {
		if r.Op == "search" && hangSearch.Load() {
			return fakeldap.Response{Action: fakeldap.Hang}
		}
		return fakeDirectory(r)
	})
	l, _ := provision(t, plain(f.URL))
	if _, err := login(t, l, "jdoe", "s3cret"); err != nil {
		t.Fatal(err)
	}
	hangSearch.Store(true)
	start := time.Now()
	_, err := login(t, l, "jdoe", "s3cret")
	wantClass(t, err, backends.Unavailable)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v with request_timeout 500ms", el)
	}
	// The hung search connection was closed; only the idle bind connection stays.
	waitFor(t, func() bool { return f.OpenConns() <= 1 })
	hangSearch.Store(false)
	before := f.Conns.Load()
	if _, err := login(t, l, "jdoe", "s3cret"); err != nil {
		t.Fatal(err)
	}
	if f.Conns.Load() == before {
		t.Error("no fresh search connection after the hung one")
	}
}

func TestResetMidSearchRetriedOnFreshConnection(t *testing.T) {
	leakCheck(t)
	var resetConn atomic.Int64
	f := fakeldap.Start(t, func(r fakeldap.Request) fakeldap.Response {
		if r.Op == "search" && int64(r.Conn) == resetConn.Load() {
			return fakeldap.Response{Action: fakeldap.Reset, PartialBeforeReset: true, Entries: fakeDirectory(r).Entries}
		}
		return fakeDirectory(r)
	})
	l, _ := provision(t, plain(f.URL))
	if _, err := login(t, l, "jdoe", "s3cret"); err != nil {
		t.Fatal(err)
	}
	resetConn.Store(1) // the pooled search connection dies mid-search
	if _, err := login(t, l, "jdoe", "s3cret"); err != nil {
		t.Fatalf("retry on a fresh connection failed: %v", err)
	}
	if n := f.BindsFor(jdoeDN); n != 2 {
		t.Errorf("user binds = %d, want 2 (one per login)", n)
	}
}

func TestIdleConnectionsCutByServerAreInvisible(t *testing.T) {
	leakCheck(t)
	f := fakeldap.Start(t, fakeDirectory)
	l, _ := provision(t, plain(f.URL))
	for i := 0; i < 3; i++ {
		if _, err := login(t, l, "jdoe", "s3cret"); err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		f.DropConns() // like AD's MaxConnIdleTime
		waitFor(t, func() bool { return f.OpenConns() == 0 })
		time.Sleep(20 * time.Millisecond) // let go-ldap's reader notice
	}
}

func TestIdleConnectionsExpire(t *testing.T) {
	leakCheck(t)
	f := fakeldap.Start(t, fakeDirectory)
	cfg := plain(f.URL)
	cfg.IdleTimeout = caddyDur(100 * time.Millisecond)
	l, _ := provision(t, cfg)
	if _, err := login(t, l, "jdoe", "s3cret"); err != nil {
		t.Fatal(err)
	}
	if f.OpenConns() != 2 {
		t.Fatalf("open connections = %d, want 2 (one search, one bind)", f.OpenConns())
	}
	waitFor(t, func() bool { return f.OpenConns() == 0 })
}

func TestGarbageAnswerFailsOver(t *testing.T) {
	leakCheck(t)
	junk := fakeldap.Start(t, func(r fakeldap.Request) fakeldap.Response { return fakeldap.Response{Action: fakeldap.Garbage} })
	good := fakeldap.Start(t, fakeDirectory)
	l, _ := provision(t, plain(junk.URL, good.URL))
	id, err := login(t, l, "jdoe", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if id.Server != good.URL {
		t.Errorf("server = %q", id.Server)
	}
}

func TestWrongPasswordWithTwoServersBindsExactlyOnce(t *testing.T) {
	leakCheck(t)
	a := fakeldap.Start(t, fakeDirectory)
	b := fakeldap.Start(t, fakeDirectory)
	l, logs := provision(t, plain(a.URL, b.URL))
	_, err := login(t, l, "jdoe", "Wrong-pw-123")
	wantClass(t, err, backends.InvalidCredentials)
	if n := a.BindsFor(jdoeDN) + b.BindsFor(jdoeDN); n != 1 {
		t.Fatalf("user binds = %d, want exactly 1", n)
	}
	noSecret(t, logs, err, "Wrong-pw-123")
}

func TestUserBindBrokenAfterSendIsNeverRepeated(t *testing.T) {
	leakCheck(t)
	handler := func(r fakeldap.Request) fakeldap.Response {
		if r.Op == "bind" && r.DN == jdoeDN {
			return fakeldap.Response{Action: fakeldap.Reset}
		}
		return fakeDirectory(r)
	}
	a := fakeldap.Start(t, handler)
	b := fakeldap.Start(t, handler)
	l, _ := provision(t, plain(a.URL, b.URL))
	_, err := login(t, l, "jdoe", "s3cret")
	wantClass(t, err, backends.Unavailable)
	if n := a.BindsFor(jdoeDN) + b.BindsFor(jdoeDN); n != 1 {
		t.Fatalf("user binds = %d, want exactly 1", n)
	}
	// Same for a bind that never gets an answer.
	hangA := fakeldap.Start(t, func(r fakeldap.Request) fakeldap.Response {
		if r.Op == "bind" && r.DN == jdoeDN {
			return fakeldap.Response{Action: fakeldap.Hang}
		}
		return fakeDirectory(r)
	})
	l2, _ := provision(t, plain(hangA.URL, b.URL))
	_, err = login(t, l2, "jdoe", "s3cret")
	wantClass(t, err, backends.Unavailable)
	if n := hangA.BindsFor(jdoeDN) + b.BindsFor(jdoeDN); n != 1 {
		t.Fatalf("user binds = %d, want exactly 1", n)
	}
}

func TestEmptyPasswordSendsNothing(t *testing.T) {
	leakCheck(t)
	f := fakeldap.Start(t, nil) // accepts anonymous binds
	l, _ := provision(t, plain(f.URL))
	for _, pw := range []string{"", " ", "\t\n", "\u00a0"} {
		_, err := login(t, l, "jdoe", pw)
		if backends.ClassOf(err) == backends.OK {
			t.Fatalf("password %q accepted", pw)
		}
	}
	if f.Conns.Load() != 0 || f.Packets.Load() != 0 {
		t.Fatalf("connections %d, packets %d: want none", f.Conns.Load(), f.Packets.Load())
	}
}

func TestADSubCodesClassified(t *testing.T) {
	leakCheck(t)
	for _, tc := range []struct {
		resp fakeldap.Response
		want backends.Class
	}{
		{fakeldap.ADInvalid("52e"), backends.InvalidCredentials},
		{fakeldap.ADInvalid("525"), backends.UnknownUser},
		{fakeldap.ADInvalid("530"), backends.LogonRestricted},
		{fakeldap.ADInvalid("531"), backends.LogonRestricted},
		{fakeldap.ADInvalid("532"), backends.PasswordExpired},
		{fakeldap.ADInvalid("533"), backends.AccountDisabled},
		{fakeldap.ADInvalid("701"), backends.AccountExpired},
		{fakeldap.ADInvalid("773"), backends.PasswordExpired},
		{fakeldap.ADInvalid("775"), backends.AccountLocked},
		{fakeldap.Response{Code: 49}, backends.InvalidCredentials},
		{fakeldap.Response{Code: 19, Diagnostic: "Password expired"}, backends.PolicyDenied},
		{fakeldap.Response{Code: 50}, backends.PolicyDenied},
		{fakeldap.Response{Code: 53}, backends.PolicyDenied},
		{fakeldap.Response{Code: 51}, backends.Unavailable},
		{fakeldap.Response{Code: 52}, backends.Unavailable},
	} {
		resp := tc.resp
		a := fakeldap.Start(t, func(r fakeldap.Request) fakeldap.Response {
			if r.Op == "bind" && r.DN == jdoeDN {
				return resp
			}
			return fakeDirectory(r)
		})
		b := fakeldap.Start(t, fakeDirectory)
		cfg := plain(a.URL, b.URL)
		l, _ := provision(t, cfg)
		_, err := login(t, l, "jdoe", "s3cret")
		if got := backends.ClassOf(err); got != tc.want {
			t.Errorf("%d %q: class %s, want %s", resp.Code, resp.Diagnostic, got, tc.want)
		}
		if n := a.BindsFor(jdoeDN) + b.BindsFor(jdoeDN); n != 1 {
			t.Errorf("%d %q: %d user binds, want 1", resp.Code, resp.Diagnostic, n)
		}
	}
}

func TestSearchBusyFailsOver(t *testing.T) {
	leakCheck(t)
	busy := fakeldap.Start(t, func(r fakeldap.Request) fakeldap.Response {
		if r.Op == "search" {
			return fakeldap.Response{Code: 51, Diagnostic: "busy"}
		}
		return fakeDirectory(r)
	})
	good := fakeldap.Start(t, fakeDirectory)
	l, _ := provision(t, plain(busy.URL, good.URL))
	id, err := login(t, l, "jdoe", "s3cret")
	if err != nil || id.Server != good.URL {
		t.Fatalf("id %+v, err %v", id, err)
	}
}

func TestSizeLimitExceededIsAmbiguous(t *testing.T) {
	leakCheck(t)
	f := fakeldap.Start(t, func(r fakeldap.Request) fakeldap.Response {
		if r.Op == "search" {
			if r.SizeLimit != 2 {
				t.Errorf("size limit %d, want 2", r.SizeLimit)
			}
			return fakeldap.Response{Code: 4, Entries: fakeDirectory(r).Entries}
		}
		return fakeDirectory(r)
	})
	l, _ := provision(t, plain(f.URL))
	_, err := login(t, l, "jdoe", "s3cret")
	wantClass(t, err, backends.AmbiguousUser)
	if f.BindsFor(jdoeDN) != 0 {
		t.Error("bound although the user was ambiguous")
	}
}

func TestStartTLSRefusedFailsClosed(t *testing.T) {
	leakCheck(t)
	f := fakeldap.Start(t, nil) // refuses the StartTLS extended operation
	cfg := plain(f.URL)
	cfg.InsecurePlaintext, cfg.StartTLS = false, true
	l, _ := provision(t, cfg)
	_, err := login(t, l, "jdoe", "s3cret")
	wantClass(t, err, backends.Unavailable)
	if f.Binds.Load() != 0 {
		t.Fatalf("%d binds sent in clear text after StartTLS was refused", f.Binds.Load())
	}
}

// activeDirectory returns a fake AD: DOMAIN\user and UPN resolve through the
// preset's filter, groups come from the in-chain matching rule.
func activeDirectory(t *testing.T, bindResp *fakeldap.Response) *fakeldap.Server {
	return fakeldap.Start(t, func(r fakeldap.Request) fakeldap.Response {
		switch r.Op {
		case "bind":
			if r.DN == "CN=Jane Doe,OU=Staff,DC=corp,DC=example" {
				if bindResp != nil {
					return *bindResp
				}
				if r.Password == "s3cret" {
					return fakeldap.Response{}
				}
				return fakeldap.ADInvalid("52e")
			}
			if r.DN == "cn=svc,dc=example,dc=org" {
				return fakeldap.Response{}
			}
			return fakeldap.ADInvalid("52e")
		case "search":
			if strings.Contains(r.Filter, "1.2.840.113556.1.4.1941") {
				if !strings.Contains(r.Filter, "CN=Jane Doe,OU=Staff,DC=corp,DC=example") {
					t.Errorf("nested filter without the user's DN: %s", r.Filter)
				}
				return fakeldap.Response{Entries: []fakeldap.Entry{
					{DN: "CN=Support Tier 2,OU=Groups,DC=corp,DC=example", Attrs: map[string][]string{"cn": {"Support Tier 2"}}},
					{DN: "CN=Helpdesk Staff,OU=Groups,DC=corp,DC=example", Attrs: map[string][]string{"cn": {"Helpdesk Staff"}}},
				}}
			}
			if strings.Contains(r.Filter, "(sAMAccountName=jdoe)") || strings.Contains(r.Filter, "(userPrincipalName=jdoe@corp.example)") {
				return fakeldap.Response{
					Entries: []fakeldap.Entry{{DN: "CN=Jane Doe,OU=Staff,DC=corp,DC=example", Attrs: map[string][]string{
						"sAMAccountName": {"jdoe"}, "displayName": {"Jane Doe (IT)"}, "givenName": {"Jane"}, "sn": {"Doe"},
						"mail":           {"jane.doe@corp.example"},
						"proxyAddresses": {"smtp:jd@corp.example", "X400:c=US;a= ;p=Corp", "SMTP:Jane.Doe@corp.example", "smtp:JANE.DOE@CORP.EXAMPLE", "sip:jane@corp.example"},
					}}},
					References: []string{"ldap://ForestDnsZones.corp.example/DC=ForestDnsZones,DC=corp,DC=example"},
				}
			}
			return fakeldap.Response{}
		}
		return fakeldap.Default(r)
	})
}

func adConfig(url string) *LDAP {
	cfg := plain(url)
	cfg.Preset = PresetActiveDirectory
	cfg.BaseDN = "DC=corp,DC=example"
	return cfg
}

func TestADPresetUPNSamAccountNameAndDomainUser(t *testing.T) {
	leakCheck(t)
	f := activeDirectory(t, nil)
	l, _ := provision(t, adConfig(f.URL))
	for _, u := range []string{"jdoe", `CORP\jdoe`, "jdoe@corp.example"} {
		id, err := login(t, l, u, "s3cret")
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if id.Username != "jdoe" || id.FullName != "Jane Doe (IT)" {
			t.Errorf("%s: identity %+v", u, id)
		}
		// T37 on AD: mail first, then SMTP: primary, then smtp: secondaries, deduplicated.
		want := []string{"jane.doe@corp.example", "jd@corp.example"}
		if strings.Join(id.Emails, " ") != strings.Join(want, " ") {
			t.Errorf("%s: emails %q, want %q", u, id.Emails, want)
		}
		if g := groupNames(id); strings.Join(g, "|") != "Helpdesk Staff|Support Tier 2" {
			t.Errorf("%s: groups %q", u, g)
		}
	}
	for _, r := range f.Requests() {
		if r.Op == "search" && strings.Contains(r.Filter, "sAMAccountName") && strings.Contains(r.Filter, `\5c`) {
			t.Errorf("DOMAIN\\ prefix reached the filter: %s", r.Filter)
		}
	}
}

func TestEmptyResolvedBindPasswordNeverBinds(t *testing.T) {
	leakCheck(t)
	f := fakeldap.Start(t, nil)
	cfg := plain(f.URL)
	cfg.BindPassword = "{env.LOGINSHARE_TEST_UNSET_VARIABLE}"
	cfg.probeAfter = time.Millisecond
	l, logs := provision(t, cfg)
	if logs.FilterMessageSnippet("bind_password is empty").Len() != 1 {
		t.Error("no WARN for the empty bind_password")
	}
	_, err := login(t, l, "jdoe", "s3cret")
	wantClass(t, err, backends.Unavailable)
	// The probe still checks the server, without the service bind. Wait until
	// its root DSE read has reached the server: any bind it sent on that
	// connection came first and is counted by now.
	for deadline := time.Now().Add(10 * time.Second); f.Searches.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the probe never read the root DSE (%d connections, %d binds)", f.Conns.Load(), f.Binds.Load())
		}
	}
	if f.Binds.Load() != 0 {
		t.Fatalf("%d binds with an empty service password", f.Binds.Load())
	}
}

func TestBindPasswordPlaceholderResolvedInProvision(t *testing.T) {
	leakCheck(t)
	t.Setenv("LOGINSHARE_TEST_BIND_PW", "svcpw")
	f := fakeldap.Start(t, fakeDirectory)
	cfg := plain(f.URL)
	cfg.BindPassword = "{env.LOGINSHARE_TEST_BIND_PW}"
	l, _ := provision(t, cfg)
	if _, err := login(t, l, "jdoe", "s3cret"); err != nil {
		t.Fatal(err)
	}
	if l.BindPassword != "{env.LOGINSHARE_TEST_BIND_PW}" {
		t.Error("the resolved password was written back into the config")
	}
	dir := t.TempDir()
	os.WriteFile(dir+"/pw", []byte("svcpw"), 0o600)
	cfg = plain(f.URL)
	cfg.BindPassword = "{file." + dir + "/pw}"
	l, _ = provision(t, cfg)
	if _, err := login(t, l, "jdoe", "s3cret"); err != nil {
		t.Fatal(err)
	}
}

// caddy validate / adapt --validate provision and cancel at once: nothing
// may be dialled. Without the cancel, the probe dials later and logs a WARN
// naming the server.
func TestProvisionDoesNoNetworkIO(t *testing.T) {
	leakCheck(t)
	f := fakeldap.Start(t, nil)
	cfg := plain(f.URL)
	cfg.probeAfter = 200 * time.Millisecond
	core, _ := observerCore()
	ctx, cancel := contextWithCancel()
	if err := cfg.provision(ctx, core); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := cfg.Cleanup(); err != nil {
		t.Fatal(err)
	}
	// The control: the same probe delay, provisioned later and not cancelled.
	// Once its probe has read the root DSE of its own server, the cancelled
	// config's probe would have dialled too.
	g := fakeldap.Start(t, fakeDirectory)
	control := plain(g.URL)
	control.probeAfter = 200 * time.Millisecond
	provision(t, control)
	waitFor(t, func() bool { return g.Searches.Load() > 0 })
	if f.Conns.Load() != 0 {
		t.Fatalf("%d connections during provision/validate", f.Conns.Load())
	}

	dead := "ldap://" + closedPort(t)
	cfg = plain(dead)
	cfg.probeAfter = 10 * time.Millisecond
	_, logs := provision(t, cfg)
	waitFor(t, func() bool { return logs.FilterMessage("LDAP server check failed").Len() == 1 })
	e := logs.FilterMessage("LDAP server check failed").All()[0]
	if e.ContextMap()["server"] != dead || e.Level.String() != "warn" {
		t.Errorf("probe WARN = %v %v", e.Level, e.ContextMap())
	}
}

func TestEmailsProxyAddresses(t *testing.T) {
	e := goldap.NewEntry("cn=x", map[string][]string{
		"mail":           {"A@example.com", "a@EXAMPLE.com", " "},
		"proxyAddresses": {"smtp:b@example.com", "SMTP:P@example.com", "x500:/o=Org", "smtp:a@example.com", "smtp:"},
	})
	got := emails(e, []string{"mail", "proxyAddresses"})
	want := []string{"A@example.com", "P@example.com", "b@example.com"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("emails = %q, want %q", got, want)
	}
}
