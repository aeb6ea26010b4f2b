package caddymodule

// Issue 7, point 8: a givenName or cn made only of control characters
// refused the login instead of falling back to the next name source. The
// fallbacks (design.md): first name → the full name's first word → the
// username; full name → first + last → the username. A name with nothing
// but control characters (C0, DEL, C1) is no name. Through a real Caddy and
// the real slapd, with the entries added over the admin connection.

import (
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

// atkAddPerson adds uid=<uid> (password slapdtest.Password) with the given
// name attributes (empty: absent) to helpdesk-users and helpdesk-staff.
func atkAddPerson(t *testing.T, admin *goldap.Conn, uid, given, cn, sn string) {
	t.Helper()
	dn := "uid=" + uid + "," + slapdtest.PeopleDN
	req := goldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"})
	req.Attribute("uid", []string{uid})
	req.Attribute("cn", []string{cn})
	req.Attribute("sn", []string{sn})
	if given != "" {
		req.Attribute("givenName", []string{given})
	}
	req.Attribute("mail", []string{uid + "@example.org"})
	req.Attribute("userPassword", []string{slapdtest.Password})
	if err := admin.Add(req); err != nil {
		t.Fatalf("add %s: %v", dn, err)
	}
	for _, g := range []string{slapdtest.GroupUsersDN, slapdtest.GroupStaffDN} {
		m := goldap.NewModifyRequest(g, nil)
		m.Add("member", []string{dn})
		if err := admin.Modify(m); err != nil {
			t.Fatalf("add %s to %s: %v", dn, g, err)
		}
	}
	// The directory really holds the control characters (no test otherwise).
	res, err := admin.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"givenName", "cn"}, nil))
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("cn") != cn || res.Entries[0].GetAttributeValue("givenName") != given {
		t.Fatalf("%s does not hold the names as written: %v %+v", dn, err, res)
	}
}

func TestControlCharacterNamesFallBackToTheNextSource(t *testing.T) {
	dir := slapdtest.Start(t)
	admin := dir.Admin(t)
	const (
		c0   = "\x01\x02\x1b"     // C0 controls (XML 1.0 cannot carry them)
		c1   = "\x7f\u0080\u009f" // DEL and C1 controls (XML carries them; still no name)
		bell = "\a\b"
	)
	people := []struct {
		uid, given, cn, sn string
		wantFirst          string // staff <firstname>
		wantFull           string // user <fullname>
	}{
		{"ctrl-given-c0", c0, "Carla Ctrl", "Ctrl", "Carla", "Carla Ctrl"},
		{"ctrl-given-c1", c1, "Cleo Ctrl", "Ctrl", "Cleo", "Cleo Ctrl"},
		{"ctrl-cn-c0", "Carl", c0, "Ctrl", "Carl", "Carl Ctrl"},
		{"ctrl-cn-c1", "Cora", c1, "Ctrl", "Cora", "Cora Ctrl"},
		{"ctrl-all", bell, c0, c1, "ctrl-all", "ctrl-all"},
		{"ctrl-no-given", "", c1, "Solo", "ctrl-no-given", "Solo"},
	}
	for _, p := range people {
		atkAddPerson(t, admin, p.uid, p.given, p.cn, p.sn)
	}
	s := ldapSite(t, dir, "", "")
	for _, p := range people {
		t.Run(p.uid, func(t *testing.T) {
			r := s.post("/loginshare/staff", form("username", p.uid, "password", slapdtest.Password, "interface", "staff"))
			switch {
			case r.Doc.Result != "1" || r.Doc.Staff == nil || r.Doc.Staff.FirstName == nil:
				t.Errorf("staff login refused (givenName %+q, cn %+q): %s", p.given, p.cn, r.Body)
			case *r.Doc.Staff.FirstName != p.wantFirst:
				t.Errorf("staff firstname %+q, want %+q (givenName %+q, cn %+q)", *r.Doc.Staff.FirstName, p.wantFirst, p.given, p.cn)
			}
			r = s.post("/loginshare/user", form("username", p.uid, "password", slapdtest.Password))
			switch {
			case r.Doc.Result != "1" || r.Doc.User == nil:
				t.Errorf("user login refused (givenName %+q, cn %+q, sn %+q): %s", p.given, p.cn, p.sn, r.Body)
			case r.Doc.User.FullName != p.wantFull:
				t.Errorf("user fullname %+q, want %+q (givenName %+q, cn %+q, sn %+q)", r.Doc.User.FullName, p.wantFull, p.given, p.cn, p.sn)
			}
		})
	}
	// Sanity: the fixture's ordinary person is unaffected.
	if r := s.post("/loginshare/staff", form("username", "jdoe", "password", slapdtest.Password, "interface", "staff")); r.Doc.Result != "1" ||
		r.Doc.Staff == nil || *r.Doc.Staff.FirstName != slapdtest.JDoeGivenName {
		t.Errorf("jdoe: %s", r.Body)
	}
}
