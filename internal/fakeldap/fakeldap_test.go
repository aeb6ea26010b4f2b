package fakeldap_test

import (
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/kayako-loginshare/caddy-loginshare/internal/fakeldap"
)

func TestSpeaksEnoughLDAPForGoLDAP(t *testing.T) {
	s := fakeldap.Start(t, func(r fakeldap.Request) fakeldap.Response {
		switch r.Op {
		case "bind":
			if r.Password == "pw" {
				return fakeldap.Response{}
			}
			return fakeldap.ADInvalid("775")
		case "search":
			return fakeldap.Response{
				Entries:    []fakeldap.Entry{{DN: "uid=a,dc=x", Attrs: map[string][]string{"mail": {"a@x", "b@x"}}}},
				References: []string{"ldap://elsewhere/dc=x"},
			}
		}
		return fakeldap.Default(r)
	})
	c, err := goldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetTimeout(5 * time.Second)
	if err := c.Bind("uid=a,dc=x", "pw"); err != nil {
		t.Fatal(err)
	}
	err = c.Bind("uid=a,dc=x", "wrong")
	if !goldap.IsErrorWithCode(err, 49) || err.(*goldap.Error).Err.Error() == "" {
		t.Fatalf("bind: %v", err)
	}
	res, err := c.Search(goldap.NewSearchRequest("dc=x", 2, 0, 2, 0, false, "(uid=a)", []string{"mail"}, nil))
	if err != nil || len(res.Entries) != 1 || len(res.Entries[0].GetAttributeValues("mail")) != 2 || len(res.Referrals) != 1 {
		t.Fatalf("search: %+v %v", res, err)
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[2].Filter != "(uid=a)" || reqs[2].SizeLimit != 2 || reqs[1].Password != "wrong" {
		t.Fatalf("requests: %+v", reqs)
	}
	if s.Binds.Load() != 2 || s.Searches.Load() != 1 {
		t.Fatalf("counters: %d binds, %d searches", s.Binds.Load(), s.Searches.Load())
	}
	if err := c.StartTLS(nil); err == nil {
		t.Fatal("StartTLS accepted by default")
	}
}
