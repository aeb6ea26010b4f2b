package ldap

import (
	"context"
	"net"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

// BenchmarkAuthenticate: search + bind through the backend (pools,
// deadlines, identity) against slapd over ldaps://, in parallel. Compare
// with BenchmarkRawGoLDAP from the same run.
func BenchmarkAuthenticate(b *testing.B) {
	s := slapdtest.Start(b)
	cfg := openldap(s)
	cfg.Groups = []GroupLookup{{Method: GroupsMemberOf}} // no extra round trip: same work as the raw benchmark
	l, _ := provision(b, cfg)
	creds := backends.Credentials{Username: slapdtest.JDoe, Password: slapdtest.Password}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := l.Authenticate(ctx, creds)
			cancel()
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}

// BenchmarkRawGoLDAP: the same search + bind with go-ldap on two persistent
// ldaps:// connections per goroutine (service-bound search, user bind).
func BenchmarkRawGoLDAP(b *testing.B) {
	s := slapdtest.Start(b)
	dial := func() *goldap.Conn {
		c, err := goldap.DialURL(s.LDAPSURL, goldap.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}),
			goldap.DialWithTLSConfig(s.TLSConfig()))
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	attrs := []string{"uid", "givenName", "sn", "cn", "mail", "telephoneNumber", "mobile", "title", "o", "memberOf"}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		search, bind := dial(), dial()
		defer search.Close()
		defer bind.Close()
		if err := search.Bind(s.BindDN, s.BindPassword); err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			res, err := search.Search(goldap.NewSearchRequest(s.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 2, 5, false,
				"(&(objectClass=inetOrgPerson)(uid="+goldap.EscapeFilter(slapdtest.JDoe)+"))", attrs, nil))
			if err != nil || len(res.Entries) != 1 {
				b.Error(err)
				return
			}
			if err := bind.Bind(res.Entries[0].DN, slapdtest.Password); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}
