package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"golang.org/x/crypto/bcrypt"

	ldapbackend "github.com/kayako-loginshare/caddy-loginshare/backends/ldap"
	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

// The raw measurements: the directory (or hash) work of one login done
// directly, in this process, by conc goroutines, with nothing else running.
// They are the ideal the module is compared with.
const (
	rawSearchBind = "raw"    // service search + user bind
	rawGroups     = "raw3"   // + the group search of `groups search`
	rawNested     = "rawN"   // + the group walk of `groups nested` on OpenLDAP
	rawBcrypt     = "bcrypt" // the static backend's hash comparison
)

var rawLabels = map[string]string{
	rawSearchBind: "raw go-ldap: service search + user bind, persistent connections",
	rawGroups:     "raw go-ldap: + group search (limit3's raw)",
	rawNested:     "raw go-ldap: + nested group walk",
	rawBcrypt:     "raw bcrypt comparison (the static backend's work)",
}

// userAttrs are what the openldap preset reads for a user login.
var userAttrs = []string{"uid", "givenName", "sn", "cn", "mail", "telephoneNumber", "mobile", "title", "o", "memberOf"}

// rawLDAP does one login's LDAP work per iteration, on two persistent
// ldaps:// connections per goroutine (one service-bound for searches, one
// for user binds), rotating over the accounts.
func rawLDAP(ctx context.Context, dir *slapdtest.Server, kind string, conc, users int, d time.Duration) (sample, error) {
	dial := func() (*goldap.Conn, error) {
		c, err := goldap.DialURL(dir.LDAPSURL, goldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}),
			goldap.DialWithTLSConfig(dir.TLSConfig()))
		if err != nil {
			return nil, err
		}
		c.SetTimeout(10 * time.Second)
		return c, nil
	}
	type pair struct{ search, bind *goldap.Conn }
	pairs := make([]pair, conc)
	defer func() {
		for _, p := range pairs {
			if p.search != nil {
				p.search.Close()
			}
			if p.bind != nil {
				p.bind.Close()
			}
		}
	}()
	for i := range pairs { // connected before the clock starts, as the module's pools are
		var err error
		if pairs[i].search, err = dial(); err != nil {
			return sample{}, err
		}
		if err := pairs[i].search.Bind(dir.BindDN, dir.BindPassword); err != nil {
			return sample{}, err
		}
		if pairs[i].bind, err = dial(); err != nil {
			return sample{}, err
		}
	}
	return loop(ctx, conc, d, func(g, i int) error {
		return rawLogin(pairs[g].search, pairs[g].bind, kind, i%users)
	})
}

func rawLogin(search, bind *goldap.Conn, kind string, i int) error {
	filter := strings.ReplaceAll(ldapbackend.FilterOpenLDAP, "{username}", goldap.EscapeFilter(userName(i)))
	res, err := search.Search(goldap.NewSearchRequest(slapdtest.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
		2, 5, false, filter, userAttrs, nil))
	if err != nil {
		return err
	}
	if len(res.Entries) != 1 {
		return fmt.Errorf("%s: %d entries", filter, len(res.Entries))
	}
	e := res.Entries[0]
	if err := bind.Bind(e.DN, benchPassword); err != nil {
		return err
	}
	groupSearch := func(filter string) ([]string, error) {
		res, err := search.Search(goldap.NewSearchRequest(slapdtest.GroupsDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
			0, 5, false, filter, []string{"cn"}, nil))
		if err != nil {
			return nil, err
		}
		dns := make([]string, len(res.Entries))
		for j, ge := range res.Entries {
			dns[j] = ge.DN
		}
		return dns, nil
	}
	switch kind {
	case rawGroups:
		f := strings.NewReplacer("{dn}", goldap.EscapeFilter(e.DN), "{username}", goldap.EscapeFilter(userName(i))).Replace(ldapbackend.GroupFilterOpenLDAP)
		dns, err := groupSearch(f)
		if err != nil {
			return err
		}
		if len(dns) != 1 {
			return fmt.Errorf("%s: %d groups", userName(i), len(dns))
		}
	case rawNested:
		// The walk of `groups nested` without AD's matching rule: the
		// direct groups (memberOf, then member/uniqueMember), then the
		// groups containing those, level by level, each group once.
		seen := map[string]bool{}
		unseen := func(dns []string) (out []string) {
			for _, dn := range dns {
				if k := strings.ToLower(dn); !seen[k] {
					seen[k] = true
					out = append(out, dn)
				}
			}
			return out
		}
		frontier := unseen(e.GetEqualFoldAttributeValues("memberOf"))
		dns, err := groupSearch(memberFilter([]string{e.DN}))
		if err != nil {
			return err
		}
		frontier = append(frontier, unseen(dns)...)
		for depth := 1; depth < 10 && len(frontier) > 0; depth++ {
			if dns, err = groupSearch(memberFilter(frontier)); err != nil {
				return err
			}
			frontier = unseen(dns)
		}
		if len(seen) != 2 {
			return fmt.Errorf("%s: nested walk found %d groups, want 2", userName(i), len(seen))
		}
	}
	return nil
}

// memberFilter finds the groups listing any of dns as a member.
func memberFilter(dns []string) string {
	var b strings.Builder
	b.WriteString("(|")
	for _, dn := range dns {
		esc := goldap.EscapeFilter(dn)
		b.WriteString("(member=" + esc + ")(uniqueMember=" + esc + ")")
	}
	b.WriteString(")")
	return b.String()
}

// rawHash compares the password with the static backend's hash.
func rawHash(ctx context.Context, hash []byte, conc int, d time.Duration) (sample, error) {
	return loop(ctx, conc, d, func(_, _ int) error {
		return bcrypt.CompareHashAndPassword(hash, []byte(benchPassword))
	})
}

// loop runs op on conc goroutines until d has passed and returns the
// operations per second (counted until the last goroutine stops, so an
// operation still running at the deadline is neither lost nor free).
func loop(ctx context.Context, conc int, d time.Duration, op func(g, i int) error) (sample, error) {
	var next, done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := op(g, int(next.Add(1)-1)); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return sample{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return sample{}, err
	}
	if done.Load() == 0 {
		return sample{}, errors.New("no operation finished")
	}
	return sample{rate: float64(done.Load()) / time.Since(start).Seconds()}, nil
}
