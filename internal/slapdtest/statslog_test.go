package slapdtest_test

// Options.StatsLog and BindCount, which the issue 7 attack tests
// (caddymodule/attack_test.go) use to count the binds that reached slapd.

import (
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

func TestBindCountCountsEveryBindForTheDN(t *testing.T) {
	s := slapdtest.StartWith(t, slapdtest.Options{StatsLog: true})
	if n := s.BindCount(t, slapdtest.JDoeDN); n != 0 {
		t.Fatalf("%d binds for jdoe before any", n)
	}
	c, err := goldap.DialURL(s.LDAPSURL, goldap.DialWithTLSConfig(s.TLSConfig()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Wrong and right passwords alike, under any spelling of the DN.
	for _, b := range []struct{ dn, pw string }{
		{slapdtest.JDoeDN, "wrong"},
		{"UID=jdoe, OU=People, DC=example, DC=org", "wrong"},
		{slapdtest.JDoeDN, slapdtest.Password},
		{slapdtest.Admin1DN, "wrong"},
		{slapdtest.ServiceDN, slapdtest.ServicePassword},
	} {
		_ = c.Bind(b.dn, b.pw)
	}
	if n := s.BindCount(t, slapdtest.JDoeDN); n != 3 {
		t.Errorf("BindCount(jdoe) = %d, want 3", n)
	}
	if n := s.BindCount(t, slapdtest.Admin1DN); n != 1 {
		t.Errorf("BindCount(admin1) = %d, want 1", n)
	}
	if n := s.BindCount(t, "uid=nobody,"+slapdtest.PeopleDN); n != 0 {
		t.Errorf("BindCount(nobody) = %d, want 0", n)
	}
	// A restart appends to the same log.
	s.Restart()
	c2, err := goldap.DialURL(s.LDAPSURL, goldap.DialWithTLSConfig(s.TLSConfig()))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.Bind(slapdtest.JDoeDN, "wrong")
	if n := s.BindCount(t, slapdtest.JDoeDN); n != 4 {
		t.Errorf("after a restart BindCount(jdoe) = %d, want 4", n)
	}
}
