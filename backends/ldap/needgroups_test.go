package ldap

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/fakeldap"
)

// TestNoGroupLookupWhenTheMappingCannotUseOne: when the handler says the
// answer cannot depend on groups, the group search is never sent; otherwise
// it is. Both logins in one run, against the same fake directory, counted on
// the wire.
func TestNoGroupLookupWhenTheMappingCannotUseOne(t *testing.T) {
	leakCheck(t)
	srv := fakeldap.Start(t, fakeDirectory)
	l := plain(srv.URL)
	l.Groups = []GroupLookup{{Method: GroupsSearch, Filter: "(member={dn})"}}
	l, _ = provision(t, l)

	groupSearches := func() int {
		n := 0
		for _, r := range srv.Requests() {
			if r.Op == "search" && strings.Contains(r.Filter, "member=") {
				n++
			}
		}
		return n
	}
	ctx := ctxTimeout(t, 10*time.Second)
	c := backends.Credentials{Username: "jdoe", Password: "s3cret"}
	if _, err := l.Authenticate(backends.WithoutGroups(ctx), c); err != nil {
		t.Fatal(err)
	}
	if n := groupSearches(); n != 0 {
		t.Fatalf("%d group searches sent for a login whose mapping needs no group", n)
	}
	if _, err := l.Authenticate(ctx, c); err != nil {
		t.Fatal(err)
	}
	if n := groupSearches(); n != 1 {
		t.Fatalf("%d group searches for a login that needs groups, want 1", n)
	}
}

// TestMemberOfReadOnlyWhenTheMappingCanUseIt: memberOf comes with the user
// search when a group could change the answer, and is not asked for
// otherwise (an AD user's memberOf can be dozens of DNs). Both logins
// still succeed with the same person.
func TestMemberOfReadOnlyWhenTheMappingCanUseIt(t *testing.T) {
	leakCheck(t)
	srv := fakeldap.Start(t, fakeDirectory)
	l := plain(srv.URL)
	l.Groups = []GroupLookup{{Method: GroupsMemberOf}}
	l, _ = provision(t, l)

	asksMemberOf := func() []bool {
		var out []bool
		for _, r := range srv.Requests() {
			if r.Op == "search" && strings.Contains(r.Filter, "jdoe") {
				out = append(out, slices.ContainsFunc(r.Attributes, func(a string) bool { return strings.EqualFold(a, "memberOf") }))
			}
		}
		return out
	}
	ctx := ctxTimeout(t, 10*time.Second)
	c := backends.Credentials{Username: "jdoe", Password: "s3cret"}
	without, err := l.Authenticate(backends.WithoutGroups(ctx), c)
	if err != nil {
		t.Fatal(err)
	}
	with, err := l.Authenticate(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := asksMemberOf(); !slices.Equal(got, []bool{false, true}) {
		t.Errorf("user searches asked for memberOf: %v, want [false true]", got)
	}
	if without.Username != "jdoe" || with.Username != "jdoe" || len(without.Groups) != 0 {
		t.Errorf("identities %+v and %+v", without, with)
	}
}
