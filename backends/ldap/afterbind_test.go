package ldap

import (
	"strings"
	"testing"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/fakeldap"
)

// A group whose first RDN is not cn: its name needs a base-object read.
const helpdeskOU = "ou=helpdesk,ou=groups,dc=example,dc=org"

// afterBindDirectory answers like a small directory (the service account and
// jdoe/s3cret bind; jdoe's entry, the group search and the group read all
// answer), except that every request breaks reports true for is answered
// with a TCP reset.
func afterBindDirectory(breaks func(fakeldap.Request) bool) fakeldap.Handler {
	return func(r fakeldap.Request) fakeldap.Response {
		if breaks != nil && breaks(r) {
			return fakeldap.Response{Action: fakeldap.Reset}
		}
		switch r.Op {
		case "bind":
			if (r.DN == "cn=svc,dc=example,dc=org" && r.Password == "svcpw") || (r.DN == jdoeDN && r.Password == "s3cret") {
				return fakeldap.Response{}
			}
			return fakeldap.Response{Code: 49}
		case "search":
			switch {
			case strings.EqualFold(r.BaseDN, helpdeskOU):
				return fakeldap.Response{Entries: []fakeldap.Entry{{DN: helpdeskOU, Attrs: map[string][]string{"cn": {"Helpdesk"}}}}}
			case strings.Contains(r.Filter, "member="):
				return fakeldap.Response{Entries: []fakeldap.Entry{{DN: "cn=helpdesk-users,ou=groups,dc=example,dc=org",
					Attrs: map[string][]string{"cn": {"helpdesk-users"}}}}}
			case strings.EqualFold(r.BaseDN, jdoeDN) || strings.Contains(r.Filter, "(uid=jdoe)"):
				return fakeldap.Response{Entries: []fakeldap.Entry{{DN: jdoeDN, Attrs: map[string][]string{
					"uid": {"jdoe"}, "cn": {"Jane Doe"}, "mail": {"jane@example.org"}, "memberOf": {helpdeskOU},
				}}}}
			}
			return fakeldap.Response{}
		}
		return fakeldap.Default(r)
	}
}

// Once the user's bind succeeded, a broken connection during the rest of the
// login (the group lookup, or the entry read of direct-bind mode) answers
// unavailable and never moves to the next server, which would bind as the
// user a second time (AD counts every bind against its lockout threshold).
func TestTransportErrorAfterTheUserBindNeverFailsOver(t *testing.T) {
	for _, tc := range []struct {
		name      string
		configure func(*LDAP)
		breaks    func(fakeldap.Request) bool
	}{
		{
			name:      "group search",
			configure: func(l *LDAP) { l.Groups = []GroupLookup{{Method: GroupsSearch, Filter: "(member={dn})"}} },
			breaks:    func(r fakeldap.Request) bool { return r.Op == "search" && strings.Contains(r.Filter, "member=") },
		},
		{
			name:      "memberOf group name read",
			configure: func(l *LDAP) { l.Groups = []GroupLookup{{Method: GroupsMemberOf}} },
			breaks:    func(r fakeldap.Request) bool { return r.Op == "search" && strings.EqualFold(r.BaseDN, helpdeskOU) },
		},
		{
			name: "bind_dn_template entry read",
			configure: func(l *LDAP) {
				l.BindDN, l.BindPassword = "", ""
				l.BindDNTemplate = "uid={username},ou=people,dc=example,dc=org"
			},
			breaks: func(r fakeldap.Request) bool { return r.Op == "search" && strings.EqualFold(r.BaseDN, jdoeDN) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			// The control: the same configuration logs in against a healthy directory.
			good := fakeldap.Start(t, afterBindDirectory(nil))
			cfg := plain(good.URL)
			tc.configure(cfg)
			l, _ := provision(t, cfg)
			id, err := login(t, l, "jdoe", "s3cret")
			if err != nil || len(id.Groups) == 0 {
				t.Fatalf("control login: identity %+v, err %v", id, err)
			}

			first := fakeldap.Start(t, afterBindDirectory(tc.breaks))
			second := fakeldap.Start(t, afterBindDirectory(nil))
			cfg = plain(first.URL, second.URL)
			tc.configure(cfg)
			l, _ = provision(t, cfg)
			_, err = login(t, l, "jdoe", "s3cret")
			if got := backends.ClassOf(err); got != backends.Unavailable {
				t.Errorf("class %s, want unavailable (err: %v)", got, err)
			}
			broken := 0
			for _, r := range first.Requests() {
				if tc.breaks(r) {
					broken++
				}
			}
			if broken == 0 {
				t.Fatal("the first server was never asked the request that breaks: the test proves nothing")
			}
			if n := first.BindsFor(jdoeDN); n != 1 {
				t.Errorf("first server: %d user binds, want 1", n)
			}
			if n := second.BindsFor(jdoeDN); n != 0 {
				t.Errorf("second server: %d user binds after the first one's bind succeeded, want 0", n)
			}
			if n := second.Conns.Load(); n != 0 {
				t.Errorf("second server: %d connections, want none", n)
			}
		})
	}
}
