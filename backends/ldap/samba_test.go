package ldap

import (
	"slices"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/sambatest"
)

// These tests run the backend with `preset activedirectory` against a real,
// private Samba AD DC (internal/sambatest) for what only AD does: UPN and
// DOMAIN\user logins, nesting through LDAP_MATCHING_RULE_IN_CHAIN,
// proxyAddresses, bind sub-codes, badPwdCount. One Samba serves every
// subtest (Start takes a machine-wide lock; never run two at once). Without
// Samba, Start skips, or fails under CI=true.

// samba is the activedirectory preset against s with the service account,
// over ldaps:// with the harness's CA (or over the given servers).
func samba(s *sambatest.Server, servers ...string) *LDAP {
	if len(servers) == 0 {
		servers = []string{s.LDAPSURL}
	}
	return &LDAP{
		Servers:      servers,
		TLS:          &TLS{CAFile: s.CAFile},
		Preset:       PresetActiveDirectory,
		BindDN:       s.BindDN,
		BindPassword: s.BindPassword,
		BaseDN:       s.BaseDN,
	}
}

// wantSubCode checks the class, and that the class came from the AD sub-code
// Samba sent (classifyBind names it in the error).
func wantSubCode(t testing.TB, err error, class backends.Class, code string) {
	t.Helper()
	wantClass(t, err, class)
	if !strings.Contains(err.Error(), "AD sub-code "+code) {
		t.Fatalf("error does not come from AD sub-code %s: %v", code, err)
	}
}

// groupsByName maps Group.Name to Group.DN.
func groupsByName(id backends.Identity) map[string]string {
	m := map[string]string{}
	for _, g := range id.Groups {
		m[g.Name] = g.DN
	}
	return m
}

// sambaBinds counts the "Auth:" lines (one per bind that reached Samba)
// naming bindName in Samba's log.
func sambaBinds(s *sambatest.Server, bindName string) int {
	n := 0
	for _, line := range strings.Split(s.LogTail(1<<20), "\n") {
		if strings.Contains(line, "Auth:") && strings.Contains(line, bindName) {
			n++
		}
	}
	return n
}

func TestSambaActiveDirectory(t *testing.T) {
	leakCheck(t) // registered first, so it runs after Samba and every backend are gone
	s := sambatest.Start(t)

	t.Run("jdoe, DOMAIN\\jdoe and the UPN give the same canonical identity", func(t *testing.T) {
		l, logs := provision(t, samba(s))
		for _, typed := range []string{
			sambatest.JDoe,
			sambatest.Domain + `\` + sambatest.JDoe,
			strings.ToLower(sambatest.Domain) + `\JDoe`,
			sambatest.JDoeUPN,
			strings.ToUpper(sambatest.JDoeUPN),
			"JDOE",
		} {
			id, err := login(t, l, typed, sambatest.JDoePassword)
			if err != nil {
				t.Fatalf("%s: %v", typed, err)
			}
			if id.Username != sambatest.JDoe || id.FullName != sambatest.JDoeDisplayName ||
				id.FirstName != sambatest.JDoeGivenName || id.LastName != sambatest.JDoeSN ||
				id.Designation != sambatest.JDoeTitle || id.Phone != sambatest.JDoePhone || id.Server != s.LDAPSURL {
				t.Errorf("%s: identity %+v", typed, id)
			}
			// T37 on AD: mail, then proxyAddresses with the SMTP: primary first and the
			// prefix stripped; SMTP:jane.doe@example.com repeats mail apart from case
			// and is dropped, smtp:jd@example.com follows.
			if want := []string{sambatest.JDoeMail, "jd@example.com"}; !slices.Equal(id.Emails, want) {
				t.Errorf("%s: emails %q, want %q", typed, id.Emails, want)
			}
			for _, e := range id.Emails {
				if strings.Contains(strings.ToLower(e), "smtp:") {
					t.Errorf("%s: e-mail %q keeps its proxyAddresses prefix", typed, e)
				}
			}
			// Nested through the matching rule: helpdesk-staff only through Tier1.
			got := groupsByName(id)
			want := map[string]string{
				sambatest.GroupUsers: sambatest.GroupUsersDN,
				sambatest.GroupTier1: sambatest.GroupTier1DN,
				sambatest.GroupStaff: sambatest.GroupStaffDN,
			}
			if len(got) != len(want) || len(id.Groups) != len(want) {
				t.Errorf("%s: groups %v, want %v", typed, got, want)
			}
			for name, dn := range want {
				if d, ok := got[name]; !ok || !strings.EqualFold(d, dn) {
					t.Errorf("%s: group %s: DN %q, want %q (all: %v)", typed, name, d, dn, got)
				}
			}
		}
		// The DOMAIN\ prefix never reaches the filter: it is stripped, not escaped.
		for _, e := range logs.All() {
			if f, ok := e.ContextMap()["filter"]; ok && strings.Contains(fmtAny(f), `\5c`) {
				t.Errorf("DOMAIN\\ prefix reached a filter: %v", f)
			}
		}
		noSecret(t, logs, nil, sambatest.JDoePassword)

		// helpdesk-staff really is not a direct membership: jdoe's memberOf
		// lacks it, so only the matching rule can have found it.
		c := s.Admin(t)
		res, err := c.Search(goldap.NewSearchRequest(sambatest.JDoeDN, goldap.ScopeBaseObject, goldap.NeverDerefAliases,
			1, 30, false, "(objectClass=*)", []string{"memberOf"}, nil))
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("read jdoe's memberOf: %v", err)
		}
		for _, dn := range res.Entries[0].GetAttributeValues("memberOf") {
			if strings.EqualFold(dn, sambatest.GroupStaffDN) {
				t.Fatal("jdoe is a direct member of helpdesk-staff: the fixture no longer tests nesting")
			}
		}
	})

	t.Run("a UPN whose prefix is not the sAMAccountName; a group named by its CN", func(t *testing.T) {
		for _, method := range []string{GroupsNested, GroupsMemberOf} {
			cfg := samba(s)
			cfg.Groups = []GroupLookup{{Method: method}}
			l, _ := provision(t, cfg)
			for _, typed := range []string{sambatest.RRoeUPN, sambatest.RRoe, sambatest.Domain + `\` + sambatest.RRoe} {
				id, err := login(t, l, typed, sambatest.RRoePassword)
				if err != nil {
					t.Fatalf("%s, groups %s: %v", typed, method, err)
				}
				if id.Username != sambatest.RRoe {
					t.Errorf("%s: username %q, want the sAMAccountName %q", typed, id.Username, sambatest.RRoe)
				}
				// The group's sAMAccountName is helpdesk-agents-eu; Name is the CN.
				if len(id.Groups) != 1 || id.Groups[0].Name != sambatest.GroupAgentsEUCN ||
					!strings.EqualFold(id.Groups[0].DN, sambatest.GroupAgentsEUDN) {
					t.Errorf("%s, groups %s: %+v, want only %q", typed, method, id.Groups, sambatest.GroupAgentsEUCN)
				}
			}
		}
	})

	t.Run("bind sub-codes Samba returns are classified", func(t *testing.T) {
		l, logs := provision(t, samba(s))
		for _, tc := range []struct {
			name, user, password string
			class                backends.Class
			code                 string // "" when no user bind happens
		}{
			{"52e wrong password", sambatest.JDoe, "Wrong-Passw0rd", backends.InvalidCredentials, "52e"},
			{"52e wrong password, UPN", sambatest.JDoeUPN, "Wrong-Passw0rd", backends.InvalidCredentials, "52e"},
			{"unknown user: no entry, no bind", "nobody", "Wrong-Passw0rd", backends.UnknownUser, ""},
			{"unknown UPN: no entry, no bind", "nobody@" + sambatest.DNSDomain, "Wrong-Passw0rd", backends.UnknownUser, ""},
			{"530 outside logon hours", sambatest.NoHours, sambatest.NoHoursPassword, backends.LogonRestricted, "530"},
			{"531 workstation restriction", sambatest.Restricted, sambatest.RestrictedPassword, backends.LogonRestricted, "531"},
			{"701 account expired", sambatest.Expired, sambatest.ExpiredPassword, backends.AccountExpired, "701"},
			{"773 must change password", sambatest.MustChange, sambatest.MustChangePassword, backends.PasswordExpired, "773"},
			{"773 account, wrong password: 52e", sambatest.MustChange, "Wrong-Passw0rd", backends.InvalidCredentials, "52e"},
			{"775 locked, right password", sambatest.Locked, sambatest.LockedPassword, backends.AccountLocked, "775"},
			{"775 locked, wrong password", sambatest.Locked, "Wrong-Passw0rd", backends.AccountLocked, "775"},
		} {
			_, err := login(t, l, tc.user, tc.password)
			if tc.code == "" {
				wantClass(t, err, tc.class)
				continue
			}
			t.Logf("%s: %v", tc.name, err)
			wantSubCode(t, err, tc.class, tc.code)
		}

		// lockme: LockoutThreshold wrong logins (the one reaching the threshold
		// still answers 52e), then even the right password is 775.
		for i := 1; i <= sambatest.LockoutThreshold; i++ {
			_, err := login(t, l, sambatest.LockMe, "Wrong-Passw0rd")
			wantSubCode(t, err, backends.InvalidCredentials, "52e")
		}
		_, err := login(t, l, sambatest.LockMe, sambatest.LockMePassword)
		wantSubCode(t, err, backends.AccountLocked, "775")
		noSecret(t, logs, err, "Wrong-Passw0rd")
	})

	// The spec's table says 533 → account_disabled, and its activedirectory
	// preset filter ends in (!(userAccountControl:1.2.840.113556.1.4.803:=2)):
	// with the preset a disabled account is not found, so the login is
	// unknown_user and no bind is sent (the person sees the same "invalid"
	// message either way, and a disabled account's password is never tried).
	// The 533 row applies where the flow reaches the bind: a user_filter
	// without the flag clause, or direct bind.
	t.Run("533 disabled: unknown_user with the preset filter, account_disabled once the bind is reached", func(t *testing.T) {
		l, _ := provision(t, samba(s))
		before := sambaBinds(s, "Disabled User")
		for _, pw := range []string{sambatest.DisabledPassword, "Wrong-Passw0rd"} {
			_, err := login(t, l, sambatest.Disabled, pw)
			wantClass(t, err, backends.UnknownUser)
		}
		if n := sambaBinds(s, "Disabled User") - before; n != 0 {
			t.Errorf("%d binds as the disabled account with the preset filter, want 0", n)
		}

		cfg := samba(s)
		cfg.UserFilter = "(&(objectCategory=person)(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username})))"
		l, _ = provision(t, cfg)
		_, err := login(t, l, sambatest.Disabled, sambatest.DisabledPassword)
		wantSubCode(t, err, backends.AccountDisabled, "533")
		if n := sambaBinds(s, "Disabled User") - before; n != 1 {
			t.Errorf("Samba's log shows %d binds as the disabled account, want 1 (the log no longer counts binds?)", n)
		}

		cfg = samba(s)
		cfg.BindDN, cfg.BindPassword = "", ""
		cfg.UserFilter = ""
		cfg.BindDNTemplate = "CN={username}," + sambatest.UsersDN
		l, _ = provision(t, cfg)
		_, err = login(t, l, "Disabled User", sambatest.DisabledPassword)
		wantSubCode(t, err, backends.AccountDisabled, "533")
	})

	t.Run("a wrong password with two servers is one bad password on the directory", func(t *testing.T) {
		// Calibration: two wrong binds made by hand count twice.
		before := s.BadPwdCount(t, sambatest.JDoeDN)
		for range 2 {
			c := s.Dial(t, s.LDAPSURL)
			if err := c.Bind(sambatest.JDoeUPN, "Wrong-Passw0rd"); err == nil {
				t.Fatal("wrong password accepted")
			}
			c.Close()
		}
		if got := s.BadPwdCount(t, sambatest.JDoeDN); got != before+2 {
			t.Fatalf("badPwdCount %d after two wrong binds, want %d: cannot count binds", got, before+2)
		}

		for _, tc := range []struct {
			name    string
			servers []string
			ok      string // the server that answers a good login
		}{
			{"ldaps twice", []string{s.LDAPSURL, s.LDAPSURL}, s.LDAPSURL},
			{"ldaps then ldap+StartTLS", []string{s.LDAPSURL, s.LDAPURL}, s.LDAPSURL},
			{"ldap+StartTLS then ldaps", []string{s.LDAPURL, s.LDAPSURL}, s.LDAPURL},
			{"dead server, then ldaps twice", []string{"ldaps://" + closedPort(t), s.LDAPSURL, s.LDAPSURL}, s.LDAPSURL},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cfg := samba(s, tc.servers...)
				cfg.StartTLS = true
				l, logs := provision(t, cfg)
				for _, typed := range []string{sambatest.JDoe, sambatest.Domain + `\` + sambatest.JDoe, sambatest.JDoeUPN} {
					before := s.BadPwdCount(t, sambatest.JDoeDN)
					_, err := login(t, l, typed, "Wrong-Passw0rd-2")
					if got := s.BadPwdCount(t, sambatest.JDoeDN); got != before+1 {
						t.Errorf("%s: badPwdCount went from %d to %d, want exactly one more", typed, before, got)
					}
					wantSubCode(t, err, backends.InvalidCredentials, "52e")
					noSecret(t, logs, err, "Wrong-Passw0rd-2")
				}
				// The same configuration logs jdoe in (and the good bind resets the count).
				id, err := login(t, l, sambatest.JDoe, sambatest.JDoePassword)
				if err != nil {
					t.Fatal(err)
				}
				if id.Server != tc.ok {
					t.Errorf("answered by %q", id.Server)
				}
				if got := s.BadPwdCount(t, sambatest.JDoeDN); got != 0 {
					t.Errorf("badPwdCount %d after a good login, want 0", got)
				}
			})
		}
	})

	t.Run("StartTLS on ldap://", func(t *testing.T) {
		cfg := samba(s, s.LDAPURL)
		cfg.StartTLS = true
		l, _ := provision(t, cfg)
		id, err := login(t, l, sambatest.JDoeUPN, sambatest.JDoePassword)
		if err != nil {
			t.Fatal(err)
		}
		if id.Server != s.LDAPURL || id.Username != sambatest.JDoe {
			t.Errorf("identity %+v", id)
		}
	})

	t.Run("a wrong service password is unavailable, never invalid_credentials", func(t *testing.T) {
		const wrong = "Not-the-Svc-Passw0rd"
		cfg := samba(s, s.LDAPSURL, s.LDAPSURL)
		cfg.BindPassword = wrong
		cfg.probeAfter = 1 // the background probe runs at once
		l, logs := provision(t, cfg)
		jdoeBefore := s.BadPwdCount(t, sambatest.JDoeDN)
		for _, typed := range []string{sambatest.JDoe, sambatest.JDoeUPN} {
			_, err := login(t, l, typed, sambatest.JDoePassword)
			wantClass(t, err, backends.Unavailable)
			noSecret(t, logs, err, wrong)
			noSecret(t, logs, err, sambatest.JDoePassword)
		}
		// The service bind failed before any user bind: jdoe's password was never
		// tried, so nothing counts against jdoe's lockout threshold.
		if got := s.BadPwdCount(t, sambatest.JDoeDN); got != jdoeBefore {
			t.Errorf("jdoe's badPwdCount went from %d to %d: the user was bound", jdoeBefore, got)
		}
		if n := s.BadPwdCount(t, sambatest.ServiceDN); n < 1 {
			t.Errorf("the service account's badPwdCount is %d: Samba never saw the wrong service password", n)
		}
		waitFor(t, func() bool { return logs.FilterMessage("LDAP server check failed").Len() > 0 })
		e := logs.FilterMessage("LDAP server check failed").All()[0]
		if e.Level.String() != "warn" || e.ContextMap()["server"] != s.LDAPSURL ||
			!strings.Contains(fmtAny(e.ContextMap()["reason"]), "service account") {
			t.Errorf("probe log = %v %v", e.Level, e.ContextMap())
		}
		noSecret(t, logs, nil, wrong)
	})

	if t.Failed() {
		t.Logf("Samba's log:\n%s", s.LogTail(60))
	}
}
