package caddymodule

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPerEndpointChainsNeverAskTheOtherDirectory: customers come from one
// backend, staff from another, and neither endpoint calls the other's.
func TestPerEndpointChainsNeverAskTheOtherDirectory(t *testing.T) {
	s := startCaddy(t, "", `loginshare {
	failure_delay 1ms
	failure_jitter 1ms
	throttle off
	staff_teams {
		helpdesk-staff Support
	}
	user_backend testfake {
		name chain-shop
		user customer s3cret
	}
	staff_backend testfake {
		name chain-ad
		user agent s3cret
	}
}`)
	shop, ad := fakeCount("chain-shop"), fakeCount("chain-ad")
	if r := s.post("/loginshare/user", form("username", "customer", "password", "s3cret")); r.Doc.Result != "1" {
		t.Fatalf("customer refused on the user endpoint: %s", r.Body)
	}
	mustFail(t, s.post("/loginshare/user", form("username", "agent", "password", "s3cret")), 200, DefaultMessageInvalid)
	if got := fakeCount("chain-ad") - ad; got != 0 {
		t.Errorf("the user endpoint asked the staff chain %d times", got)
	}
	if got := fakeCount("chain-shop") - shop; got != 2 {
		t.Errorf("the user chain was asked %d times, want 2", got)
	}
	shop = fakeCount("chain-shop")
	if r := s.post("/loginshare/staff", form("username", "agent", "password", "s3cret", "interface", "staff")); r.Doc.Result != "1" {
		t.Fatalf("agent refused on the staff endpoint: %s", r.Body)
	}
	mustFail(t, s.post("/loginshare/staff", form("username", "customer", "password", "s3cret", "interface", "staff")), 200, DefaultMessageInvalid)
	if got := fakeCount("chain-shop") - shop; got != 0 {
		t.Errorf("the staff endpoint asked the user chain %d times", got)
	}
}

// TestSharedChainServesAnEndpointWithoutItsOwn: `backend` blocks serve the
// endpoint that has no chain of its own.
func TestSharedChainServesAnEndpointWithoutItsOwn(t *testing.T) {
	s := startCaddy(t, "", `loginshare {
	failure_delay 1ms
	failure_jitter 1ms
	throttle off
	staff_teams {
		helpdesk-staff Support
	}
	backend testfake {
		name chain-shared
		user agent s3cret
	}
	user_backend testfake {
		name chain-own
		user customer s3cret
	}
}`)
	if r := s.post("/loginshare/staff", form("username", "agent", "password", "s3cret", "interface", "staff")); r.Doc.Result != "1" {
		t.Fatalf("staff endpoint did not use the backend blocks: %s", r.Body)
	}
	mustFail(t, s.post("/loginshare/user", form("username", "agent", "password", "s3cret")), 200, DefaultMessageInvalid)
	if r := s.post("/loginshare/user", form("username", "customer", "password", "s3cret")); r.Doc.Result != "1" {
		t.Fatalf("user endpoint did not use its own chain: %s", r.Body)
	}
}

func TestChainProvisionRules(t *testing.T) {
	tests := []struct {
		name, body, wantErr string
	}{
		{"no chain for an open user endpoint", `loginshare {
	staff_backend testfake {
		name x
	}
	staff_teams {
		a b
	}
}`, "no backend for the user endpoint"},
		{"no chain for a staff endpoint with teams", `loginshare {
	user_backend testfake {
		name x
	}
	staff_teams {
		a b
	}
}`, "no backend for the staff endpoint"},
		{"two backends of one name", `loginshare {
	backend static {
		name same
		user a HASH
	}
	backend static {
		name same
		user b HASH
	}
}`, `backend name "same" is used twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := loadAgain(testGlobals(t.TempDir()+"/log", "") + fmt.Sprintf("http://127.0.0.1:%d {\n%s\n}\n", freePort(t), strings.ReplaceAll(tt.body, "HASH", hashOf(t, "x"))))
			if err == nil {
				_ = stopCaddy()
				t.Fatalf("loaded; want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
	// A staff endpoint that refuses everyone needs no chain.
	s := startCaddy(t, "", `loginshare {
	failure_delay 1ms
	failure_jitter 1ms
	user_backend testfake {
		name chain-only-user
		user customer s3cret
	}
}`)
	mustFail(t, s.post("/loginshare/staff", form("username", "customer", "password", "s3cret", "interface", "staff")), 200, DefaultMessageInvalid)
}

// TestGroupsAskedOnlyWhereTheMappingUsesThem: with user_groups omitted or
// only a default, backends are told groups are not needed; with group lines
// (the staff endpoint here) they are.
func TestGroupsAskedOnlyWhereTheMappingUsesThem(t *testing.T) {
	count := func(name string) int64 {
		v, _ := fakeNoGroups.LoadOrStore(name, new(atomic.Int64))
		return v.(*atomic.Int64).Load()
	}
	for _, tt := range []struct{ name, userGroups string }{
		{"groups-omitted", ""},
		{"groups-default-only", "user_groups {\n\t\tdefault Customers\n\t}"},
	} {
		s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	failure_delay 1ms
	failure_jitter 1ms
	throttle off
	%s
	staff_teams {
		helpdesk-staff Support
	}
	backend testfake {
		name %s
		user jdoe s3cret
	}
}`, tt.userGroups, tt.name))
		if r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret")); r.Doc.Result != "1" {
			t.Fatalf("%s: %s", tt.name, r.Body)
		}
		if n := count(tt.name); n != 1 {
			t.Errorf("%s: user login told groups are not needed %d times, want 1", tt.name, n)
		}
		if r := s.post("/loginshare/staff", form("username", "jdoe", "password", "s3cret", "interface", "staff")); r.Doc.Result != "1" {
			t.Fatalf("%s staff: %s", tt.name, r.Body)
		}
		if n := count(tt.name); n != 1 {
			t.Errorf("%s: the staff login, whose teams come from groups, was told groups are not needed", tt.name)
		}
		_ = stopCaddy()
	}
}
