package slapdtest_test

import (
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

func TestFixtureLoadsWithMemberOf(t *testing.T) {
	s := slapdtest.Start(t)
	c, err := goldap.DialURL(s.LDAPSURL, goldap.DialWithTLSConfig(s.TLSConfig()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(slapdtest.ServiceDN, slapdtest.ServicePassword); err != nil {
		t.Fatal(err)
	}
	res, err := c.Search(goldap.NewSearchRequest(slapdtest.BaseDN, goldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(uid=jdoe)", []string{"memberOf", "mail"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 1 || len(res.Entries[0].GetAttributeValues("memberOf")) != 2 {
		t.Fatalf("jdoe: %+v", res.Entries)
	}
	if len(res.Referrals) != 1 {
		t.Errorf("want one continuation reference, got %v", res.Referrals)
	}
	if err := c.Bind(slapdtest.JDoeDN, slapdtest.Password); err != nil {
		t.Fatal(err)
	}
	pid := s.PID()
	s.Restart()
	if s.PID() == pid || s.PID() == 0 {
		t.Fatal("restart did not start a new process")
	}
	c2, err := goldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.StartTLS(s.TLSConfig()); err != nil {
		t.Fatal(err)
	}
	if err := c2.Bind(slapdtest.JDoeDN, slapdtest.Password); err != nil {
		t.Fatal(err)
	}
}
