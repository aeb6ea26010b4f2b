package ldap

import (
	"slices"
	"strings"
	"testing"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

func groupNames(id backends.Identity) []string {
	var out []string
	for _, g := range id.Groups {
		out = append(out, g.Name)
	}
	slices.Sort(out)
	return out
}

// T1 at backend level: the identity carries the directory's values.
func TestT1IdentityFromOpenLDAP(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	l, logs := provision(t, openldap(s))
	id, err := login(t, l, "JDOE", slapdtest.Password) // case: the directory's uid comes back
	if err != nil {
		t.Fatal(err)
	}
	want := backends.Identity{
		Username: slapdtest.JDoe, FirstName: slapdtest.JDoeGivenName, LastName: slapdtest.JDoeSN,
		FullName: slapdtest.JDoeCN, Phone: slapdtest.JDoePhone, Mobile: slapdtest.JDoeMobile,
		Designation: slapdtest.JDoeTitle, Organization: slapdtest.JDoeOrg, Server: s.LDAPSURL,
	}
	got := id
	got.Emails, got.Groups = nil, nil
	if got.Username != want.Username || got.FirstName != want.FirstName || got.LastName != want.LastName ||
		got.FullName != want.FullName || got.Phone != want.Phone || got.Mobile != want.Mobile ||
		got.Designation != want.Designation || got.Organization != want.Organization || got.Server != want.Server {
		t.Errorf("identity = %+v\nwant %+v", got, want)
	}
	// T37: every mail value, primary (first) first.
	if !slices.Equal(id.Emails, []string{slapdtest.JDoeMail, slapdtest.JDoeMail2}) {
		t.Errorf("emails = %q", id.Emails)
	}
	if g := groupNames(id); !slices.Equal(g, []string{slapdtest.GroupStaff, slapdtest.GroupUsers}) {
		t.Errorf("groups = %q", g)
	}
	for _, g := range id.Groups {
		if !strings.HasPrefix(g.DN, "cn="+g.Name+",") {
			t.Errorf("group %+v: DN and name disagree", g)
		}
	}
	noSecret(t, logs, err, slapdtest.Password)
}

func TestWrongPasswordIsInvalidCredentials(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	l, logs := provision(t, openldap(s))
	_, err := login(t, l, slapdtest.JDoe, "wrong-Passw0rd")
	wantClass(t, err, backends.InvalidCredentials)
	noSecret(t, logs, err, "wrong-Passw0rd")
}

func TestUnknownUser(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	l, _ := provision(t, openldap(s))
	_, err := login(t, l, "nobody", "whatever1")
	wantClass(t, err, backends.UnknownUser)
}

func TestAmbiguousFilterIsRefusedAndLogged(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	l, logs := provision(t, openldap(s))
	_, err := login(t, l, slapdtest.Twin, slapdtest.Password)
	wantClass(t, err, backends.AmbiguousUser)
	if logs.FilterMessageSnippet("more than one entry").Len() == 0 {
		t.Fatal("no ERROR log for the ambiguous filter")
	}
	for _, e := range logs.FilterMessageSnippet("more than one entry").All() {
		if e.Level.String() != "error" {
			t.Errorf("ambiguous filter logged at %s", e.Level)
		}
	}
}

// T28–T31: injection strings are escaped exactly once and match nobody.
func TestInjectionStringsMatchNobody(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	l, _ := provision(t, openldap(s))
	for _, u := range []string{"*", "jdoe)(uid=*", "*)(|(objectClass=*)", `a\b`, "admin)(|(a=*", "jdoe*", "(uid=jdoe)"} {
		_, err := login(t, l, u, slapdtest.Password)
		if c := backends.ClassOf(err); c != backends.UnknownUser {
			t.Errorf("username %q: class %s (%v), want unknown_user", u, c, err)
		}
	}
	_, err := login(t, l, "jdoe\x00", slapdtest.Password)
	if backends.ClassOf(err) == backends.OK {
		t.Error("NUL in the username was accepted")
	}
}

// T32: a DN as username with a bind_dn_template is escaped, not injected.
func TestDirectBindEscapesDN(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	l, _ := provision(t, &LDAP{
		Servers: []string{s.LDAPSURL}, TLS: &TLS{CAFile: s.CAFile},
		BindDNTemplate: "uid={username}," + slapdtest.PeopleDN,
	})
	_, err := login(t, l, slapdtest.AdminDN, slapdtest.AdminPassword)
	if backends.ClassOf(err) == backends.OK {
		t.Fatal("a DN typed as username logged in")
	}
	_, err = login(t, l, "cn=svc,dc=example,dc=org", slapdtest.ServicePassword)
	if backends.ClassOf(err) == backends.OK {
		t.Fatal("a DN typed as username logged in")
	}
	id, err := login(t, l, slapdtest.JDoe, slapdtest.Password)
	if err != nil {
		t.Fatal(err)
	}
	if id.FullName != slapdtest.JDoeCN || len(id.Groups) != 2 {
		t.Errorf("direct bind identity = %+v", id)
	}
	_, err = login(t, l, slapdtest.JDoe, "wrong-pw")
	wantClass(t, err, backends.InvalidCredentials)
}

func TestUnicodeAndSpecialCharacters(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	l, _ := provision(t, openldap(s))
	for _, tc := range []struct{ user, cn string }{
		{slapdtest.Tom, slapdtest.TomCN},
		{slapdtest.Zoe, slapdtest.ZoeCN},
		{slapdtest.Emile, slapdtest.EmileCN},
		{"ÉMILE", slapdtest.EmileCN},
	} {
		id, err := login(t, l, tc.user, slapdtest.Password)
		if err != nil {
			t.Errorf("%s: %v", tc.user, err)
			continue
		}
		if id.FullName != tc.cn {
			t.Errorf("%s: full name %q, want %q", tc.user, id.FullName, tc.cn)
		}
	}
}

// T39/T40: no e-mail → an identity without e-mails (the handler refuses it).
func TestNoMailGivesNoEmails(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	l, _ := provision(t, openldap(s))
	id, err := login(t, l, slapdtest.NoMail, slapdtest.Password)
	if err != nil {
		t.Fatal(err)
	}
	if len(id.Emails) != 0 {
		t.Fatalf("emails = %q", id.Emails)
	}
}

// T41: no givenName: FirstName stays empty (the handler takes cn's first
// word), FullName is cn.
func TestNoGivenNameKeepsFullName(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	l, _ := provision(t, openldap(s))
	id, err := login(t, l, slapdtest.NoGiven, slapdtest.Password)
	if err != nil {
		t.Fatal(err)
	}
	if id.FirstName != "" || id.FullName != slapdtest.NoGivenCN || groupNames(id)[0] != slapdtest.GroupStaff {
		t.Fatalf("identity = %+v", id)
	}
}

func TestNestedGroupsTraversalWithCycleAndDepthLimit(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	cfg := openldap(s)
	cfg.Groups = []GroupLookup{{Method: GroupsNested}}
	l, _ := provision(t, cfg)
	id, err := login(t, l, slapdtest.Nested, slapdtest.Password)
	if err != nil {
		t.Fatal(err)
	}
	if g := groupNames(id); !slices.Equal(g, []string{"cycle-a", "cycle-b", "inner", "outer", "top"}) {
		t.Errorf("nested groups = %q", g)
	}
	id, err = login(t, l, slapdtest.Deep, slapdtest.Password)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(id.Groups); n != maxNestedDepth {
		t.Errorf("deep chain: %d groups %q, want the %d within the depth limit", n, groupNames(id), maxNestedDepth)
	}
}

func TestGroupsMemberOfAndSearchAgree(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	for _, g := range []GroupLookup{{Method: GroupsMemberOf}, {Method: GroupsSearch, Filter: "(member={dn})"}, {Method: GroupsSearch, Filter: GroupFilterOpenLDAP}} {
		cfg := openldap(s)
		cfg.Groups = []GroupLookup{g}
		l, _ := provision(t, cfg)
		id, err := login(t, l, slapdtest.JDoe, slapdtest.Password)
		if err != nil {
			t.Fatal(err)
		}
		if got := groupNames(id); !slices.Equal(got, []string{slapdtest.GroupStaff, slapdtest.GroupUsers}) {
			t.Errorf("%+v: groups %q", g, got)
		}
	}
}

// The base DN holds a referral object: the search gets a continuation
// reference, which is ignored (never chased), and the login succeeds.
func TestReferralsIgnored(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	l, _ := provision(t, openldap(s))
	if _, err := login(t, l, slapdtest.JDoe, slapdtest.Password); err != nil {
		t.Fatal(err)
	}
}

func TestStartTLS(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	cfg := openldap(s)
	cfg.Servers = []string{s.URL}
	cfg.StartTLS = true
	cfg.TLS.ServerName = "localhost"
	l, _ := provision(t, cfg)
	id, err := login(t, l, slapdtest.JDoe, slapdtest.Password)
	if err != nil {
		t.Fatal(err)
	}
	if id.Server != s.URL {
		t.Errorf("server = %q", id.Server)
	}
}

func TestTLSFailsClosed(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	for name, mod := range map[string]func(*LDAP){
		"name mismatch":      func(c *LDAP) { c.TLS.ServerName = "ldap.example.org" },
		"unknown CA":         func(c *LDAP) { c.TLS = nil },
		"starttls mismatch":  func(c *LDAP) { c.Servers, c.StartTLS, c.TLS.ServerName = []string{s.URL}, true, "wrong.example.org" },
		"starttls unknownCA": func(c *LDAP) { c.Servers, c.StartTLS, c.TLS = []string{s.URL}, true, nil },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := openldap(s)
			mod(cfg)
			l, _ := provision(t, cfg)
			_, err := login(t, l, slapdtest.JDoe, slapdtest.Password)
			wantClass(t, err, backends.Unavailable)
		})
	}
}

func TestWrongServicePasswordIsUnavailable(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	cfg := openldap(s)
	cfg.BindPassword = "not-the-service-password"
	cfg.probeAfter = 1 // probe at once
	l, logs := provision(t, cfg)
	_, err := login(t, l, slapdtest.JDoe, slapdtest.Password)
	wantClass(t, err, backends.Unavailable)
	_, err = login(t, l, slapdtest.JDoe, slapdtest.Password)
	wantClass(t, err, backends.Unavailable)
	waitFor(t, func() bool { return logs.FilterMessage("LDAP server check failed").Len() > 0 })
	e := logs.FilterMessage("LDAP server check failed").All()[0]
	if e.Level.String() != "warn" || e.ContextMap()["server"] != s.LDAPSURL || !strings.Contains(fmtAny(e.ContextMap()["reason"]), "service account") {
		t.Errorf("probe log = %v %v", e.Level, e.ContextMap())
	}
	noSecret(t, logs, err, "not-the-service-password")
}

func TestDirectoryRestartNextLoginSucceeds(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	l, _ := provision(t, openldap(s))
	if _, err := login(t, l, slapdtest.JDoe, slapdtest.Password); err != nil {
		t.Fatal(err)
	}
	s.Restart() // every pooled connection is now dead
	if _, err := login(t, l, slapdtest.JDoe, slapdtest.Password); err != nil {
		t.Fatalf("first login after restart: %v", err)
	}
	s.Stop()
	_, err := login(t, l, slapdtest.JDoe, slapdtest.Password)
	wantClass(t, err, backends.Unavailable)
	s.Restart()
	// The only server is cooling down, but it is tried anyway.
	if _, err := login(t, l, slapdtest.JDoe, slapdtest.Password); err != nil {
		t.Fatalf("login after the directory came back: %v", err)
	}
}
