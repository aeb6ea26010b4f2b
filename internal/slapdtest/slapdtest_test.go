package slapdtest_test

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"fmt"
	"strings"
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

func TestRequireClientCert(t *testing.T) {
	s := slapdtest.StartWith(t, slapdtest.Options{RequireClientCert: true})
	if s.ClientCertFile == "" || s.ClientKeyFile == "" {
		t.Fatal("no client certificate files")
	}
	// The fixture loaded (over plain ldap://) and Admin still binds there.
	res, err := s.Admin(t).Search(goldap.NewSearchRequest(slapdtest.BaseDN, goldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(uid=jdoe)", []string{"memberOf"}, nil))
	if err != nil || len(res.Entries) != 1 || len(res.Entries[0].GetAttributeValues("memberOf")) != 2 {
		t.Fatalf("jdoe over plain ldap://: %v %+v", err, res)
	}

	// With the client certificate: ldaps:// and StartTLS.
	c, err := goldap.DialURL(s.LDAPSURL, goldap.DialWithTLSConfig(s.TLSConfig()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(slapdtest.JDoeDN, slapdtest.Password); err != nil {
		t.Fatalf("ldaps:// with a client certificate: %v", err)
	}
	c2, err := goldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.StartTLS(s.TLSConfig()); err != nil {
		t.Fatalf("StartTLS with a client certificate: %v", err)
	}
	if err := c2.Bind(slapdtest.JDoeDN, slapdtest.Password); err != nil {
		t.Fatal(err)
	}

	// Without: with TLS 1.2 the handshake fails; with TLS 1.3 the client's
	// handshake completes and slapd drops the connection, so the first
	// request fails without an LDAP result.
	noCert := s.TLSConfig()
	noCert.Certificates = nil
	tls12 := noCert.Clone()
	tls12.MaxVersion = tls.VersionTLS12
	if c, err := goldap.DialURL(s.LDAPSURL, goldap.DialWithTLSConfig(tls12)); err == nil {
		c.Close()
		t.Fatal("ldaps:// TLS 1.2 without a client certificate: handshake succeeded")
	}
	refused := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s without a client certificate: bind succeeded", what)
		}
		if goldap.IsErrorAnyOf(err, goldap.LDAPResultInvalidCredentials, goldap.LDAPResultSuccess) {
			t.Fatalf("%s without a client certificate: %v", what, err)
		}
	}
	if c, err := goldap.DialURL(s.LDAPSURL, goldap.DialWithTLSConfig(noCert)); err == nil {
		refused("ldaps://", c.Bind(slapdtest.JDoeDN, slapdtest.Password))
		c.Close()
	}
	c4, err := goldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	if err := c4.StartTLS(noCert); err == nil {
		refused("StartTLS", c4.Bind(slapdtest.JDoeDN, slapdtest.Password))
	}
}

func TestRSAKeys(t *testing.T) {
	for _, tc := range []struct {
		rsaKeys bool
		want    string
	}{{false, "ECDSA P-256"}, {true, "RSA-2048"}} {
		s := slapdtest.StartWith(t, slapdtest.Options{RSAKeys: tc.rsaKeys})
		conn, err := tls.Dial("tcp", strings.TrimPrefix(s.LDAPSURL, "ldaps://"), s.TLSConfig())
		if err != nil {
			t.Fatalf("%s: %v", tc.want, err)
		}
		chain := conn.ConnectionState().PeerCertificates
		conn.Close()
		got := ""
		switch k := chain[0].PublicKey.(type) {
		case *rsa.PublicKey:
			got = fmt.Sprintf("RSA-%d", k.N.BitLen())
		case *ecdsa.PublicKey:
			got = "ECDSA " + k.Curve.Params().Name
		}
		if got != tc.want {
			t.Errorf("RSAKeys %v: server key %s, want %s", tc.rsaKeys, got, tc.want)
		}
		c, err := goldap.DialURL(s.LDAPSURL, goldap.DialWithTLSConfig(s.TLSConfig()))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Bind(slapdtest.JDoeDN, slapdtest.Password); err != nil {
			t.Errorf("%s: bind over ldaps://: %v", tc.want, err)
		}
		c.Close()
	}
}
