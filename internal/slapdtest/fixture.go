package slapdtest

import (
	"fmt"
	"net"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

type entry struct {
	dn    string
	attrs [][2]any // name, string or []string
}

func person(uid, cn, given, sn string, mails []string, extra ...[2]any) entry {
	attrs := [][2]any{
		{"objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"}},
		{"uid", uid}, {"cn", cn}, {"sn", sn}, {"userPassword", SSHA(Password)},
	}
	if given != "" {
		attrs = append(attrs, [2]any{"givenName", given})
	}
	if len(mails) > 0 {
		attrs = append(attrs, [2]any{"mail", mails})
	}
	return entry{dn: "uid=" + goldap.EscapeDN(uid) + "," + PeopleDN, attrs: append(attrs, extra...)}
}

func group(name string, members ...string) entry {
	return entry{dn: "cn=" + name + "," + GroupsDN, attrs: [][2]any{
		{"objectClass", []string{"top", "groupOfNames"}}, {"cn", name}, {"member", members},
	}}
}

// fixture is the directory, in load order. Groups come after their members
// where possible; the memberof overlay maintains memberOf on these online
// adds (it does not run during slapadd).
func fixture() []entry {
	es := []entry{
		{dn: BaseDN, attrs: [][2]any{{"objectClass", []string{"top", "dcObject", "organization"}}, {"o", "Example Org"}, {"dc", "example"}}},
		{dn: PeopleDN, attrs: [][2]any{{"objectClass", []string{"top", "organizationalUnit"}}, {"ou", "people"}}},
		{dn: GroupsDN, attrs: [][2]any{{"objectClass", []string{"top", "organizationalUnit"}}, {"ou", "groups"}}},
		{dn: ServiceDN, attrs: [][2]any{{"objectClass", []string{"top", "organizationalRole", "simpleSecurityObject"}},
			{"cn", "svc"}, {"userPassword", SSHA(ServicePassword)}}},
		person(JDoe, JDoeCN, JDoeGivenName, JDoeSN, []string{JDoeMail, JDoeMail2},
			[2]any{"title", JDoeTitle}, [2]any{"telephoneNumber", JDoePhone}, [2]any{"mobile", JDoeMobile}, [2]any{"o", JDoeOrg}),
		person(Admin1, "Ada Admin", "Ada", "Admin", []string{Admin1Mail}),
		person(NoGiven, NoGivenCN, "", "Nogiven", []string{"sam@example.org"}),
		person(NoMail, "Nora Nomail", "Nora", "Nomail", nil),
		person(Twin, "Twin One", "Twin", "One", []string{"twin1@example.org"}),
		{dn: "cn=Twin Two," + PeopleDN, attrs: [][2]any{
			{"objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"}},
			{"uid", Twin}, {"cn", "Twin Two"}, {"sn", "Two"}, {"mail", "twin2@example.org"}, {"userPassword", SSHA(Password)}}},
		person(Nested, "Nick Nested", "Nick", "Nested", []string{"nested@example.org"}),
		person(Deep, "Dee Deep", "Dee", "Deep", []string{"deep@example.org"}),
		person(Tom, TomCN, "Tom", "Jerry", []string{"tom@example.org"}),
		person(Zoe, ZoeCN, "Zoë", "Ångström", []string{"zoe@example.org"}),
		person(Emile, EmileCN, "Émile", "Zola", []string{"emile@example.org"}),
		group(GroupUsers, JDoeDN, "uid="+NoMail+","+PeopleDN, "uid="+Tom+","+PeopleDN, "uid="+Zoe+","+PeopleDN),
		group(GroupStaff, JDoeDN, "uid="+NoGiven+","+PeopleDN),
		group(GroupAdmins, Admin1DN),
		group("inner", NestedDN),
		group("outer", "cn=inner,"+GroupsDN),
		group("top", "cn=outer,"+GroupsDN),
		group("cycle-a", NestedDN),
		group("cycle-b", "cn=cycle-a,"+GroupsDN),
		{dn: ReferralDN, attrs: [][2]any{{"objectClass", []string{"referral", "extensibleObject"}}, {"ou", "elsewhere"}, {"ref", ReferralURL}}},
	}
	es = append(es, group("deep-1", "uid="+Deep+","+PeopleDN))
	for i := 2; i <= DeepChain; i++ {
		es = append(es, group(fmt.Sprintf("deep-%d", i), fmt.Sprintf("cn=deep-%d,%s", i-1, GroupsDN)))
	}
	return es
}

// load adds the fixture online, then closes the cycle-a ⇄ cycle-b loop.
func (s *Server) load() error {
	c, err := goldap.DialURL(s.URL, goldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetTimeout(10 * time.Second)
	if err := c.Bind(AdminDN, AdminPassword); err != nil {
		return err
	}
	for _, e := range fixture() {
		req := goldap.NewAddRequest(e.dn, nil)
		for _, a := range e.attrs {
			switch v := a[1].(type) {
			case string:
				req.Attribute(a[0].(string), []string{v})
			case []string:
				req.Attribute(a[0].(string), v)
			}
		}
		if e.dn == ReferralDN {
			req.Controls = append(req.Controls, goldap.NewControlManageDsaIT(true))
		}
		if err := c.Add(req); err != nil {
			return fmt.Errorf("add %s: %w", e.dn, err)
		}
	}
	mod := goldap.NewModifyRequest("cn=cycle-a,"+GroupsDN, nil)
	mod.Add("member", []string{"cn=cycle-b," + GroupsDN})
	if err := c.Modify(mod); err != nil {
		return fmt.Errorf("closing the group cycle: %w", err)
	}
	return nil
}
