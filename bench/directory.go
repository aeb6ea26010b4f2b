package main

import (
	"fmt"
	"net"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

// The benchmark accounts: user0000 … user0999 (as many as -users), all
// with one password, in groups bench-00 … bench-09 (a tenth of them each),
// which are all members of bench-all, so `groups nested` has a level to
// walk that memberOf does not show.
const (
	benchPassword = "bench-Passw0rd"
	groupCount    = 10
	allGroup      = "bench-all"
)

func userName(i int) string { return fmt.Sprintf("user%04d", i) }
func userDN(i int) string   { return "uid=" + userName(i) + "," + slapdtest.PeopleDN }
func groupName(g int) string {
	return fmt.Sprintf("bench-%02d", g)
}
func groupDN(name string) string { return "cn=" + name + "," + slapdtest.GroupsDN }

// startDirectory starts the private slapd (slapdtest's fixture, ldaps://
// with its own CA, RSA-2048 keys when rsaKeys) and adds the benchmark's
// people and groups online, so the memberof overlay maintains memberOf.
func startDirectory(users int, rsaKeys bool) (*slapdtest.Server, error) {
	s, err := slapdtest.Launch(slapdtest.Options{RSAKeys: rsaKeys})
	if err != nil {
		return nil, err
	}
	if err := populate(s, users); err != nil {
		s.Close()
		return nil, fmt.Errorf("adding the benchmark accounts: %w", err)
	}
	return s, nil
}

func populate(s *slapdtest.Server, users int) error {
	dial := func() (*goldap.Conn, error) {
		c, err := goldap.DialURL(s.URL, goldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
		if err != nil {
			return nil, err
		}
		c.SetTimeout(30 * time.Second)
		if err := c.Bind(slapdtest.AdminDN, slapdtest.AdminPassword); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	hash := slapdtest.SSHA(benchPassword)
	const workers = 4
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial()
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for i := w; i < users; i += workers {
				req := goldap.NewAddRequest(userDN(i), nil)
				req.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"})
				req.Attribute("uid", []string{userName(i)})
				req.Attribute("cn", []string{fmt.Sprintf("Bench User %d", i)})
				req.Attribute("givenName", []string{"Bench"})
				req.Attribute("sn", []string{fmt.Sprintf("User %d", i)})
				req.Attribute("mail", []string{userName(i) + "@example.org"})
				req.Attribute("telephoneNumber", []string{fmt.Sprintf("+1 555 %04d", i)})
				req.Attribute("userPassword", []string{hash})
				if err := c.Add(req); err != nil {
					errs <- fmt.Errorf("add %s: %w", userDN(i), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	c, err := dial()
	if err != nil {
		return err
	}
	defer c.Close()
	add := func(name string, members []string) error {
		req := goldap.NewAddRequest(groupDN(name), nil)
		req.Attribute("objectClass", []string{"top", "groupOfNames"})
		req.Attribute("cn", []string{name})
		req.Attribute("member", members)
		return c.Add(req)
	}
	var groups []string
	for g := 0; g < groupCount; g++ {
		var members []string
		for i := g; i < users; i += groupCount {
			members = append(members, userDN(i))
		}
		if len(members) == 0 {
			continue
		}
		if err := add(groupName(g), members); err != nil {
			return fmt.Errorf("add group %s: %w", groupName(g), err)
		}
		groups = append(groups, groupDN(groupName(g)))
	}
	if err := add(allGroup, groups); err != nil {
		return fmt.Errorf("add group %s: %w", allGroup, err)
	}
	return nil
}
