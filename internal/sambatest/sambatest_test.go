//go:build linux

package sambatest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// dial connects with a tls.Config built from CAFile alone, as a backend
// configured with a CA file would, verifying the IP SAN 127.0.0.1.
func dial(t *testing.T, s *Server, url string) *ldap.Conn {
	t.Helper()
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("CAFile %s holds no PEM certificate", s.CAFile)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	c, err := ldap.DialURL(url, ldap.DialWithTLSConfig(cfg))
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetTimeout(30 * time.Second)
	t.Cleanup(func() { c.Close() })
	return c
}

func bindErr(t *testing.T, s *Server, url, user, password string) error {
	t.Helper()
	c := dial(t, s, url)
	defer c.Close()
	return c.Bind(user, password)
}

func search(t *testing.T, c *ldap.Conn, base, filter string, attrs ...string) []*ldap.Entry {
	t.Helper()
	res, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 30, false, filter, attrs, nil))
	if err != nil {
		t.Fatalf("search %s: %v", filter, err)
	}
	return res.Entries
}

func serviceConn(t *testing.T, s *Server) *ldap.Conn {
	t.Helper()
	c := dial(t, s, s.LDAPSURL)
	if err := c.Bind(s.BindDN, s.BindPassword); err != nil {
		t.Fatalf("service bind: %v", err)
	}
	return c
}

// wantSubCode checks a bind error is 49 with "data <code>" in the diagnostic.
func wantSubCode(t *testing.T, err error, code string) {
	t.Helper()
	var le *ldap.Error
	if !errors.As(err, &le) || le.ResultCode != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("want LDAP result 49, got %v", err)
	}
	if !strings.Contains(le.Err.Error(), "data "+code+",") {
		t.Fatalf("want \"data %s\" in the diagnostic, got %q", code, le.Err.Error())
	}
}

func TestFixtureDNConstantsMatchTheEntries(t *testing.T) {
	users := map[string]string{
		ServiceUser: ServiceDN, JDoe: JDoeDN, Admin1: Admin1DN, RRoe: RRoeDN,
		Disabled: DisabledDN, Expired: ExpiredDN, Locked: LockedDN, LockMe: LockMeDN,
		MustChange: MustChangeDN, NoHours: NoHoursDN, Restricted: RestrictedDN,
	}
	for _, u := range fixtureUsers {
		if want, ok := users[u.sam]; !ok || userDN(u) != want {
			t.Errorf("user %s: entry DN %q, constant %q", u.sam, userDN(u), want)
		}
		delete(users, u.sam)
	}
	groups := map[string]string{
		GroupUsers: GroupUsersDN, GroupTier1: GroupTier1DN, GroupStaff: GroupStaffDN,
		GroupAdmins: GroupAdminsDN, GroupAgentsEU: GroupAgentsEUDN,
	}
	for _, g := range fixtureGroups {
		if want, ok := groups[g.sam]; !ok || groupDN(g) != want {
			t.Errorf("group %s: entry DN %q, constant %q", g.sam, groupDN(g), want)
		}
		delete(groups, g.sam)
	}
	if len(users)+len(groups) > 0 {
		t.Errorf("constants without an entry: %v %v", users, groups)
	}
}

func TestActiveDirectorySemantics(t *testing.T) {
	s := Start(t)

	t.Run("jdoe binds by UPN, DOMAIN\\user and DN over LDAPS and plain LDAP", func(t *testing.T) {
		for _, url := range []string{s.LDAPSURL, s.LDAPURL} {
			for _, name := range []string{
				JDoe + "@" + strings.ToLower(s.Realm),
				s.Domain + `\` + JDoe,
				JDoeDN,
				strings.ToUpper(JDoeDN), // DNs compare case-insensitively
			} {
				if err := bindErr(t, s, url, name, JDoePassword); err != nil {
					t.Errorf("bind %q on %s: %v", name, url, err)
				}
			}
		}
	})

	t.Run("a UPN whose prefix is not the sAMAccountName", func(t *testing.T) {
		if err := bindErr(t, s, s.LDAPSURL, RRoeUPN, RRoePassword); err != nil {
			t.Errorf("bind %s: %v", RRoeUPN, err)
		}
		if err := bindErr(t, s, s.LDAPSURL, Domain+`\`+RRoe, RRoePassword); err != nil {
			t.Errorf("bind %s\\%s: %v", Domain, RRoe, err)
		}
	})

	t.Run("a bare sAMAccountName is not a bind name", func(t *testing.T) {
		wantSubCode(t, bindErr(t, s, s.LDAPSURL, JDoe, JDoePassword), "52e")
	})

	t.Run("sub-codes in the diagnostic", func(t *testing.T) {
		for _, tc := range []struct {
			name, user, password, code string
		}{
			{"wrong password", JDoeUPN, "Wrong-Passw0rd", "52e"},
			{"wrong password, DOMAIN\\user", Domain + `\` + JDoe, "Wrong-Passw0rd", "52e"},
			{"unknown user (not 525)", "nobody@" + DNSDomain, "Wrong-Passw0rd", "52e"},
			{"disabled", DisabledDN, DisabledPassword, "533"},
			{"account expired", ExpiredDN, ExpiredPassword, "701"},
			{"locked out, right password", LockedDN, LockedPassword, "775"},
			{"locked out, wrong password", LockedDN, "Wrong-Passw0rd", "775"},
			{"must change password", MustChangeDN, MustChangePassword, "773"},
			{"must change password, wrong password", MustChangeDN, "Wrong-Passw0rd", "52e"},
			{"outside logon hours", NoHoursDN, NoHoursPassword, "530"},
			{"workstation restriction", RestrictedDN, RestrictedPassword, "531"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantSubCode(t, bindErr(t, s, s.LDAPSURL, tc.user, tc.password), tc.code)
			})
		}
	})

	t.Run("the disabled flag is visible to the AD preset's filter", func(t *testing.T) {
		c := serviceConn(t, s)
		f := "(&(objectCategory=person)(objectClass=user)(sAMAccountName=%s)%s)"
		enabled := "(!(userAccountControl:1.2.840.113556.1.4.803:=2))"
		if n := len(search(t, c, s.BaseDN, fmt.Sprintf(f, Disabled, ""))); n != 1 {
			t.Errorf("disabled account without the flag filter: %d entries, want 1", n)
		}
		if n := len(search(t, c, s.BaseDN, fmt.Sprintf(f, Disabled, enabled))); n != 0 {
			t.Errorf("disabled account with the flag filter: %d entries, want 0", n)
		}
		if n := len(search(t, c, s.BaseDN, fmt.Sprintf(f, JDoe, enabled))); n != 1 {
			t.Errorf("jdoe with the flag filter: %d entries, want 1", n)
		}
	})

	t.Run("nested groups through the matching rule, memberOf direct only", func(t *testing.T) {
		c := serviceConn(t, s)
		var nested []string
		for _, e := range search(t, c, s.BaseDN, "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:="+ldap.EscapeFilter(JDoeDN)+"))", "cn") {
			nested = append(nested, e.GetAttributeValue("cn"))
		}
		slices.Sort(nested)
		if want := []string{GroupTier1, GroupStaff, GroupUsers}; !slices.Equal(nested, want) {
			t.Errorf("transitive groups of jdoe: %q, want %q", nested, want)
		}
		es := search(t, c, s.BaseDN, "(sAMAccountName="+JDoe+")", "memberOf")
		if len(es) != 1 {
			t.Fatalf("jdoe: %d entries", len(es))
		}
		direct := es[0].GetAttributeValues("memberOf")
		slices.Sort(direct)
		if want := []string{GroupTier1DN, GroupUsersDN}; !slices.Equal(direct, want) {
			t.Errorf("memberOf of jdoe: %q, want %q (helpdesk-staff only through Tier1)", direct, want)
		}
		// The reverse direction, as a group-restricted user filter would use it.
		es = search(t, c, s.BaseDN, "(&(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:="+ldap.EscapeFilter(GroupStaffDN)+"))", "sAMAccountName")
		if len(es) != 1 || es[0].GetAttributeValue("sAMAccountName") != JDoe {
			t.Errorf("transitive members of helpdesk-staff: %v, want jdoe", es)
		}
	})

	t.Run("jdoe's attributes, proxyAddresses included", func(t *testing.T) {
		c := serviceConn(t, s)
		filter := "(&(objectCategory=person)(objectClass=user)(|(sAMAccountName=" + JDoe + ")(userPrincipalName=" + JDoe + "))(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
		es := search(t, c, s.BaseDN, filter, "sAMAccountName", "userPrincipalName", "givenName", "sn", "displayName",
			"mail", "proxyAddresses", "title", "telephoneNumber", "cn", "userAccountControl")
		if len(es) != 1 {
			t.Fatalf("AD preset filter: %d entries, want 1", len(es))
		}
		e := es[0]
		if e.DN != JDoeDN {
			t.Errorf("DN %q, want %q", e.DN, JDoeDN)
		}
		for attr, want := range map[string]string{
			"sAMAccountName": JDoe, "userPrincipalName": JDoeUPN, "givenName": JDoeGivenName, "sn": JDoeSN,
			"displayName": JDoeDisplayName, "mail": JDoeMail, "title": JDoeTitle, "telephoneNumber": JDoePhone,
			"cn": JDoeCN, "userAccountControl": strconv.Itoa(uacNormalAccount | uacDontExpirePassword),
		} {
			if got := e.GetAttributeValue(attr); got != want {
				t.Errorf("%s = %q, want %q", attr, got, want)
			}
		}
		got := e.GetAttributeValues("proxyAddresses")
		slices.Sort(got)
		if want := []string{JDoeProxyPrimary, JDoeProxySecondary}; !slices.Equal(got, want) {
			t.Errorf("proxyAddresses = %q, want %q", got, want)
		}
	})

	t.Run("a group whose CN differs from its sAMAccountName", func(t *testing.T) {
		c := serviceConn(t, s)
		es := search(t, c, s.BaseDN, "(sAMAccountName="+RRoe+")", "memberOf")
		if len(es) != 1 || !slices.Equal(es[0].GetAttributeValues("memberOf"), []string{GroupAgentsEUDN}) {
			t.Fatalf("rroe's memberOf: %v", es)
		}
		es = search(t, c, s.BaseDN, "(sAMAccountName="+GroupAgentsEU+")", "cn")
		if len(es) != 1 || es[0].GetAttributeValue("cn") != GroupAgentsEUCN || es[0].DN != GroupAgentsEUDN {
			t.Fatalf("group %s: %v", GroupAgentsEU, es)
		}
	})

	t.Run("the service account is an ordinary user", func(t *testing.T) {
		if s.BindDN == s.AdminDN {
			t.Fatal("BindDN is the Administrator")
		}
		c := serviceConn(t, s)
		es := search(t, c, s.BaseDN, "(sAMAccountName="+ServiceUser+")", "memberOf")
		if len(es) != 1 || len(es[0].GetAttributeValues("memberOf")) != 0 {
			t.Errorf("service account entry: %v (want no group beyond its primary Domain Users)", es)
		}
	})

	t.Run("subtree search from the base DN returns continuation references, no error", func(t *testing.T) {
		c := serviceConn(t, s)
		res, err := c.Search(ldap.NewSearchRequest(s.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			2, 30, false, "(sAMAccountName="+JDoe+")", []string{"dn"}, nil))
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("search: %v, %v", res, err)
		}
		if len(res.Referrals) == 0 {
			t.Errorf("no continuation references (Samba sends them for Configuration, DomainDnsZones...)")
		}
	})

	t.Run("badPwdCount counts each wrong bind, a good bind resets it", func(t *testing.T) {
		before := s.BadPwdCount(t, JDoeDN)
		if err := bindErr(t, s, s.LDAPSURL, JDoeUPN, "Wrong-Passw0rd"); err == nil {
			t.Fatal("wrong password accepted")
		}
		if got := s.BadPwdCount(t, JDoeDN); got != before+1 {
			t.Errorf("badPwdCount %d after one wrong bind, want %d", got, before+1)
		}
		if err := bindErr(t, s, s.LDAPSURL, JDoeUPN, JDoePassword); err != nil {
			t.Fatal(err)
		}
		if got := s.BadPwdCount(t, JDoeDN); got != 0 {
			t.Errorf("badPwdCount %d after a good bind, want 0", got)
		}
	})

	t.Run("LockMe locks after LockoutThreshold wrong binds", func(t *testing.T) {
		for i := 1; i <= LockoutThreshold; i++ {
			err := bindErr(t, s, s.LDAPSURL, LockMeDN, "Wrong-Passw0rd")
			// The bind that reaches the threshold is still reported as a wrong password.
			wantSubCode(t, err, "52e")
		}
		wantSubCode(t, bindErr(t, s, s.LDAPSURL, LockMeDN, LockMePassword), "775")
	})

	t.Run("listens on loopback only", func(t *testing.T) {
		socks := listeningSockets(t)
		for _, port := range ldapPorts {
			addrs := socks[port]
			if len(addrs) == 0 {
				t.Errorf("nothing listens on port %d", port)
			}
			for _, a := range addrs {
				if !a.IsLoopback() {
					t.Errorf("port %d listens on %s", port, a)
				}
			}
		}
		for _, port := range []int{53, 88, 135, 139, 445, 464} {
			if len(socks[port]) > 0 {
				t.Errorf("port %d is open (%v); only the LDAP service should run", port, socks[port])
			}
		}
	})
}

func TestRestartKeepsTheData(t *testing.T) {
	s := Start(t)
	if err := bindErr(t, s, s.LDAPURL, JDoeUPN, "Wrong-Passw0rd"); err == nil {
		t.Fatal("wrong password accepted")
	}
	old := s.PID()
	s.Restart(t)
	if s.PID() == old || s.PID() == 0 {
		t.Fatalf("PID %d after restart (was %d)", s.PID(), old)
	}
	if groupAlive(old) {
		t.Errorf("process group %d survives the restart", old)
	}
	if got := s.BadPwdCount(t, JDoeDN); got != 1 {
		t.Errorf("badPwdCount after restart %d, want 1", got)
	}
	if err := bindErr(t, s, s.LDAPSURL, JDoeUPN, JDoePassword); err != nil {
		t.Errorf("bind after restart: %v", err)
	}
}

func TestEachStartIsFreshAndCleanupStopsEverything(t *testing.T) {
	var pid int
	var dir string
	t.Run("first", func(t *testing.T) {
		s := Start(t)
		pid, dir = s.PID(), s.Dir
		if err := bindErr(t, s, s.LDAPSURL, JDoeUPN, "Wrong-Passw0rd"); err == nil {
			t.Fatal("wrong password accepted")
		}
		if got := s.BadPwdCount(t, JDoeDN); got != 1 {
			t.Fatalf("badPwdCount %d, want 1", got)
		}
	})
	if groupAlive(pid) {
		t.Errorf("process group %d still runs after Cleanup", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("directory %s still exists after Cleanup (%v)", dir, err)
	}
	if err := portsFree(); err != nil {
		t.Errorf("after Cleanup: %v", err)
	}
	t.Run("second", func(t *testing.T) {
		s := Start(t)
		if got := s.BadPwdCount(t, JDoeDN); got != 0 {
			t.Errorf("badPwdCount %d in a new server, want 0 (the first server's change leaked)", got)
		}
	})
}

func TestStartFailsClearlyWhenAPortIsTaken(t *testing.T) {
	// Whatever holds one of Samba's fixed ports, Start must name the port
	// instead of timing out. The check runs under the lock, as in Start, so
	// that no other test binary's Samba meets the listener.
	if why := missing(); why != "" {
		unavailable(t, why) // root is needed to probe ports 389 and 636
	}
	lk, err := acquireLock(t)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.release()
	if err := portsFree(); err != nil {
		t.Fatalf("before the test: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:3269")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = portsFree()
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:3269 is not free") {
		t.Errorf("with 3269 taken: %v", err)
	}
}

func TestStartReportsTheLogWhenSambaDies(t *testing.T) {
	if why := missing(); why != "" {
		unavailable(t, why)
	}
	// A samba that answers -V (the template key) like the real one, then
	// dies at start-up with a message.
	fake := filepath.Join(t.TempDir(), "samba")
	script := "#!/bin/sh\nif [ \"$1\" = -V ]; then exec " + sambaBin + " -V; fi\n" +
		"echo 'fake samba: cannot open the database'\nexit 3\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	saved := sambaBin
	sambaBin = fake
	defer func() { sambaBin = saved }()
	ft := runFake(t, func(tb testing.TB) { Start(tb) })
	t.Logf("Start failed with: %s", ft.fatal)
	for _, want := range []string{"exited before it answered", "exit status 3", "fake samba: cannot open the database"} {
		if !strings.Contains(ft.fatal, want) {
			t.Errorf("Start's failure %q does not contain %q", ft.fatal, want)
		}
	}
}

func TestMissingSambaSkipsOutsideCIAndFailsInCI(t *testing.T) {
	saved := sambaBin
	sambaBin = "/nonexistent/samba"
	defer func() { sambaBin = saved }()
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			ft := runFake(t, func(tb testing.TB) { Start(tb) })
			got := ft.skip
			if ci == "true" {
				got = ft.fatal
				if ft.skip != "" {
					t.Errorf("skipped under CI=true: %q", ft.skip)
				}
			} else if ft.fatal != "" {
				t.Errorf("failed outside CI: %q", ft.fatal)
			}
			if !strings.Contains(got, "samba-ad-provision") || !strings.Contains(got, "apt-get install") {
				t.Errorf("message %q does not say what to install", got)
			}
		})
	}
}

// fakeTB records Skip and Fatal instead of ending the real test; the rest
// (Logf, Cleanup, Helper) goes to the real one.
type fakeTB struct {
	testing.TB
	mu          sync.Mutex
	skip, fatal string
}

func (f *fakeTB) stop(dst *string, args ...any) {
	f.mu.Lock()
	*dst = fmt.Sprint(args...)
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Skip(args ...any)                 { f.stop(&f.skip, args...) }
func (f *fakeTB) Skipf(format string, args ...any) { f.stop(&f.skip, fmt.Sprintf(format, args...)) }
func (f *fakeTB) SkipNow()                         { f.stop(&f.skip, "SkipNow") }
func (f *fakeTB) Fatal(args ...any)                { f.stop(&f.fatal, args...) }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.stop(&f.fatal, fmt.Sprintf(format, args...))
}
func (f *fakeTB) FailNow() { f.stop(&f.fatal, "FailNow") }

func runFake(t *testing.T, fn func(testing.TB)) *fakeTB {
	ft := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ft)
	}()
	<-done
	return ft
}

// listeningSockets maps each TCP port in LISTEN state to its local addresses,
// from /proc/net/tcp and tcp6.
func listeningSockets(t *testing.T) map[int][]net.IP {
	t.Helper()
	out := map[int][]net.IP{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			hexIP, hexPort, _ := strings.Cut(fields[1], ":")
			port, err := strconv.ParseUint(hexPort, 16, 16)
			if err != nil {
				t.Fatalf("%s: %q", file, sc.Text())
			}
			out[int(port)] = append(out[int(port)], procIP(hexIP))
		}
		f.Close()
	}
	return out
}

// procIP decodes /proc/net/tcp's address: 32-bit words in host (little
// endian) byte order.
func procIP(h string) net.IP {
	ip := make(net.IP, len(h)/2)
	for i := 0; i < len(ip); i += 4 {
		for j := 0; j < 4; j++ {
			b, _ := strconv.ParseUint(h[2*(i+j):2*(i+j)+2], 16, 8)
			ip[i+3-j] = byte(b)
		}
	}
	return ip
}
